"""Tables of one study's prediction, formatted for reading (units, percentages, calls)."""

import pandas as pd

import ui
from echocmr.targets import TARGETS


def per_view_table(pred) -> pd.DataFrame:
    rows = [{"Finding": t.label,
             **{v: ui.target_value(t.name, p.get(t.name)) for v, p in pred.per_view.items()}}
            for t in TARGETS if any(t.name in p for p in pred.per_view.values())]
    return pd.DataFrame(rows)


def rate_text(r: dict) -> str:
    """'82 % (70 to 91 %)'; without an interval, the value and why it has none."""
    from echocmr.bootstrap_ci import format_interval

    if not ui._finite(r.get("value")):
        return "—"
    text = ui.pct(r["value"])
    if ui._finite(r.get("ci_low")) and ui._finite(r.get("ci_high")):
        return f"{text} ({format_interval(r['ci_low'], r['ci_high'], lambda x: f'{100 * x:.0f}')} %)"
    return f"{text} ({r.get('note') or 'no interval'})"


def fused_table(pred) -> pd.DataFrame:
    """One row per fused finding: value, threshold, call (or "not called"), rates with intervals."""
    from echocmr.calls import RATES

    names = {"sensitivity": "Sensitivity", "specificity": "Specificity", "ppv": "PPV", "npv": "NPV"}
    rows = []
    for p in pred.fused.values():
        row = {"Finding": p.label, "Prediction": ui.target_value(p.target, p.value),
               "Threshold": "≥ " + ui.target_value(p.target, p.threshold) if p.threshold is not None else "—",
               "Call": p.status.capitalize() if p.called else p.status}
        row.update({f"{names[r]} (test)": rate_text(p.rates[r]) if p.called and r in p.rates else "—"
                    for r in RATES})
        row.update({"Held-out evidence": p.evidence, "Views used": ", ".join(p.views_used)})
        rows.append(row)
    return pd.DataFrame(rows)


def style_fused(frame: pd.DataFrame):
    """Findings that are not called look different: grey italic rows."""
    from echocmr.calls import NOT_CALLED

    def grey(row):
        muted = row["Call"] == NOT_CALLED
        return ["color: #6B7B8C; font-style: italic" if muted else "" for _ in row]

    return frame.style.apply(grey, axis=1)


def table2_for_display(frame: pd.DataFrame) -> pd.DataFrame:
    """Table 2 as a reader sees it: 'Finding', 'Measure' with its unit, then one column per view."""
    from echocmr.evaluate import METRIC_LABELS

    measure = [METRIC_LABELS.get(m, m) + (f" ({u})" if u else "") for m, u in zip(frame["metric"], frame["unit"])]
    views = frame.drop(columns=["target", "label", "metric", "unit"]).rename(columns={"global": "Global (fused)"})
    shown = pd.concat([pd.DataFrame({"Finding": frame["label"], "Measure": measure}), views], axis=1)
    return shown.replace({"": "—", "n/a": "—"})
