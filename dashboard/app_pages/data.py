"""Data: the cohort behind the active model (from the bundle's data_summary.json)."""

from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from echocmr.targets import BINARY_TARGETS, MODEL_VIEWS, TARGETS_BY_NAME
from echocmr_app import formatting, layout, loaders, study_cache

SPLITS = {"train": "Train", "val": "Validation", "test": "Held-out test"}

st.title("Data behind the active model")
meta = loaders.active_model()
if meta is None:
    st.stop()
summary = loaders.data_summary(meta)
layout.banner(summary.get("synthetic", meta.get("synthetic", False)), "cohort")
if not summary:
    st.info("This model bundle carries no description of its training data.")
    st.stop()


def counts_table() -> pd.DataFrame:
    rows = [{"Split": label, "Patients": summary.get("patients", {}).get(split, 0),
             "Studies": summary.get("studies", {}).get(split, 0)} for split, label in SPLITS.items()]
    return pd.DataFrame(rows)


def prevalence_table() -> pd.DataFrame:
    prevalence = summary.get("prevalence", {})
    shown = [t for t in BINARY_TARGETS if any(t in split for split in prevalence.values())]
    return pd.DataFrame([{"Label": formatting.target_label(t), **{label: formatting.pct(prevalence[s].get(t), 1)
                          for s, label in SPLITS.items() if s in prevalence}} for t in shown])


def interval_figure() -> go.Figure:
    hist = summary.get("interval_days", {})
    edges, counts = hist.get("edges", []), hist.get("counts", [])
    centres = [(a + b) / 2 for a, b in zip(edges[:-1], edges[1:])]
    fig = go.Figure(go.Bar(x=centres, y=counts, marker_color="#2F6690"))
    median = hist.get("median")
    title = "Echo → CMR interval" + (f" (median {median:.0f} days)" if median is not None else "")
    fig.update_layout(height=300, title=title,
                      xaxis_title="Days from echo to CMR (negative: CMR first)", yaxis_title="Studies", bargap=0.05)
    return fig


left, right = st.columns(2, gap="large")
with left:
    st.subheader("Patients and studies")
    st.dataframe(counts_table(), hide_index=True, width="stretch")
    st.caption("Split by patient: every study of a patient is in the same split.")
    st.subheader("Clips per view")
    clips = summary.get("clips_per_view", {})
    st.dataframe(pd.DataFrame([{"View": v, "Clips": n} for v, n in clips.items()]), hide_index=True, width="stretch")
with right:
    st.subheader("Label prevalence (share of studies)")
    st.dataframe(prevalence_table(), hide_index=True, width="stretch")
    continuous = summary.get("continuous", {})
    st.caption(" · ".join(f"{formatting.target_label(t)}: {formatting.value(d.get('mean'), TARGETS_BY_NAME[t].unit)} ± "
                          f"{formatting.value(d.get('sd'), TARGETS_BY_NAME[t].unit)} (n = {d.get('n', 0)})"
                          for t, d in continuous.items() if d.get("n")))
layout.show_figure(interval_figure(), "echo-cmr-interval", html_download=False)

st.subheader("Example clips (de-identified, as the model sees them)")
columns = st.columns(len(MODEL_VIEWS))
for column, view in zip(columns, MODEL_VIEWS):
    path = Path(meta["path"]) / "examples" / f"{view}.npy"
    with column:
        st.markdown(f"**{view}**")
        if path.exists():
            frames = np.load(path, allow_pickle=False)
            layout.play_clip(frames, 30.0, study_cache.sha256(frames.tobytes()))
        else:
            st.caption("No example clip in this bundle.")
layout.research_note()
