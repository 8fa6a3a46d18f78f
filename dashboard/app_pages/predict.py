"""Predict a study: upload echo clips (or take the example) → views → per-view and fused predictions."""

from pathlib import Path

import streamlit as st

import published
import tables
import ui
from echocmr.config import default_bundle_dir
from echocmr.targets import CLASSIFIER_LABELS
from echocmr.view_review import VIEW_CONFIDENCE_THRESHOLD

VIEW_NAMES = {"A4C": "Apical 4-chamber", "A2C": "Apical 2-chamber", "PLAX": "Parasternal long axis",
              "other": "Other view (not used)"}

st.title("Predict a study")
meta = ui.active_model()
if meta is None:
    st.stop()
ui.banner(meta.get("synthetic", False))
published.note(meta)
bundle_path = meta["path"]


def example_sources() -> list[tuple[str, bytes]]:
    # A bundle built from a training run has no examples: fall back to the shipped default's.
    roots = (Path(bundle_path) / "examples", default_bundle_dir() / "examples")
    studies = [p for root in roots for p in sorted(root.glob("*")) if p.is_dir()]
    return [(f.name, f.read_bytes()) for f in sorted(studies[0].glob("*.dcm"))] if studies else []


def choose_sources() -> list[tuple[str, bytes]]:
    uploads = st.file_uploader(
        "Clips of one echo study — DICOM, AVI, MP4, or a zip of them", accept_multiple_files=True,
        help="Files are read in memory and de-identified; nothing is stored. File names are not kept "
             "(they can carry patient details): clips are numbered in upload order.")
    if uploads:
        return [(f.name, f.getvalue()) for f in uploads]
    if st.button("Try the synthetic example study", icon=":material/play_circle:"):
        st.session_state["use_example"] = True
    return example_sources() if st.session_state.get("use_example") else []


def overrides_for(key: str, base) -> dict[int, str]:
    """Views the user changed in the selectboxes or confirmed, compared with the classifier's choice."""
    chosen = {c.index: st.session_state.get(f"view-{key}-{c.index}", c.view) for c in base.clips}
    return {i: v for i, v in chosen.items()
            if v != next(c.view for c in base.clips if c.index == i) or st.session_state.get(f"confirm-{key}-{i}")}


def clip_card(clip, key: str, base_view: str) -> None:
    with st.container(border=True):
        st.markdown(f"**{clip.display_name}** · {clip.clip.n_frames} frames at {clip.clip.fps:.0f} frames/s")
        video, preview = st.columns(2)
        with video:
            ui.play_clip(clip.clip.frames, clip.clip.fps, clip.clip.content_hash)
            st.caption("Model input: 112 × 112, de-identified")
        with preview:
            if clip.clip.preview is not None:
                ui.show_image(clip.clip.preview, f"preview-{clip.clip.content_hash}")
                st.caption("Original frame, outside the sector masked")
        st.selectbox(
            f"View — classifier: {VIEW_NAMES[base_view]}, {ui.pct(clip.view_probs.get(base_view, clip.view_confidence))} confident",
            CLASSIFIER_LABELS, index=CLASSIFIER_LABELS.index(base_view), format_func=VIEW_NAMES.get,
            key=f"view-{key}-{clip.index}", help="Change it if the classifier is wrong; predictions update.")
        if clip.view_overridden:
            st.caption(":material/edit: View set by you; predictions use it.")
        elif clip.awaiting_confirmation or st.session_state.get(f"confirm-{key}-{clip.index}"):
            if clip.awaiting_confirmation:
                st.warning(f"The classifier is unsure ({ui.pct(clip.view_confidence)}, below "
                           f"{ui.pct(VIEW_CONFIDENCE_THRESHOLD)}): this clip is **left out of the study prediction** "
                           "until you confirm or correct its view.", icon=":material/help:")
            st.checkbox("Confirm this view", key=f"confirm-{key}-{clip.index}")


sources = choose_sources()
if not sources:
    st.info("Upload the clips of one study, or try the example, to see predictions.", icon=":material/upload:")
    st.stop()
key = ui.study_key(sources)
windows = published.windows_choice(meta, key)
with st.status("Reading, de-identifying and classifying clips…", expanded=False) as status:
    items = ui.ingest(key, tuple(sources))
    exact = published.options(meta, key, sources, items, windows)
    mode = "" if exact is None else str(exact.windows)
    base = ui.predict(key, bundle_path, (), items, exact, mode)
    overrides = overrides_for(key, base)
    pred = ui.predict(key, bundle_path, tuple(sorted(overrides.items())), items, exact, mode) if overrides else base
    status.update(label=f"{len(pred.clips)} clips read, {len(pred.rejected)} rejected · "
                        f"{sum(pred.timings.values()):.1f} s", state="complete")
published.describe_options(exact)
for name, message in pred.rejected:
    st.error(f"**{name}** was not used: {ui.reason(message)}", icon=":material/block:")

st.subheader("Clips and views")
base_views = {c.index: c.view for c in base.clips}
columns = st.columns(2)
for n, clip in enumerate(pred.clips):
    with columns[n % 2]:
        clip_card(clip, key, base_views[clip.index])

waiting = [c.display_name for c in pred.clips if c.awaiting_confirmation]
if waiting:
    st.info(f"{len(waiting)} clip{'s' if len(waiting) > 1 else ''} ({', '.join(waiting)}) left out of the study "
            "prediction: the classifier is unsure of the view. Confirm or correct it above to include it.",
            icon=":material/pending:")
if not pred.fused:
    st.warning("No confirmed clip shows a view the models use (A4C, A2C or PLAX): nothing to predict.")
    st.stop()
st.subheader("Study-level prediction (views fused)")
st.dataframe(tables.fused_table(pred), hide_index=True, width="stretch")
st.caption("Binary findings: predicted probability, called positive above the threshold chosen on the "
           "validation set; sensitivity and specificity at that threshold on the held-out test set. "
           "T1, T2 and ECV: predicted value against the clinical cut-off.")
st.subheader("Per-view predictions")
st.dataframe(tables.per_view_table(pred), hide_index=True, width="stretch")
ui.csv_download(pred.to_frame(), "echocmr-prediction", "Download predictions (CSV)")
ui.research_note()
