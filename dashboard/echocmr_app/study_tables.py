"""Tables of one study's prediction, formatted for reading (units, percentages, calls)."""

import pandas as pd

from echocmr.table2 import METRIC_LABELS
from echocmr.targets import TARGETS
from echocmr_app import formatting, loaders


def per_view_table(pred) -> pd.DataFrame:
    rows = [{"Finding": t.label,
             **{v: formatting.target_value(t.name, p.get(t.name)) for v, p in pred.per_view.items()}}
            for t in TARGETS if any(t.name in p for p in pred.per_view.values())]
    return pd.DataFrame(rows)


RATE_NAMES = {"sensitivity": "Sensitivity", "specificity": "Specificity", "ppv": "PPV", "npv": "NPV"}


def rate_text(r: dict) -> str:
    """'82 % (70 to 91 %)'; without an interval, the value and why it has none."""
    from echocmr.bootstrap_ci import format_interval

    if not formatting.is_finite(r.get("value")):
        return "—"
    text = formatting.pct(r["value"])
    if formatting.is_finite(r.get("ci_low")) and formatting.is_finite(r.get("ci_high")):
        return f"{text} ({format_interval(r['ci_low'], r['ci_high'], lambda x: f'{100 * x:.0f}')} %)"
    return f"{text} ({r.get('note') or 'no interval'})"


def fused_table(pred) -> pd.DataFrame:
    """One row per fused finding: value, threshold, call (or "not called"), rates with intervals."""
    from echocmr.calls import RATES

    names = RATE_NAMES
    rows = []
    for p in pred.fused.values():
        row = {"Finding": p.label, "Prediction": formatting.target_value(p.target, p.value),
               "Threshold": "≥ " + formatting.target_value(p.target, p.threshold) if p.threshold is not None else "—",
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
    """Table 2 as a reader sees it: 'Finding', 'Measure' with its unit, the fused column first
    (it never scrolls out of a 1400-px window), then one column per view."""
    measure = [METRIC_LABELS.get(m, m) + (f" ({u})" if u else "") for m, u in zip(frame["metric"], frame["unit"])]
    views = frame.drop(columns=["target", "label", "metric", "unit"]).rename(columns={"global": "Global (fused)"})
    views = views[["Global (fused)", *[c for c in views.columns if c != "Global (fused)"]]]
    shown = pd.concat([pd.DataFrame({"Finding": frame["label"], "Measure": measure}), views], axis=1)
    # The reason is long and the same for every such cell: the caption under the table gives it.
    shown = shown.replace(r" \(interval withheld: .*\)\)$", " (interval withheld *)", regex=True)
    return shown.replace({"": "—", "n/a": "—"})


def fusion_table(fusion) -> pd.DataFrame:
    """Which fusion each finding uses for a study with every view, and the cross-validated scores."""
    from echocmr.targets import TARGETS_BY_NAME

    def score(x):
        return "—" if x is None else f"{x:.3f}".replace("-", "\u2212")

    names = {"logistic": "regularised logistic", "ridge": "ridge", "mean": "mean of the views",
             "linear": "least squares (old)"}
    return pd.DataFrame([{
        "Finding": TARGETS_BY_NAME[r["target"]].label, "Fusion used": names.get(r["method"], r["method"]),
        "Views": r["views"], "CV score of the fit": score(r["cv_fused"]), "CV score of the mean": score(r["cv_mean"]),
        "Scored by": r["cv_metric"], "Validation studies (positive)": f"{r['n_fit']}" + (
            f" ({r['n_pos']})" if r["n_pos"] is not None else ""), "Why": r["reason"]} for r in fusion.summary_rows()])


def calls_table(operating_points: dict) -> pd.DataFrame:
    """Per fused finding: called or not (and the evidence), threshold, rates with intervals."""
    from echocmr.calls import NOT_CALLED, rate
    from echocmr.targets import TARGETS_BY_NAME

    rows = []
    for t, point in operating_points.items():
        spec = TARGETS_BY_NAME.get(t)
        if spec is None:
            continue
        row = {"Finding": spec.label, "Called": "yes" if point.get("called") else NOT_CALLED,
               "Held-out evidence": point.get("evidence", "—"),
               "Threshold": "≥ " + formatting.target_value(t, point.get("threshold"))}
        for name, label in (("sensitivity", "Sensitivity"), ("specificity", "Specificity"), ("ppv", "PPV"),
                            ("npv", "NPV")):
            row[label] = rate_text(rate(point, name)) if spec.kind == "binary" else "—"
        rows.append(row)
    return pd.DataFrame(rows)


def fusion_section(results_path: str, res) -> None:
    """The Results page's "Fusion and calls" tab."""
    from pathlib import Path

    import streamlit as st

    from echocmr.bootstrap_ci import describe_intervals
    from echocmr.fusion import FusionModel

    candidates = [Path(results_path) / "fusion.json", Path(results_path).parent / "fusion.json"]
    found = next((p for p in candidates if p.is_file()), None)
    data = loaders.json_file(found) if found else None
    if data:
        fusion = FusionModel.from_json(data)
        st.markdown("**Fusion** (fitted on the validation split; a study with all three views)")
        st.dataframe(fusion_table(fusion), hide_index=True, width="stretch")
        fit = fusion.fit_config
        if fit:
            st.caption(f"Regularisation strength chosen by nested {fit.get('n_folds')}-fold cross-validation over "
                       "validation studies grouped by patient; the fit is kept only if its cross-validated score "
                       f"beats the plain mean of the views by more than {fit.get('min_gain')}. Nothing is fitted "
                       f"below {fit.get('min_per_class')} validation studies per class (binary) or "
                       f"{fit.get('min_studies')} studies (continuous).")
    st.markdown("**Calls** (what the Predict page calls, and how well, on the held-out test set)")
    st.dataframe(calls_table(res.operating_points), hide_index=True, width="stretch")
    st.caption("A finding is called only when the held-out AUROC's lower bound is above 0.5 (T1, T2, ECV: the "
               "R²'s lower bound above 0). Called positive when the score is at or above the threshold "
               f"(chosen on validation by Youden's J). {describe_intervals(res.summary)}.")
