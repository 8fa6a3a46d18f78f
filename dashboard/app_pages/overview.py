"""Home: what EchoCMR does, which model is active, and where to go next."""

from pathlib import Path

import pandas as pd
import streamlit as st

from echocmr.bootstrap_ci import describe_intervals, level_text
from echocmr_app import formatting, layout, loaders, published

st.title("EchoCMR")
st.markdown(
    "EchoCMR estimates what a cardiac MRI would report — regional wall-motion abnormality, late "
    "gadolinium enhancement, native T1, T2 and ECV — from the apical 4-chamber, apical 2-chamber "
    "and parasternal long-axis clips of an ordinary echocardiogram. It reproduces and extends the "
    "method of Sahashi et al. (2024): one video network per view, fused into a study-level result."
)

meta = loaders.active_model()
if meta is None:
    st.stop()
layout.banner(meta.get("synthetic", False))
published.note(meta)


def headline_table(headline: list[dict], level: str) -> pd.DataFrame:
    rows = [{"Finding (whole study)": formatting.target_label(m["target"]),
             f"AUROC ({level})": formatting.estimate(m.get("value"), m.get("ci_low"), m.get("ci_high"), note=m.get("note")),
             "Test studies": m.get("n")} for m in headline]
    return pd.DataFrame(rows)


summary = loaders.data_summary(meta)
train = meta.get("train") or {}
left, right = st.columns([3, 2], gap="large")
with left:
    st.subheader("Active model")
    st.markdown(
        f"**{meta.get('name', '—')}** · recipe `{meta.get('preset') or train.get('preset', '—')}` · "
        f"built {formatting.when(meta.get('created'))}  \n"
        f"Views: {', '.join(meta.get('views', {})) or '—'}"
    )
    if meta.get("description"):
        st.caption(meta["description"])
    st.markdown(
        f"**Training data:** {'synthetic cohort' if summary.get('synthetic', meta.get('synthetic')) else 'clinical cohort'}"
        f" — patients {formatting.split_counts(summary.get('patients'))}; studies {formatting.split_counts(summary.get('studies'))}"
    )
    results_summary = loaders.json_file(Path(meta["path"]) / meta.get("results", "results") / "summary.json") or {}
    st.markdown(f"**Held-out test performance** (AUROC; {describe_intervals(results_summary)})")
    if meta.get("headline"):
        st.dataframe(headline_table(meta["headline"], level_text(results_summary)), hide_index=True, width="stretch")
        views = results_summary.get("view_classifier")
        if views:
            st.caption(f"View classifier: {formatting.pct(views.get('accuracy'), 1)} of {views.get('n')} held-out clips "
                       "labelled correctly (A4C, A2C, PLAX, other).")
    else:
        st.info("This model has no held-out results yet.")
with right:
    st.subheader("Go to")
    st.page_link("app_pages/predict.py", label="Predict a study", icon=":material/ecg_heart:",
                 help="Upload DICOM or video clips of one echo study, or try the bundled example.")
    st.page_link("app_pages/results.py", label="Held-out results", icon=":material/monitoring:",
                 help="ROC curves, Table 2, Bland–Altman and calibration, beside the published numbers.")
    st.page_link("app_pages/train.py", label="Train a model", icon=":material/model_training:",
                 help="Train, stop, resume and evaluate models; choose the active model.")
    st.page_link("app_pages/data.py", label="Data behind the model", icon=":material/database:",
                 help="Patients, studies, label prevalence and example clips of the training cohort.")
layout.research_note()
