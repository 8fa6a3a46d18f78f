"""Tables of one study's prediction, formatted for reading (units, percentages, calls)."""

import pandas as pd

from echocmr.table2 import METRIC_LABELS
from echocmr.targets import TARGETS
from echocmr_app import formatting


def per_view_table(pred) -> pd.DataFrame:
    rows = [{"Finding": t.label,
             **{v: formatting.target_value(t.name, p.get(t.name)) for v, p in pred.per_view.items()}}
            for t in TARGETS if any(t.name in p for p in pred.per_view.values())]
    return pd.DataFrame(rows)


def fused_table(pred) -> pd.DataFrame:
    def call(p):
        if p.call is None:
            return "—"
        return ("Positive" if p.call else "Negative") if p.kind == "binary" else ("Abnormal" if p.call else "Normal")

    return pd.DataFrame([{
        "Finding": p.label, "Prediction": formatting.target_value(p.target, p.value),
        "Threshold": "≥ " + formatting.target_value(p.target, p.threshold) if p.threshold is not None else "—",
        "Call": call(p), "Sensitivity (test)": formatting.pct(p.sensitivity), "Specificity (test)": formatting.pct(p.specificity),
        "Views used": ", ".join(p.views_used)} for p in pred.fused.values()])


def table2_for_display(frame: pd.DataFrame) -> pd.DataFrame:
    """Table 2 as a reader sees it: 'Finding', 'Measure' with its unit, then one column per view."""
    measure = [METRIC_LABELS.get(m, m) + (f" ({u})" if u else "") for m, u in zip(frame["metric"], frame["unit"])]
    views = frame.drop(columns=["target", "label", "metric", "unit"]).rename(columns={"global": "Global (fused)"})
    shown = pd.concat([pd.DataFrame({"Finding": frame["label"], "Measure": measure}), views], axis=1)
    return shown.replace({"": "—", "n/a": "—"})
