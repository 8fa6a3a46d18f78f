"""Pages' view of a published-weights bundle (``echocmr import-official``): say what it is, run it exactly."""

from __future__ import annotations

import streamlit as st

from echocmr.official import LICENCE_NOTE, MODEL_LABEL, fusion_note, official_info


def is_published(meta: dict) -> bool:
    return official_info(meta) is not None


def note(meta: dict) -> None:
    """Names the model wherever it is active; nothing for bundles trained here."""
    if not is_published(meta):
        return
    targets = " and ".join(t.upper() for t in official_info(meta).get("targets", []))
    st.info(f"**Model: {MODEL_LABEL}.** Per-view {targets} from the authors' released networks; "
            f"{fusion_note(meta)}. {LICENCE_NOTE}", icon=":material/verified:")


@st.cache_resource(show_spinner=False, max_entries=4, ttl=3600)
def _exact_inputs(key: str, _sources: tuple, _items: list) -> dict:
    from echocmr.official_infer import published_inputs

    return published_inputs(list(_sources), _items)


def windows_choice(meta: dict, key: str) -> int:
    """The exact/averaged toggle (published bundles only): 0 = exact, 4 = four windows."""
    if not is_published(meta):
        return 0
    averaged = st.toggle("Average 4 windows per clip (test-time averaging — not the published protocol)",
                         key=f"published-windows-{key}",
                         help="Off: exactly the published preprocessing — first 32 frames, stride 2, one clip.")
    return 4 if averaged else 0


def options(meta: dict, key: str, sources: list, items: list, windows: int):
    """``PublishedOptions`` for this study (None for other bundles)."""
    if not is_published(meta):
        return None
    from echocmr.official_infer import PublishedOptions

    return PublishedOptions(_exact_inputs(key, tuple(sources), items), windows)


def describe_options(chosen) -> None:
    if chosen is not None:
        st.caption(f"Preprocessing: {chosen.mode_label}. 112 × 112 AVIs go in unchanged "
                   f"({len(chosen.exact_inputs)} here); other files are de-identified and resized by EchoCMR first.")
