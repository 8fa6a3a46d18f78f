"""Predict a study: upload echo clips (or take the example) → views → per-view and fused predictions."""

from pathlib import Path

import streamlit as st

from echocmr.calls import NOT_CALLED
from echocmr.clip_selection import MIN_VIEW_CONFIDENCE
from echocmr.config import default_bundle_dir
from echocmr.errors import InputError
from echocmr.targets import CLASSIFIER_LABELS
from echocmr_app import explain_view, formatting, guard, layout, loaders, pacs_source, published, segment_view, study_cache, study_tables

VIEW_NAMES = {"A4C": "Apical 4-chamber", "A2C": "Apical 2-chamber", "PLAX": "Parasternal long axis",
              "other": "Other view (not used)"}

st.title("Predict a study")
meta = loaders.active_model()
if meta is None:
    st.stop()
layout.banner(meta.get("synthetic", False))
published.note(meta)
bundle_path = meta["path"]


def example_study_dir() -> Path | None:
    # A bundle built from a training run has no examples: fall back to the shipped default's.
    roots = (Path(bundle_path) / "examples", default_bundle_dir() / "examples")
    studies = [p for root in roots for p in sorted(root.glob("*")) if p.is_dir()]
    return studies[0] if studies else None


def example_sources() -> list[tuple[str, bytes]]:
    study = example_study_dir()
    return [(f.name, f.read_bytes()) for f in sorted(study.glob("*.dcm"))] if study else []


def choose_sources() -> list[tuple[str, bytes]]:
    if st.radio("Source", ("Upload files", "From PACS"), horizontal=True, key="source") == "From PACS":
        st.session_state["showing_example"] = False
        return pacs_source.choose_pacs_sources()
    uploads = st.file_uploader(
        "Clips of one echo study — DICOM, AVI, MP4, or a zip of them", accept_multiple_files=True,
        help="Files are read in memory and de-identified; nothing is stored. File names are not kept "
             "(they can carry patient details): clips are numbered in upload order. " + guard.upload_limits())
    st.caption(guard.upload_limits())
    if uploads:
        if not guard.claim_uploads([f.size for f in uploads]):
            st.stop()
        st.session_state["showing_example"] = False
        return [(f.name, f.getvalue()) for f in uploads]
    guard.claim_uploads([])
    if st.button("Try the synthetic example study", icon=":material/play_circle:"):
        st.session_state["use_example"] = True
    st.session_state["showing_example"] = bool(st.session_state.get("use_example"))
    return example_sources() if st.session_state.get("use_example") else []


def overrides_for(key: str, base) -> dict[int, str]:
    """Views the user changed in the selectboxes or confirmed, compared with the classifier's choice."""
    chosen = {c.index: st.session_state.get(f"view-{key}-{c.index}", c.view) for c in base.clips}
    return {i: v for i, v in chosen.items()
            if v != next(c.view for c in base.clips if c.index == i) or st.session_state.get(f"confirm-{key}-{i}")}


def _media(clip) -> None:
    st.markdown(f"**{clip.display_name}** · {clip.clip.n_frames} frames at {clip.clip.fps:.0f} frames/s")
    video, preview = st.columns(2)
    with video:
        layout.play_clip(clip.clip.frames, clip.clip.fps, clip.clip.content_hash)
        st.caption("Model input: 112 × 112, de-identified")
    with preview:
        if clip.clip.preview is not None:
            layout.show_image(clip.clip.preview, f"preview-{clip.clip.content_hash}")
            st.caption("Original frame, outside the sector masked")
        st.caption(f"Burned-in text inside the sector: {clip.clip.burned_text}")


def clip_card(clip, key: str, base_view: str, compact: bool = False) -> None:
    with st.container(border=True):
        if not compact:  # a clip no model uses shows only its view choice (100-clip studies stay light)
            _media(clip)
        st.selectbox(
            f"View — classifier: {VIEW_NAMES[base_view]}, {formatting.pct(clip.view_probs.get(base_view, clip.view_confidence))} confident",
            CLASSIFIER_LABELS, index=CLASSIFIER_LABELS.index(base_view), format_func=VIEW_NAMES.get,
            key=f"view-{key}-{clip.index}", help="Change it if the classifier is wrong; predictions update.")
        if clip.view_overridden:
            st.caption(":material/edit: View set by you; predictions use it.")
        elif clip.awaiting_confirmation or st.session_state.get(f"confirm-{key}-{clip.index}"):
            if clip.awaiting_confirmation:
                st.warning(f"The classifier is unsure ({formatting.pct(clip.view_confidence)}, below "
                           f"{formatting.pct(MIN_VIEW_CONFIDENCE)}): this clip is **left out of the study prediction** "
                           "until you confirm or correct its view.", icon=":material/help:")
            st.checkbox("Confirm this view", key=f"confirm-{key}-{clip.index}")
        if clip.used_for and not compact:  # attribution of the WMA output, on demand
            explain_view.explain_control(clip, bundle_path, meta.get("synthetic", False))


sources = choose_sources()
if not sources:
    st.info("Upload the clips of one study, try the example, or take a study from the PACS, to see predictions.",
            icon=":material/upload:")
    st.stop()
key = study_cache.study_key(sources)
windows = published.windows_choice(meta, key)
with st.status("Reading, de-identifying and classifying clips…", expanded=False) as status:
    items = study_cache.ingest(key, tuple(sources), study_cache.jpeg_recipe(bundle_path))
    exact = published.options(meta, key, sources, items, windows)
    mode = "" if exact is None else str(exact.windows)
    try:
        base = study_cache.predict(key, bundle_path, (), items, exact, mode)
    except InputError as exc:  # e.g. only still images: a plain message, not a traceback
        status.update(label="Nothing to predict", state="error")
        st.error(exc.args[0], icon=":material/block:")
        st.stop()
    overrides = overrides_for(key, base)
    pred = study_cache.predict(key, bundle_path, tuple(sorted(overrides.items())), items, exact, mode) if overrides else base
    status.update(label=f"{len(pred.clips)} clips read, {len(pred.rejected)} rejected · "
                        f"{sum(pred.timings.values()):.1f} s", state="complete")
published.describe_options(exact)
for name, message in pred.rejected:
    st.error(f"**{name}** was not used: {formatting.reason(message)}", icon=":material/block:")

st.subheader("Clips and views")
base_views = {c.index: c.view for c in base.clips}
pacs_source.show_clips_by_view(
    pred, lambda clip, compact=False: clip_card(clip, key, base_views[clip.index], compact), VIEW_NAMES)

waiting = [c.display_name for c in pred.clips if c.awaiting_confirmation]
if waiting:
    st.info(f"{len(waiting)} clip{'s' if len(waiting) > 1 else ''} ({', '.join(waiting)}) left out of the study "
            "prediction: the classifier is unsure of the view. Confirm or correct it above to include it.",
            icon=":material/pending:")
if not pred.fused:
    st.warning("No clip feeds a view model (a cine of A4C, A2C or PLAX, confidently classified, at least one "
               "model window long): nothing to predict. Set a clip's view above to use it.")
    st.stop()
st.subheader("Study-level prediction (views fused)")
fused = study_tables.fused_table(pred)
st.dataframe(study_tables.style_fused(fused), hide_index=True, width="stretch")
uncalled = [p.label for p in pred.fused.values() if not p.called]
if uncalled:
    st.warning(f"**Not called: {', '.join(uncalled)}.** {NOT_CALLED.capitalize()}: the held-out test set does "
               "not show that the model separates these findings better than chance (AUROC lower bound not "
               "above 0.5; for T1, T2, ECV: R² lower bound not above 0), so the value is shown without a call.",
               icon=":material/do_not_disturb_on:")
interval = next(iter(pred.fused.values())).interval
for p in pred.fused.values():
    if p.called and p.rates:
        st.markdown(f"**{p.label}: {p.status}** at ≥ {formatting.target_value(p.target, p.threshold)} — "
                    + " · ".join(f"{name} {study_tables.rate_text(p.rates[key])}" for key, name in study_tables.RATE_NAMES.items()))
st.caption("Binary findings: predicted probability, called positive at or above the threshold chosen on the "
           "validation set; sensitivity, specificity, PPV and NPV at that threshold on the held-out test set "
           f"({interval}). T1, T2 and ECV: predicted value, called against the clinical cut-off only where "
           "the held-out R² shows a signal.")
st.subheader("Per-view predictions")
st.dataframe(study_tables.per_view_table(pred), hide_index=True, width="stretch")
segment_view.predict_section(pred, segment_view.example_truth(example_study_dir())
                             if st.session_state.get("showing_example") else None, key)
layout.csv_download(pred.to_frame(), "echocmr-prediction", "Download predictions (CSV)")
layout.research_note()
