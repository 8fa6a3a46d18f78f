"""Held-out results: Table 2, ROC curves with bootstrap bands, Bland–Altman, calibration."""

from pathlib import Path

import plotly.graph_objects as go
import streamlit as st

import ui
from echocmr.evaluate import PAPER_RESULTS, read_results, table2_frame
from echocmr.targets import BINARY_TARGETS, CONTINUOUS_TARGETS, TARGETS_BY_NAME

PUBLISHED = "published (Sahashi et al. 2024, real patients)"
VIEW_ORDER = ("A4C", "A2C", "PLAX", "global")

st.title("Held-out results")


def results_choices() -> dict[str, str]:
    """Label → results folder: the active model's, then every evaluated run."""
    choices = {}
    meta = ui.active_model()
    if meta is not None and (Path(meta["path"]) / meta.get("results", "results") / "metrics.json").exists():
        choices[f"Active model — {meta.get('name', '')}"] = str(Path(meta["path"]) / meta.get("results", "results"))
    for summary in sorted(ui.runs_dir().glob("*/results/summary.json"), reverse=True):
        choices[f"Run {summary.parent.parent.name}"] = str(summary.parent)
    return choices


@st.cache_data(show_spinner="Reading results…", max_entries=8)
def load(path: str, stamp: float):
    return read_results(path)


def curves_for(mapping: dict, target: str) -> list[tuple[str, dict]]:
    return [(v, mapping[f"{target}|{v}"]) for v in VIEW_ORDER if f"{target}|{v}" in mapping]


def roc_figure(res, target: str) -> go.Figure:
    fig = go.Figure()
    for view, roc in curves_for(res.roc, target):
        colour, band = ui.VIEW_COLOURS[view], roc.get("band") or {}
        if band:
            fig.add_scatter(x=band["fpr"] + band["fpr"][::-1], y=band["tpr_high"] + band["tpr_low"][::-1],
                            fill="toself", line_width=0, fillcolor=colour, opacity=0.15, hoverinfo="skip",
                            legendgroup=view, showlegend=False)
        fig.add_scatter(x=roc["fpr"], y=roc["tpr"], name=view, line_color=colour, legendgroup=view,
                        line_width=3 if view == "global" else 2)
    fig.add_scatter(x=[0, 1], y=[0, 1], line=dict(dash="dot", color="#9AA5B1"), showlegend=False, hoverinfo="skip")
    fig.update_layout(title=f"{TARGETS_BY_NAME[target].label}: ROC (shaded: 95 % bootstrap band)", height=460,
                      xaxis_title="1 − specificity", yaxis_title="Sensitivity", xaxis_range=[0, 1], yaxis_range=[0, 1.02])
    return fig


def bland_altman_figure(res, target: str) -> go.Figure:
    unit = TARGETS_BY_NAME[target].unit
    ba = res.bland_altman.get(f"{target}|global", {})
    fig = go.Figure(go.Scatter(x=ba.get("mean", []), y=ba.get("diff", []), mode="markers", name="test studies",
                               marker=dict(color="#2F6690", opacity=0.6)))
    for key, label, dash in (("bias", "bias", "solid"), ("loa_low", "−1.96 SD", "dash"), ("loa_high", "+1.96 SD", "dash")):
        if ba.get(key) is not None:
            fig.add_hline(y=ba[key], line_dash=dash, line_color="#B5651D", annotation_text=f"{label} {ba[key]:.1f} {unit}")
    fig.update_layout(title=f"{TARGETS_BY_NAME[target].label}: Bland–Altman", height=420, showlegend=False,
                      xaxis_title=f"Mean of predicted and measured ({unit})", yaxis_title=f"Predicted − measured ({unit})")
    return fig


def scatter_figure(res, target: str) -> go.Figure:
    unit, df = TARGETS_BY_NAME[target].unit, res.predictions
    rows = df[(df["target"] == target) & (df["view"] == "global")].dropna(subset=["y_true", "y_pred"])
    lo, hi = (min(rows["y_true"].min(), rows["y_pred"].min()), max(rows["y_true"].max(), rows["y_pred"].max())) if len(rows) else (0, 1)
    fig = go.Figure(go.Scatter(x=rows["y_true"], y=rows["y_pred"], mode="markers", marker=dict(color="#2F6690", opacity=0.6)))
    fig.add_scatter(x=[lo, hi], y=[lo, hi], line=dict(dash="dot", color="#9AA5B1"), hoverinfo="skip")
    fig.update_layout(title=f"{TARGETS_BY_NAME[target].label}: predicted vs measured", height=420, showlegend=False,
                      xaxis_title=f"Measured on CMR ({unit})", yaxis_title=f"Predicted from echo ({unit})")
    return fig


def calibration_figure(res, target: str) -> go.Figure:
    fig = go.Figure()
    for view, cal in curves_for(res.calibration, target):
        fig.add_scatter(x=cal["prob_pred"], y=cal["prob_true"], name=view, mode="lines+markers",
                        line_color=ui.VIEW_COLOURS[view], text=[f"n = {n}" for n in cal.get("count", [])])
    fig.add_scatter(x=[0, 1], y=[0, 1], line=dict(dash="dot", color="#9AA5B1"), showlegend=False, hoverinfo="skip")
    fig.update_layout(title=f"{TARGETS_BY_NAME[target].label}: calibration", height=420, xaxis_range=[0, 1],
                      yaxis_range=[0, 1], xaxis_title="Predicted probability", yaxis_title="Observed frequency")
    return fig


choices = results_choices()
if not choices:
    st.info("No held-out results yet: evaluate a run on the Train page.")
    st.stop()
label = st.selectbox("Results of", list(choices))
path = choices[label]
res = load(path, ui._stamp(path, "metrics.json"))
summary = res.summary
ui.banner(summary.get("synthetic", False), "evaluation")
st.caption(f"{summary.get('n_test_studies', '—')} held-out test studies · 95 % CIs from "
           f"{summary.get('n_bootstrap', '—')} bootstrap resamples by {summary.get('resample_unit', 'patient')}")

table, roc, continuous, calibration = st.tabs(["Table 2", "ROC curves", "T1 · T2 · ECV", "Calibration"])
with table:
    ours = table2_frame(res.metrics)
    st.markdown("**This model** (AUROC; MAE in ms or %; 95 % CI)")
    st.dataframe(ours, hide_index=True, width="stretch")
    ui.csv_download(ours, "table2-this-model")
    st.markdown(f"**{PUBLISHED[0].upper() + PUBLISHED[1:]}**")
    st.dataframe(PAPER_RESULTS, hide_index=True, width="stretch")
with roc:
    shown = [t for t in BINARY_TARGETS if curves_for(res.roc, t)]
    target = st.selectbox("Finding", shown, format_func=ui.target_label, key="roc-target")
    ui.show_figure(roc_figure(res, target), f"roc-{target}")
with continuous:
    target = st.radio("Measure", CONTINUOUS_TARGETS, format_func=ui.target_label, horizontal=True)
    left, right = st.columns(2)
    with left:
        ui.show_figure(bland_altman_figure(res, target), f"bland-altman-{target}")
    with right:
        ui.show_figure(scatter_figure(res, target), f"scatter-{target}")
with calibration:
    shown = [t for t in BINARY_TARGETS if curves_for(res.calibration, t)]
    target = st.selectbox("Finding", shown, format_func=ui.target_label, key="cal-target")
    ui.show_figure(calibration_figure(res, target), f"calibration-{target}")
ui.research_note()
