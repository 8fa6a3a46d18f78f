"""Page sections for the per-segment (AHA 17) findings: a study's bullseye on the Predict page,
held-out AUROC per segment (and any test study against its CMR truth) on the Results page.

Drawing only: the values come from ``echocmr.segments`` / ``echocmr.segment_eval``.
"""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from echocmr.bootstrap_ci import describe_intervals, format_interval, level_text
from echocmr.targets import MODEL_VIEWS, SEGMENT_FINDINGS, VIEW_SEGMENTS
from echocmr_app import bullseye, layout

FINDING_NAMES = {"wma": "Wall-motion abnormality (WMA)", "lge": "Late gadolinium enhancement (LGE)"}
RULE = ("A segment's probability is the mean over the study's used clips whose view shows it ("
        + "; ".join(f"{view}: {', '.join(map(str, sorted(VIEW_SEGMENTS[view])))}" for view in MODEL_VIEWS)
        + "); grey: no used clip shows it.")


def _finding(key: str) -> str:
    return st.radio("Finding", SEGMENT_FINDINGS, format_func=FINDING_NAMES.get, horizontal=True, key=key)


def _origin(synthetic: bool | None) -> str:
    return "synthetic cohort" if synthetic else "real data" if synthetic is False else "data origin not recorded"


def example_truth(study_dir):
    """The bundled example study's CMR truth per segment (None when the bundle ships none or it is
    damaged: the prediction is still shown, with a note)."""
    from echocmr.errors import CheckpointError
    from echocmr.segments import read_example_truth

    if study_dir is None:
        return None
    try:
        return read_example_truth(study_dir)
    except CheckpointError as exc:
        st.caption(f"The example study's CMR truth was not used: {exc}")
        return None


def _show_predicted(values: dict[int, float], views: dict[int, tuple[str, ...]], finding: str, name: str) -> None:
    fig = bullseye.figure(bullseye.probability_cells(values, views), f"{finding.upper()}: predicted probability",
                          (0.0, 1.0), "probability")
    layout.show_figure(fig, name, html_download=False)


def _show_truth(values: dict[int, float], finding: str, name: str) -> None:
    fig = bullseye.figure(bullseye.truth_cells(values), f"{finding.upper()}: CMR truth", (0.0, 1.0), "",
                          discrete=bullseye.TRUTH_COLOURS)
    layout.show_figure(fig, name, html_download=False)


def predict_section(pred, truth, key: str) -> None:
    """Where: the study's predicted probability per AHA segment, beside the CMR truth if known.

    ``truth``: an ``echocmr.segments.SegmentMap`` (bundled example study) or None."""
    st.subheader("Where: per AHA segment")
    if pred.segments is None or not pred.segments.any_value():
        st.info("This model predicts no per-segment findings (it was trained before per-segment outputs, or no "
                "used clip shows a segment): no bullseye for this study.", icon=":material/info:")
        return
    finding = _finding(f"segment-finding-{key}")
    left, right = st.columns(2)
    with left:
        _show_predicted(pred.segments.values[finding], pred.segments.views, finding, f"bullseye-{finding}-predicted")
    with right:
        if truth is not None:
            _show_truth(truth.values[finding], finding, f"bullseye-{finding}-truth")
            st.caption("CMR truth of the bundled example study (synthetic report): dark = abnormal segment.")
        else:
            st.caption("CMR truth is not known for an uploaded study. The bundled example study, and every "
                       "held-out test study on the Results page (\"Per segment\"), show it beside the prediction.")
    st.caption(f"{RULE} Probabilities are the model's, not calibrated calls; held-out AUROC per segment is on "
               f"the Results page. Model trained on the {_origin(pred.synthetic)}.")


def results_section(res) -> None:
    """Held-out AUROC per segment, and one test study's prediction against its CMR truth."""
    seg = res.segments
    if seg is None:
        if res.segments_problem:
            st.error(f"The per-segment results of this bundle were not used: {res.segments_problem}",
                     icon=":material/block:")
        else:
            st.info("These results have no per-segment AUROCs: the models were trained before per-segment outputs "
                    "(or the data had no segment labels). Retrain and evaluate to get them.", icon=":material/info:")
        return
    info = seg.info
    finding = _finding("segment-finding-results")
    records = [r for r in seg.records if r.finding == finding]
    level = f"{level_text(info)}, {info.get('ci_method', '?')} bootstrap of {info.get('resample_unit', '?')}s"
    left, right = st.columns([3, 2])
    with left:
        fig = bullseye.figure(bullseye.auroc_cells(records, level), f"{finding.upper()}: held-out AUROC per segment",
                              (0.5, 1.0), "AUROC")
        layout.show_figure(fig, f"bullseye-auroc-{finding}")
    with right:
        st.markdown(f"**{FINDING_NAMES[finding]}** · {info.get('n_studies', '—')} test studies of "
                    f"{info.get('n_patients', '—')} patients · {_origin(info.get('synthetic'))}")
        st.caption(f"{describe_intervals(info)}; hover a segment for its interval. Hatched: AUROC withheld, "
                   f"fewer than {info.get('min_class_units', '?')} test patients with, or without, the finding in "
                   "that segment. Grey: no test study had a clip of a view that shows it. " + RULE)
    table = segment_table(records)
    st.dataframe(table, hide_index=True, width="stretch")
    layout.csv_download(table, f"segments-{finding}", "Download per-segment AUROCs (CSV)")
    test_study_section(seg, finding)


def segment_table(records: list) -> pd.DataFrame:
    def interval(r) -> str:
        return "—" if r.status != "ok" else format_interval(r.ci_low, r.ci_high, lambda x: f"{x:.2f}")

    return pd.DataFrame([{"Segment": f"{r.segment}. {r.name}", "Views": " + ".join(r.views),
                          "AUROC": f"{r.auroc:.2f}" if math.isfinite(r.auroc) else "—", "Interval": interval(r),
                          "Studies": r.n, "With finding": r.n_positive, "Note": r.note} for r in records])


def test_study_section(seg, finding: str) -> None:
    """One held-out test study: predicted probability per segment beside its CMR truth."""
    frame = seg.predictions
    frame = frame[frame["finding"] == finding] if len(frame) else frame
    studies = sorted(frame["study"].unique()) if len(frame) else []
    if not studies:
        return
    st.markdown("**One test study: prediction beside CMR truth**")
    study = st.selectbox("Test study (pseudonymous id)", studies, key=f"segment-study-{finding}")
    rows = frame[frame["study"] == study].set_index("segment")
    predicted = {int(s): float(v) for s, v in rows["y_pred"].items()}
    truth = {int(s): float(v) for s, v in rows["y_true"].items()}
    left, right = st.columns(2)
    with left:
        _show_predicted(predicted, {}, finding, f"bullseye-{finding}-test-predicted")
    with right:
        _show_truth(truth, finding, f"bullseye-{finding}-test-truth")
