"""Table 2: metric records as the paper's table (frame, terminal text), and the paper's own numbers.

:func:`format_estimate` is the project's one "value (interval)" formatter: the results bundle's
``table2.csv``, the terminal table and every page that shows an estimate use it.
"""

from __future__ import annotations

import math
from typing import Iterable

import pandas as pd

from .bootstrap_ci import format_interval, signed
from .metrics import MetricRecord
from .targets import GLOBAL, TARGETS, VIEW_ORDER

METRIC_LABELS = {"auroc": "AUROC", "mae": "MAE", "r2": "R²", "brier": "Brier", "bias": "bias"}
# Metrics read as fractions (three decimals); the others are in physical units.
FRACTION_METRICS = ("auroc", "r2", "brier")


def format_number(x: float, metric: str) -> str:
    """One number of ``metric``: three decimals for fractions, three significant digits for units."""
    if metric in FRACTION_METRICS:
        return f"{x:.3f}"
    # Values in physical units: three significant digits, never scientific notation.
    mag = math.floor(math.log10(abs(x))) if x != 0 else 0
    return f"{x:.{max(0, 2 - mag)}f}"


def format_estimate(value: float, low: float = math.nan, high: float = math.nan, metric: str = "auroc",
                    note: str = "", undefined: str = "n/a") -> str:
    """``"0.873 (0.816 to 0.922)"``, negative numbers with a minus sign (``"−0.417 to −0.021"``);
    the value and ``note`` (why there is no interval) without one; ``undefined`` for NaN."""
    if not _finite(value):
        return undefined
    text = signed(format_number(value, metric))
    if _finite(low) and _finite(high):
        text += f" ({format_interval(low, high, lambda x: format_number(x, metric))})"
    elif note:
        text += f" ({note})"
    return text


def _finite(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def format_cell(r: MetricRecord | None) -> str:
    """A Table 2 cell: ``"0.873 (0.816 to 0.922)"``; ``"n/a"`` when undefined, ``""`` when not computed."""
    if r is None:
        return ""
    return format_estimate(r.value, r.ci_low, r.ci_high, r.metric, r.note)


def table2_frame(metrics: Iterable[MetricRecord | dict]) -> pd.DataFrame:
    """Paper-style Table 2 as a frame: one row per (target, metric) — AUROC for binary targets,
    MAE and R² for continuous ones — with columns ``target, label, metric, unit, A4C, A2C, PLAX,
    global`` holding formatted cells ("" where not computed). Accepts MetricRecords or dicts."""
    recs = [r if isinstance(r, MetricRecord) else MetricRecord.from_dict(r) for r in metrics]
    index = {(r.target, r.view, r.metric): r for r in recs}
    rows = []
    for t in TARGETS:
        for metric in ("auroc",) if t.kind == "binary" else ("mae", "r2"):
            cells = {v: format_cell(index.get((t.name, v, metric))) for v in VIEW_ORDER}
            if any(cells.values()):
                unit = t.unit if metric == "mae" else ""
                rows.append({"target": t.name, "label": t.label, "metric": metric, "unit": unit, **cells})
    return pd.DataFrame(rows, columns=["target", "label", "metric", "unit", *VIEW_ORDER])


def format_table2(metrics: Iterable[MetricRecord | dict], title: str = "Table 2 — held-out test set") -> str:
    """Table 2 as aligned plain text for the terminal."""
    frame = table2_frame(metrics)
    header = ["target", *VIEW_ORDER]
    lines = []
    for _, row in frame.iterrows():
        name = f"{row['label']} — {METRIC_LABELS.get(row['metric'], row['metric'])}"
        if row["unit"]:
            name += f" ({row['unit']})"
        lines.append([name, *(row[v] or "—" for v in VIEW_ORDER)])
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines)] if lines else [len(h) for h in header]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [title, fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    out += [fmt.format(*line) for line in lines]
    return "\n".join(line.rstrip() for line in out)


# --------------------------------------------------------------------------------------------
# The paper's published results (PAPER.md, "Results on the held-out test set")

# Our reading of PAPER.md: the per-view WMA/LGE columns are the view models' own (view-restricted
# segment) tasks, hence wma_view / lge_view; the "global" column is the fused any-segment task.
# The paper reports no n per cell and no CI for R².
_P = MetricRecord
PAPER_RECORDS: tuple[MetricRecord, ...] = (
    _P("wma_view", "A4C", "auroc", 0.817, 0.791, 0.843),
    _P("wma_view", "A2C", "auroc", 0.756, 0.707, 0.802),
    _P("wma_view", "PLAX", "auroc", 0.812, 0.777, 0.847),
    _P("wma", GLOBAL, "auroc", 0.873, 0.816, 0.922),
    _P("lge_view", "A4C", "auroc", 0.657, 0.620, 0.693),
    _P("lge_view", "A2C", "auroc", 0.591, 0.522, 0.650),
    _P("lge_view", "PLAX", "auroc", 0.541, 0.483, 0.594),
    _P("lge", GLOBAL, "auroc", 0.699, 0.613, 0.780),
    _P("t1_abnormal", GLOBAL, "auroc", 0.614, 0.500, 0.715),
    _P("t2_abnormal", GLOBAL, "auroc", 0.553, 0.420, 0.692),
    _P("ecv_abnormal", GLOBAL, "auroc", 0.564, 0.455, 0.691),
    _P("t1", GLOBAL, "mae", 49.8, 47.5, 52.2),
    _P("t1", GLOBAL, "r2", 0.04),
    _P("t2", GLOBAL, "mae", 5.39, 5.07, 5.71),
    _P("t2", GLOBAL, "r2", 0.002),
    _P("ecv", GLOBAL, "mae", 4.38, 4.17, 4.58),
    _P("ecv", GLOBAL, "r2", 0.07),
)
del _P
PAPER_SOURCE = (
    "Sahashi et al., medRxiv 2024.04.16.24305936 — published held-out test results "
    "(AUROC, 95% CI from 10,000 bootstrap samples; continuous targets global MAE/R²)"
)


def paper_table2_frame() -> pd.DataFrame:
    """The paper's published Table 2 in the same layout as :func:`table2_frame`."""
    return table2_frame(PAPER_RECORDS)


# The paper's Table 2 in :func:`table2_frame` layout, to show beside ours (treat as read-only;
# PAPER_RECORDS holds the numbers as MetricRecords).
PAPER_RESULTS: pd.DataFrame = paper_table2_frame()
