"""Plotly figures of the analyses, drawn from their JSON records (``report.read_analysis``).

Every figure says what it is measured on in its title (the record's ``title`` carries data origin,
interval level and method); ``None`` values (no interval) are drawn as points without bars.
"""

from __future__ import annotations

import plotly.graph_objects as go

from ..targets import TARGETS_BY_NAME

COLOURS = ("#2F6690", "#D1495B", "#00798C", "#EDAE49", "#6A4C93", "#3A7D44")
HEIGHT = 460


def _label(target: str) -> str:
    return TARGETS_BY_NAME[target].label if target in TARGETS_BY_NAME else target


def _bars(rows: list[dict], value: str) -> dict:
    """Asymmetric error bars from ci_low/ci_high (0 where there is no interval)."""
    plus = [(r["ci_high"] - r[value]) if r.get("ci_high") is not None and r[value] is not None else 0 for r in rows]
    minus = [(r[value] - r["ci_low"]) if r.get("ci_low") is not None and r[value] is not None else 0 for r in rows]
    return dict(type="data", symmetric=False, array=plus, arrayminus=minus)


def _wrap(text: str, width: int = 140) -> str:
    import textwrap

    return "<br>".join(textwrap.wrap(text, width))


def _layout(fig: go.Figure, title: str, subtitle: str, **kwargs) -> go.Figure:
    kwargs.setdefault("height", HEIGHT)
    fig.update_layout(title=dict(text=f"{title}<br><sup>{_wrap(subtitle)}</sup>"), margin=dict(t=165), **kwargs)
    return fig


def comparison_figure(record: dict) -> go.Figure:
    """Forest plot of ΔAUROC (A − B) per finding and pair, with the paired bootstrap interval."""
    rows = [r for r in record["rows"] if r["delta"] is not None]
    labels = [f"{_label(r['target'])}: {r['model_a']} − {r['model_b']}" for r in rows]
    hover = [f"AUROC {r['auc_a']:.3f} vs {r['auc_b']:.3f}; DeLong p = {r['delong_p']:.3g}"
             if r["delong_p"] is not None else "" for r in rows]
    fig = go.Figure(go.Scatter(x=[r["delta"] for r in rows], y=labels, mode="markers", error_x=_bars(rows, "delta"),
                               marker=dict(size=9, color=COLOURS[0]), hovertext=hover, name="ΔAUROC"))
    fig.add_vline(x=0, line_dash="dot", line_color="#9AA5B1")
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, "Paired ΔAUROC", record["title"], xaxis_title="ΔAUROC (A − B)",
                   height=max(HEIGHT, 28 * len(rows) + 160))


def strata_figure(record: dict) -> go.Figure:
    """AUROC of each finding within each stratum (confounder analysis)."""
    fig = go.Figure()
    from .confounders import STRATA

    present = {r["stratum"] for r in record["rows"]}
    strata = [s for s in STRATA if s in present]
    for colour, stratum in zip(COLOURS, strata):
        rows = [r for r in record["rows"] if r["stratum"] == stratum and r["auroc"] is not None]
        fig.add_scatter(x=[_label(r["target"]) for r in rows], y=[r["auroc"] for r in rows], mode="markers",
                        error_y=_bars(rows, "auroc"), name=stratum, marker=dict(size=9, color=colour))
    fig.add_hline(y=0.5, line_dash="dot", line_color="#9AA5B1")
    return _layout(fig, "AUROC within strata: is it just function or anatomy?", record["title"],
                   yaxis_title="AUROC", yaxis_range=[0, 1.02], scattermode="group")


def incremental_figure(record: dict) -> go.Figure:
    """ΔAUROC of adding the echo model to the covariate models, with LR-test p in the hover."""
    fig = go.Figure()
    sets = list(dict.fromkeys(r["covariates"] for r in record["incremental"]))
    for colour, name in zip(COLOURS, sets):
        rows = [r for r in record["incremental"] if r["covariates"] == name]
        fig.add_scatter(x=[r["delta"] for r in rows], y=[_label(r["target"]) for r in rows], mode="markers",
                        error_x=_bars(rows, "delta"), name=f"echo added to {name}", orientation="h",
                        hovertext=[f"LR χ² {r['lr_statistic']:.2f}, p = {r['lr_p']:.3g}" for r in rows],
                        marker=dict(size=9, color=colour))
    fig.add_vline(x=0, line_dash="dot", line_color="#9AA5B1")
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, "Incremental value of the echo model (hover: likelihood-ratio test)", record["title"],
                   xaxis_title="ΔAUROC (covariates + echo − covariates)", scattermode="group")


def learning_curve_figure(record: dict) -> go.Figure:
    fig = go.Figure()
    targets = list(dict.fromkeys(r["target"] for r in record["rows"]))
    for colour, target in zip(COLOURS, targets):
        rows = sorted((r for r in record["rows"] if r["target"] == target and r["auroc"] is not None),
                      key=lambda r: r["n_train_patients"])
        fig.add_scatter(x=[r["n_train_patients"] for r in rows], y=[r["auroc"] for r in rows], mode="lines+markers",
                        error_y=_bars(rows, "auroc"), name=_label(target), line_color=colour)
    fig.add_hline(y=0.5, line_dash="dot", line_color="#9AA5B1")
    return _layout(fig, "Learning curve", record["title"], xaxis_title="training patients",
                   yaxis_title="held-out AUROC", yaxis_range=[0, 1.02])


def _detected_text(record: dict, n: int) -> str:
    smallest = record["smallest_detected"].get(str(n))
    if smallest is None:
        return f"no signal up to {max(record['inputs']['signals']):g} detected"
    return f"smallest detected: {smallest:g}"


def power_figure(record: dict) -> go.Figure:
    """Held-out AUROC vs planted signal, one line per cohort size; filled markers = detected."""
    target = record["inputs"]["target"]
    fig = go.Figure()
    sizes = sorted({r["n_patients"] for r in record["rows"]})
    for colour, n in zip(COLOURS, sizes):
        rows = sorted((r for r in record["rows"] if r["n_patients"] == n and r["target"] == target
                       and r["auroc"] is not None), key=lambda r: r["signal"])
        fig.add_scatter(x=[r["signal"] for r in rows], y=[r["auroc"] for r in rows], mode="lines+markers",
                        error_y=_bars(rows, "auroc"), name=f"{n} patients ({_detected_text(record, n)})", line_color=colour,
                        marker=dict(size=10, symbol=["circle" if r["detected"] else "circle-open" for r in rows]))
    fig.add_hline(y=0.5, line_dash="dot", line_color="#9AA5B1")
    return _layout(fig, f"Detectable tissue signal: {_label(target)}", record["title"],
                   xaxis_title="planted tissue_signal", yaxis_title="held-out AUROC", yaxis_range=[0, 1.02])


def figures_for(record: dict) -> list[go.Figure]:
    """The figures of one analysis record, by its kind."""
    kind = record["kind"]
    if kind == "comparison":
        return [comparison_figure(record)]
    if kind == "confounders":
        return [strata_figure(record), incremental_figure(record)]
    if kind == "learning_curve":
        return [learning_curve_figure(record)]
    return [power_figure(record)]
