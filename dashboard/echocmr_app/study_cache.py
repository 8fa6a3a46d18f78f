"""One uploaded study's ingest and prediction, cached per content (shared by every session)."""

from __future__ import annotations

import hashlib

import streamlit as st

from echocmr_app.loaders import load_bundle


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@st.cache_resource(show_spinner=False, max_entries=4, ttl=3600)
def ingest(key: str, _sources: tuple, jpeg_decode: str = "exact") -> list:
    """De-identified StudyItems of uploaded files, cached by the sha256 of their bytes (``key``)
    and the JPEG recipe they were decoded with (the bundle's: ``jpeg_recipe``)."""
    from echocmr.study_prediction import ingest_study
    from echocmr_app.guard import session_id

    return ingest_study(list(_sources), session=session_id(), jpeg_decode=jpeg_decode)


def jpeg_recipe(bundle_path: str) -> str:
    """How the bundle's models want JPEG frames decoded ("exact" for the shipped and published ones)."""
    from echocmr.study_prediction import bundle_jpeg_decode

    return bundle_jpeg_decode(load_bundle(bundle_path))


@st.cache_resource(show_spinner=False, max_entries=8, ttl=3600)
def _predict(key: str, bundle_path: str, bundle_stamp: str, overrides: tuple, _items: list, _published, mode: str):
    from echocmr.study_prediction import predict_study

    return predict_study(_items, load_bundle(bundle_path), dict(overrides) or None, published=_published)


def predict(key: str, bundle_path: str, overrides: tuple, items: list, published=None, mode: str = ""):
    """One study's prediction, cached by the study, the bundle's content stamp, the overrides and
    ``mode`` (a published-weights bundle's windows; ``published`` its PublishedOptions)."""
    from echocmr.bundle import content_stamp

    return _predict(key, bundle_path, content_stamp(bundle_path), overrides, items, published, mode)


def study_key(sources: list[tuple[str, bytes]]) -> str:
    """Identity of a set of files: their contents in order (names play no part)."""
    return sha256("".join(sha256(data) for _, data in sources).encode())


@st.cache_resource(show_spinner=False)
def gpu_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:  # a broken CUDA install means "no GPU" here, not a crashed page
        return False
