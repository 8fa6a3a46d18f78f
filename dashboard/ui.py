"""Shared UI helpers: cached loaders, the synthetic-cohort banner, video, number formatting.

Pages draw; the science (metrics, fusion, thresholds) happens in ``echocmr``. Caches are keyed by
plain strings (paths, content hashes) because Streamlit only samples large arrays when hashing.
"""

from __future__ import annotations

import hashlib
import math
from datetime import datetime
from pathlib import Path

import pandas as pd
import streamlit as st

from echocmr import media
from echocmr.bundle import active_bundle_dir, describe_bundle
from echocmr.config import data_home
from echocmr.targets import TARGETS_BY_NAME

PLOT_FONT = dict(family="Source Sans Pro, Helvetica, Arial, sans-serif", size=13)
VIEW_COLOURS = {"A4C": "#2F6690", "A2C": "#3A7D44", "PLAX": "#B5651D", "global": "#1F2933"}
# Muted, colour-blind-safe-ish sequence for other multi-line charts (Tableau 10, desaturated order).
COLOURWAY = ["#2F6690", "#D1793B", "#3A7D44", "#8E6C8A", "#C44E52", "#6B7B8C", "#B8A44C", "#4C9F9F"]


# ---------------------------------------------------------------- model bundle


def active_bundle_path() -> str:
    return str(active_bundle_dir())


def _stamp(path: str, name: str = "bundle.json") -> float:
    """Modification time: a rebuilt bundle at the same path is re-read, not served stale."""
    try:
        return (Path(path) / name).stat().st_mtime
    except OSError:
        return 0.0


@st.cache_data(show_spinner=False, max_entries=16)
def _describe(path: str, stamp: float) -> dict:
    return describe_bundle(path)


def describe(path: str) -> dict:
    return _describe(path, _stamp(path))


@st.cache_resource(show_spinner="Loading the model…", max_entries=2)
def _load_bundle(path: str, stamp: float):
    from echocmr.bundle import load_bundle as load

    return load(path)


def load_bundle(path: str):
    """The loaded ModelBundle (torch models on CPU), shared by every session."""
    return _load_bundle(path, _stamp(path))


@st.cache_data(show_spinner=False, max_entries=16)
def read_json(path: str, stamp: float) -> dict | list | None:
    import json

    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def json_file(path: Path) -> dict | list | None:
    return read_json(str(path), _stamp(str(path.parent), path.name))


def runs_dir() -> Path:
    return data_home() / "runs"


# ---------------------------------------------------------------- page furniture


def banner(synthetic: bool, what: str = "model") -> None:
    """Every page says loudly when numbers come from the synthetic cohort."""
    if synthetic:
        st.warning(
            f"**Synthetic cohort.** This {what} was trained and tested on computer-generated echo "
            "videos and CMR reports, not on patients. Its numbers show that the software works; "
            "they say nothing about clinical accuracy. Research use only.",
            icon=":material/science:",
        )


def research_note() -> None:
    st.caption("Research software. Not a medical device; not for diagnosis or treatment decisions.")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@st.cache_data(show_spinner=False, max_entries=64)
def _webm(key: str, _frames, fps: float) -> bytes:
    return media.encode_webm(_frames, fps=fps, size=224)


def play_clip(frames, fps: float, key: str) -> None:
    """A de-identified clip, looping silently in the browser (key: the clip's content hash)."""
    st.video(_webm(key, frames, float(fps)), format="video/webm", loop=True, autoplay=True, muted=True)


@st.cache_data(show_spinner=False, max_entries=64)
def _png(key: str, _image) -> bytes:
    return media.encode_png(_image)


def show_image(image, key: str, caption: str | None = None, width: int | str = "stretch") -> None:
    st.image(_png(key, image), caption=caption, width=width)


def show_figure(fig, name: str, html_download: bool = True) -> None:
    """A plotly chart with PNG export in its toolbar (client-side) and an HTML download."""
    fig.update_layout(font=PLOT_FONT, margin=dict(l=10, r=10, t=40, b=10), template="plotly_white",
                      colorway=COLOURWAY)
    config = {"displaylogo": False,
              "toImageButtonOptions": {"format": "png", "filename": name, "scale": 2},
              "modeBarButtonsToRemove": ["lasso2d", "select2d"]}
    st.plotly_chart(fig, width="stretch", config=config, key=f"fig-{name}")
    if html_download:
        st.download_button("Download figure (HTML)", data=lambda: fig.to_html(include_plotlyjs=True),
                           file_name=f"{name}.html", mime="text/html", on_click="ignore",
                           key=f"html-{name}", icon=":material/download:")


def csv_download(frame: pd.DataFrame, name: str, label: str = "Download table (CSV)") -> None:
    st.download_button(label, data=frame.to_csv(index=False).encode("utf-8"), file_name=f"{name}.csv",
                       mime="text/csv", on_click="ignore", key=f"csv-{name}", icon=":material/download:")


# ---------------------------------------------------------------- formatting


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def pct(x, digits: int = 0) -> str:
    """0.724 → '72 %' (probabilities, sensitivities)."""
    return f"{100 * x:.{digits}f} %" if _finite(x) else "—"


def value(x, unit: str) -> str:
    """A measured / predicted value in its unit: '1034 ms', '28.4 %'."""
    if not _finite(x):
        return "—"
    return f"{x:.0f} ms" if unit == "ms" else f"{x:.1f} {unit}".strip()


def target_value(name: str, x) -> str:
    """A model output: probability for binary targets, value in unit for continuous ones."""
    spec = TARGETS_BY_NAME.get(name)
    if spec is None or spec.kind == "binary":
        return pct(x)
    return value(x, spec.unit)


def target_label(name: str) -> str:
    spec = TARGETS_BY_NAME.get(name)
    if spec is None:
        return name
    return f"{spec.label} ({spec.unit})" if spec.unit else spec.label


def estimate(x, lo=None, hi=None, digits: int = 3, note: str | None = None) -> str:
    """'0.873 (0.816–0.922)'; without an interval, the value and the reason (``note``) if any."""
    if not _finite(x):
        return "—"
    text = f"{x:.{digits}f}"
    if _finite(lo) and _finite(hi):
        return f"{text} ({lo:.{digits}f}–{hi:.{digits}f})"
    return f"{text} ({note})" if note else text


def duration(seconds) -> str:
    if not _finite(seconds):
        return "—"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def when(iso: str | None) -> str:
    """ISO time → '2024-05-01 14:03' (local time of the record)."""
    if not iso:
        return "—"
    try:
        return datetime.fromisoformat(str(iso)).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return str(iso)


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


def split_counts(counts: dict | None) -> str:
    """{'train': 80, 'val': 10, 'test': 10} → '100 (80 train · 10 validation · 10 test)'."""
    counts = counts or {}
    names = {"train": "train", "val": "validation", "test": "test"}
    parts = [f"{counts[k]} {names[k]}" for k in names if k in counts]
    return f"{sum(counts.values())} ({' · '.join(parts)})" if parts else "—"


# ---------------------------------------------------------------- one study's prediction


@st.cache_resource(show_spinner=False, max_entries=4, ttl=3600)
def ingest(key: str, _sources: tuple) -> list:
    """De-identified StudyItems of uploaded files, cached by the sha256 of their bytes (``key``)."""
    from echocmr.predict import ingest_study

    return ingest_study(list(_sources))


@st.cache_resource(show_spinner=False, max_entries=8, ttl=3600)
def predict(key: str, bundle_path: str, overrides: tuple, _items: list, _published=None, mode: str = ""):
    """``_published``: PublishedOptions for a published-weights bundle; ``mode`` its cache key."""
    from echocmr.predict import predict_study

    return predict_study(_items, load_bundle(bundle_path), dict(overrides) or None, published=_published)


def study_key(sources: list[tuple[str, bytes]]) -> str:
    """Identity of a set of files: their contents in order (names play no part)."""
    return sha256("".join(sha256(data) for _, data in sources).encode())


def reason(message: str) -> str:
    """'[not_dicom] Not a DICOM file…' → 'Not a DICOM file…' (the code is for logs and tests)."""
    return message.split("] ", 1)[1] if message.startswith("[") and "] " in message else message


@st.cache_resource(show_spinner=False)
def gpu_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:  # a broken CUDA install means "no GPU" here, not a crashed page
        return False


STATE_LABELS = {
    "running": ":blue-badge[:material/autorenew: running]",
    "starting": ":blue-badge[:material/hourglass_top: starting]",
    "finished": ":green-badge[:material/check: finished]",
    "stopped": ":orange-badge[:material/pause: stopped]",
    "diverged": ":red-badge[:material/warning: diverged]",
    "failed": ":red-badge[:material/error: failed]",
    "failed to start": ":red-badge[:material/error: failed to start]",
}


def state_badge(state: str) -> str:
    return STATE_LABELS.get(state, f":gray-badge[{state}]")


def model_name(view: str | None) -> str:
    return {"view_classifier": "View classifier", None: "—"}.get(view, f"{view} model")
