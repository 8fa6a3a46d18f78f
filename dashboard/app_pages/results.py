"""Held-out results: Table 2, ROC curves with bootstrap bands, Bland–Altman, calibration."""

from pathlib import Path

import streamlit as st

from echocmr.bootstrap_ci import describe_intervals, level_text
from echocmr.config import EvalConfig
from echocmr.results import read_results
from echocmr.table2 import PAPER_RESULTS, table2_frame
from echocmr.targets import BINARY_TARGETS, CONTINUOUS_TARGETS
from echocmr_app import analyses_view, charts, formatting, layout, loaders, segment_view, study_tables

PUBLISHED = "published (Sahashi et al. 2024, real patients)"

st.title("Held-out results")


def results_choices() -> dict[str, str]:
    """Label → results folder: the active model's, then every evaluated run."""
    choices = {}
    meta = loaders.active_model()
    if meta is not None and (Path(meta["path"]) / meta.get("results", "results") / "metrics.json").exists():
        choices[f"Active model — {meta.get('name', '')}"] = str(Path(meta["path"]) / meta.get("results", "results"))
    for summary in sorted(loaders.runs_dir().glob("*/results/summary.json"), reverse=True):
        choices[f"Run {summary.parent.parent.name}"] = str(summary.parent)
    return choices


@st.cache_data(show_spinner="Reading results…", max_entries=8)
def load(path: str, stamp: float):
    return read_results(path)


choices = results_choices()
if not choices:
    st.info("No held-out results yet: evaluate a run on the Train page.")
    st.stop()
label = st.selectbox("Results of", list(choices))
path = choices[label]
res = load(path, loaders.file_stamp(path, "metrics.json"))
summary = res.summary
layout.banner(summary.get("synthetic", False), "evaluation")
unit = summary.get("unit", "study")
st.caption(f"{summary.get('n_test_studies', '—')} held-out test studies of {summary.get('n_test_patients', '—')} "
           f"patients · unit of analysis: **{unit}** ({summary.get('n_test_units', summary.get('n_test_studies', '—'))} "
           f"{'patients, one aggregated prediction each' if unit == 'patient' else 'studies'}) · "
           f"{describe_intervals(summary)}")
sampling = summary.get("test_time_sampling")
if sampling:
    st.caption(f"Test-time sampling: {sampling['windows']} window{'s' if sampling['windows'] != 1 else ''} per "
               f"video of {sampling['n_frames']} frames every {sampling['period']}th frame, never wrapping; "
               f"{sampling['n_videos_shorter_than_span']} of {sampling['n_videos']} videos were shorter than the "
               f"{sampling['span']}-frame span and were sampled at a lower period.")

table, calls_tab, roc, segments, continuous, calibration, analyses = st.tabs(
    ["Table 2", "Fusion and calls", "ROC curves", "Per segment", "T1 · T2 · ECV", "Calibration",
     "Is the signal real?"])
with table:
    ours = table2_frame(res.metrics)
    st.markdown(f"**This model** (AUROC; MAE in ms or %; R²; {level_text(summary)})")
    st.dataframe(study_tables.table2_for_display(ours), hide_index=True, width="stretch", height="content")
    if any(r.note for r in res.metrics):
        units = "studies" if summary.get("resample_unit") == "study" else "patients"
        st.caption(f"\\* Interval withheld: fewer than {summary.get('min_class_units', EvalConfig.min_class_units)} "
                   f"test {units} with, or without, the finding — a bootstrap interval from so few would look "
                   "precise and mean nothing. The value is shown with the reason, and such a finding is never "
                   "called on the Predict page.")
    layout.csv_download(ours, "table2-this-model")
    st.markdown(f"**{PUBLISHED[0].upper() + PUBLISHED[1:]}**")
    st.dataframe(study_tables.table2_for_display(PAPER_RESULTS), hide_index=True, width="stretch", height="content")
with calls_tab:
    study_tables.fusion_section(path, res)
with roc:
    shown = [t for t in BINARY_TARGETS if charts.curves_for(res.roc, t)]
    target = st.selectbox("Finding", shown, format_func=formatting.target_label, key="roc-target")
    layout.show_figure(charts.roc_figure(res, target), f"roc-{target}")
with segments:
    segment_view.results_section(res)
with continuous:
    target = st.radio("Measure", CONTINUOUS_TARGETS, format_func=formatting.target_label, horizontal=True)
    left, right = st.columns(2)
    with left:
        layout.show_figure(charts.bland_altman_figure(res, target), f"bland-altman-{target}")
    with right:
        layout.show_figure(charts.scatter_figure(res, target), f"scatter-{target}")
with calibration:
    shown = [t for t in BINARY_TARGETS if charts.curves_for(res.calibration, t)]
    target = st.selectbox("Finding", shown, format_func=formatting.target_label, key="cal-target")
    layout.show_figure(charts.calibration_figure(res, target), f"calibration-{target}")
with analyses:
    analyses_view.render(path, choices)
layout.research_note()
