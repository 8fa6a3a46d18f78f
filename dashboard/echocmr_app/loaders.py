"""Cached loaders of the app: the active model bundle, JSON files, the data home's folders.

Caches are keyed by plain strings (paths) plus the file's modification time, so a file rebuilt at
the same path is re-read, never served stale.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from echocmr.bundle import active_bundle_dir, describe_bundle
from echocmr.config import data_home
from echocmr.jsonfile import read_json


def active_bundle_path() -> str:
    return str(active_bundle_dir())


def file_stamp(path: str, name: str = "bundle.json") -> float:
    """Modification time: a rebuilt bundle at the same path is re-read, not served stale."""
    try:
        return (Path(path) / name).stat().st_mtime
    except OSError:
        return 0.0


@st.cache_data(show_spinner=False, max_entries=16)
def _describe(path: str, stamp: float) -> dict:
    return describe_bundle(path)


def describe(path: str) -> dict:
    return _describe(path, file_stamp(path))


@st.cache_resource(show_spinner="Loading the model…", max_entries=2)
def _load_bundle(path: str, stamp: str):
    from echocmr.bundle import load_bundle as load

    return load(path)


def load_bundle(path: str):
    """The loaded ModelBundle (torch models on CPU), shared by every session; re-read when any of
    its files changes (fusion, operating points, weights), not only bundle.json."""
    from echocmr.bundle import content_stamp

    return _load_bundle(path, content_stamp(path))


@st.cache_data(show_spinner=False, max_entries=16)
def cached_json(path: str, stamp: float) -> dict | list | None:
    """The JSON in ``path``, or None when it is missing or damaged (``stamp``: its mtime)."""
    return read_json(path, default=None)


def json_file(path: Path) -> dict | list | None:
    """A JSON file through the cache (None when missing or damaged)."""
    return cached_json(str(path), file_stamp(str(path.parent), path.name))


def runs_dir() -> Path:
    return data_home() / "runs"


def active_model() -> dict | None:
    """The active bundle's description, or None after telling the user how to get one."""
    from echocmr.errors import CheckpointError

    path = active_bundle_path()
    try:
        return describe(path)
    except CheckpointError:
        st.error("No model is installed yet. Build the demo model with `make demo-assets`, "
                 "or train one on the **Train** page and make it the active model.",
                 icon=":material/error:")
        return None


def data_summary(meta: dict) -> dict:
    """The bundle's data_summary.json (the cohort behind the model), or {}."""
    summary = json_file(Path(meta["path"]) / "data_summary.json")
    return summary if isinstance(summary, dict) else {}
