"""Plotly figures of the dashboard: held-out ROC / Bland–Altman / calibration, training curves.

Pure drawing: every number comes from a results bundle or a run's metrics (``echocmr.evaluate``,
``echocmr.run_control``); nothing is computed here beyond laying it out.
"""

import pandas as pd
import plotly.graph_objects as go

from echocmr.bootstrap_ci import level_text
from echocmr.targets import BINARY_TARGETS, CLASSIFIER_LABELS, TARGETS_BY_NAME, VIEW_ORDER
from echocmr_app import formatting, layout


def curves_for(mapping: dict, target: str) -> list[tuple[str, dict]]:
    return [(v, mapping[f"{target}|{v}"]) for v in VIEW_ORDER if f"{target}|{v}" in mapping]


def roc_figure(res, target: str) -> go.Figure:
    fig = go.Figure()
    for view, roc in curves_for(res.roc, target):
        colour, band = layout.VIEW_COLOURS[view], roc.get("band") or {}
        if band:
            fig.add_scatter(x=band["fpr"] + band["fpr"][::-1], y=band["tpr_high"] + band["tpr_low"][::-1],
                            fill="toself", line_width=0, fillcolor=colour, opacity=0.15, hoverinfo="skip",
                            legendgroup=view, showlegend=False)
        fig.add_scatter(x=roc["fpr"], y=roc["tpr"], name=view, line_color=colour, legendgroup=view,
                        line_width=3 if view == "global" else 2)
    fig.add_scatter(x=[0, 1], y=[0, 1], line=dict(dash="dot", color="#9AA5B1"), showlegend=False, hoverinfo="skip")
    fig.update_layout(title=f"{TARGETS_BY_NAME[target].label}: ROC (shaded: {level_text(res.summary)} band, pointwise)", height=460,
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
                        line_color=layout.VIEW_COLOURS[view], text=[f"n = {n}" for n in cal.get("count", [])])
    fig.add_scatter(x=[0, 1], y=[0, 1], line=dict(dash="dot", color="#9AA5B1"), showlegend=False, hoverinfo="skip")
    fig.update_layout(title=f"{TARGETS_BY_NAME[target].label}: calibration", height=420, xaxis_range=[0, 1],
                      yaxis_range=[0, 1], xaxis_title="Predicted probability", yaxis_title="Observed frequency")
    return fig


def training_curves(metrics, view: str) -> list[tuple[str, go.Figure]]:
    rows = metrics[metrics["view"] == view]
    loss = go.Figure([go.Scatter(x=rows["epoch"], y=rows[c], name=n, mode="lines+markers")
                      for c, n in (("train_loss", "training"), ("val_loss", "validation")) if c in rows])
    loss.update_layout(height=280, title=f"{formatting.model_name(view)}: loss", xaxis_title="Epoch", yaxis_title="Loss",
                       xaxis_tickformat="d")
    # View models: AUROC per binary finding; the view classifier: AUROC per view class.
    names = [t for t in (*BINARY_TARGETS, *CLASSIFIER_LABELS) if rows.get(f"val_{t}", pd.Series()).notna().any()]
    auroc = go.Figure([go.Scatter(x=rows["epoch"], y=rows[f"val_{t}"], mode="lines+markers",
                                  name=formatting.target_label(t) if t in BINARY_TARGETS else t) for t in names])
    auroc.update_layout(height=280, title=f"{formatting.model_name(view)}: validation AUROC", xaxis_title="Epoch",
                        yaxis_title="AUROC", yaxis_range=[0.0, 1.02], xaxis_tickformat="d")
    if not names:
        auroc.add_annotation(text="Not enough positive and negative validation cases yet", showarrow=False,
                             x=0.5, y=0.5, xref="paper", yref="paper")
    return [("loss", loss), ("val-auroc", auroc)]
