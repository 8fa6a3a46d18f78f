"""Scoring a split: per-study predictions + labels → metrics with bootstrap intervals.

Pipeline (orchestrated by :mod:`echocmr.evaluate`)::

    per-clip predictions ──aggregate_per_study──▶ per-study, per-view predictions
          (val + test)                              │
                          fit_fusion (val only) ◀───┤
                                                    ▼
                    evaluate_split (test; thresholds from val) ──▶ ResultsBundle

Bootstrap CIs resample patients (cluster bootstrap, all of a patient's studies together) or
studies, per ``EvalConfig.resample_unit``; the same resamples are used for every cell of the
table, so cells are paired.

Cells: for every model view, the view-specific targets (``wma_view``, ``lge_view``, labelled per
study × view) and every global target as predicted by that view's model; for ``"global"``, the
fused prediction of every target in ``GLOBAL_TARGETS``. Binary: AUROC and Brier score.
Continuous: MAE, R², Bland–Altman bias and limits of agreement. All with bootstrap CIs.
"""

from __future__ import annotations

import logging
import math
import time

import numpy as np
import pandas as pd

from . import bootstrap as B
from . import calls as C
from . import metrics as M
from .bootstrap_ci import IntervalSpec, estimate
from .config import EvalConfig
from .errors import EvaluationError
from .fusion import FusionModel
from .jsonfile import now_iso
from .metrics import MetricRecord
from .per_study import aggregate_per_study, fit_fusion, long_predictions
from .results import ResultsBundle
from .targets import TARGETS, TARGETS_BY_NAME, VIEW_ORDER
from .units import to_patient_level

log = logging.getLogger(__name__)


def _cell_key(target: str, view: str) -> str:
    return f"{target}|{view}"


def _record(target, view, metric, est: M.Estimate, **extra) -> MetricRecord:
    return MetricRecord(target, view, metric, float(est.value), float(est.low), float(est.high), int(est.n), **extra)


def too_few_units_note(y: np.ndarray, units: np.ndarray, minimum: int, unit_name: str) -> str:
    """Why an AUROC interval is not given ("" when it is): fewer than ``minimum`` distinct
    ``units`` (patients or studies) with, or without, the finding. y, units: ``(m,)``."""
    positive = y > 0.5
    n_with, n_without = len(np.unique(units[positive])), len(np.unique(units[~positive]))
    if min(n_with, n_without) >= minimum:
        return ""
    which, count = ("with", n_with) if n_with < n_without else ("without", n_without)
    plural = {"patient": "patients", "study": "studies"}.get(unit_name, unit_name + "s")
    return (f"interval withheld: {count} {unit_name if count == 1 else plural} {which} the finding "
            f"(minimum {minimum})")


def _binary_cell(target, view, y, p, counts, spec: IntervalSpec, units, note: str = "", n_bins=10):
    """Metrics and curves of one binary cell. y, p, units: ``(m,)``; counts ``(B, m)``; ``note``
    non-empty: too few units for an AUROC interval (the value is still reported, with the reason).

    Returns (records, roc entry, calibration entry, resamples dropped as single-class)."""
    if note:  # no interval: skip its bootstrap
        auc = M.Estimate(M.auroc(y, p), math.nan, math.nan, int(y.size))
    else:
        auc = estimate(M.auroc(y, p), lambda c: B.bootstrap_auroc(y, p, c), counts, spec, units)
    recs = [_record(target, view, "auroc", auc, n_positive=int((y > 0.5).sum()), note=note)]
    brier = estimate(M.brier(y, p), lambda c: B.bootstrap_brier(y, p, c), counts, spec, units)
    recs.append(_record(target, view, "brier", brier))
    roc = M.roc_curve(y, p)
    roc_entry = {"fpr": roc["fpr"], "tpr": roc["tpr"], "thresholds": roc["thresholds"], "band": {}}
    if not note:  # the band would mislead for the same reason as the AUROC interval
        band = B.bootstrap_roc_band(y, p, counts, spec.level)
        roc_entry["band"] = {"fpr": band["fpr"], "tpr_low": band["tpr_low"], "tpr_high": band["tpr_high"]}
    return recs, roc_entry, M.calibration_curve(y, p, n_bins), auc.n_nan


def _continuous_cell(target, view, y, p, counts, spec: IntervalSpec, units):
    """Returns (records, Bland–Altman entry, resamples whose R² was undefined)."""
    ba = M.bland_altman(y, p)

    def part(name):
        return lambda c: B.bootstrap_bland_altman(y, p, c)[name]

    r2 = estimate(M.r2(y, p), lambda c: B.bootstrap_r2(y, p, c), counts, spec, units)
    mae = estimate(M.mae(y, p), lambda c: B.bootstrap_mae(y, p, c), counts, spec, units)
    recs = [
        _record(target, view, "mae", mae),
        _record(target, view, "r2", r2),
        _record(target, view, "bias", estimate(ba.bias, part("bias"), counts, spec, units)),
        _record(target, view, "loa_low", estimate(ba.loa_low, part("loa_low"), counts, spec, units)),
        _record(target, view, "loa_high", estimate(ba.loa_high, part("loa_high"), counts, spec, units)),
    ]
    return recs, ba.to_dict(), r2.n_nan


def bootstrap_for_studies(studies: pd.DataFrame, config: EvalConfig) -> np.ndarray:
    """Count matrix ``(n_bootstrap, n_studies)`` for ``studies`` (columns study, patient) in row
    order, resampling ``config.resample_unit`` units."""
    if config.resample_unit not in ("patient", "study"):
        raise EvaluationError(f"resample_unit must be 'patient' or 'study'; got {config.resample_unit!r}")
    if not 0.0 < config.ci_level < 1.0:
        raise EvaluationError(f"ci_level must be in (0, 1); got {config.ci_level!r}")
    rng = np.random.default_rng(config.seed)
    groups = resampling_units(studies, config) if config.resample_unit == "patient" else None
    return B.bootstrap_counts(groups, len(studies), int(config.n_bootstrap), rng)


def resampling_units(studies: pd.DataFrame, config: EvalConfig) -> np.ndarray:
    """The bootstrap's unit of each row of ``studies`` (columns study, patient), as strings."""
    if config.resample_unit == "study":
        return ("study:" + studies["study"].astype(str)).to_numpy()
    patient = studies["patient"].astype(str)
    # A study without a patient id is its own cluster (never pooled under "nan").
    unknown = studies["patient"].isna() | patient.isin(["", "nan", "None"])
    return np.where(unknown, "study:" + studies["study"].astype(str), "patient:" + patient)


def evaluate_split(
    per_study: pd.DataFrame,
    labels: pd.DataFrame,
    fusion: FusionModel,
    config: EvalConfig = EvalConfig(),
    *,
    split: str = "test",
    threshold_split: str = "val",
    synthetic: bool | None = None,
) -> ResultsBundle:
    """Evaluate one split (default the held-out test set).

    per_study: :func:`aggregate_per_study` output (may hold several splits); labels: per-clip
    labels (``manifest.csv`` rows: study, patient, split, view, status, targets). Operating
    points: per global binary target the Youden-J threshold on ``threshold_split`` fused
    predictions, with sensitivity/specificity measured on ``split``.
    """
    started = time.perf_counter()
    allpred = long_predictions(per_study, labels, fusion)
    n_studies = int(allpred.loc[allpred["split"] == split, "study"].nunique())
    if config.unit == "patient":  # one aggregated prediction per patient (echocmr.units)
        allpred = to_patient_level(allpred)
    elif config.unit != "study":
        raise EvaluationError(f"unit must be 'study' or 'patient'; got {config.unit!r}")
    preds = allpred[allpred["split"] == split].reset_index(drop=True)
    if preds.empty:
        raise EvaluationError(f"no predictions for split {split!r}; splits present: "
                              f"{sorted(set(per_study['split']))}")
    studies = preds.drop_duplicates("study")[["study", "patient"]].sort_values("study").reset_index(drop=True)
    position = pd.Series(np.arange(len(studies)), index=studies["study"])
    counts = bootstrap_for_studies(studies, config)
    units = resampling_units(studies, config)
    spec = interval_spec(config)

    records: list[MetricRecord] = []
    roc, bland, calib, nan_resamples = {}, {}, {}, {}
    labelled = preds.dropna(subset=["y_true", "y_pred"])
    for (target, view), cell in labelled.groupby(["target", "view"], sort=False):
        y = cell["y_true"].to_numpy(dtype=np.float64)
        p = cell["y_pred"].to_numpy(dtype=np.float64)
        columns = position.reindex(cell["study"]).to_numpy()
        c = counts[:, columns]
        key = _cell_key(target, view)
        if TARGETS_BY_NAME[target].kind == "binary":
            note = too_few_units_note(y, units[columns], config.min_class_units, config.resample_unit)
            recs, roc[key], calib[key], n_nan = _binary_cell(target, view, y, p, c, spec, units[columns], note)
            if n_nan:
                nan_resamples[f"{key}|auroc"] = n_nan
        else:
            recs, bland[key], n_nan = _continuous_cell(target, view, y, p, c, spec, units[columns])
            if n_nan:
                nan_resamples[f"{key}|r2"] = n_nan
        records.extend(recs)
    records.sort(key=_record_order)

    ops = C.operating_points(allpred, records, counts, units, position, spec, config.min_class_units,
                             split=split, threshold_split=threshold_split)
    summary = {
        "synthetic": synthetic,
        "n_test_studies": n_studies,
        "unit": config.unit,
        "n_test_units": len(studies),
        "n_bootstrap": int(config.n_bootstrap),
        "resample_unit": config.resample_unit,
        "created": now_iso(),
        "split": split,
        "n_test_patients": int(studies["patient"].nunique()),
        "ci_level": float(spec.level),
        "ci_method": spec.method,
        "seed": int(config.seed),
        "fusion_fitted_on": threshold_split,
        "min_class_units": int(config.min_class_units),
        "nan_resamples": nan_resamples,
        "seconds": round(time.perf_counter() - started, 3),
    }
    return ResultsBundle(preds, records, roc, bland, calib, ops, summary)


def _record_order(r: MetricRecord):
    t_order = [t.name for t in TARGETS]
    v_order = list(VIEW_ORDER)
    return (
        t_order.index(r.target) if r.target in t_order else len(t_order),
        v_order.index(r.view) if r.view in v_order else len(v_order),
        r.metric,
    )


def interval_spec(config: EvalConfig) -> IntervalSpec:
    """How the intervals of an evaluation are made (level, percentile or BCa, resamples, unit)."""
    return IntervalSpec(float(config.ci_level), config.ci_method, int(config.n_bootstrap), config.resample_unit)


def evaluate_predictions(
    clip_preds: pd.DataFrame,
    labels: pd.DataFrame,
    config: EvalConfig = EvalConfig(),
    synthetic: bool | None = None,
    **fusion_kwargs,
) -> tuple[ResultsBundle, FusionModel]:
    """The whole evaluation: aggregate clips, fit fusion on val, evaluate test."""
    per_study = aggregate_per_study(clip_preds)
    val = per_study[per_study["split"] == "val"]
    if val.empty:
        # A tiny cohort may have no validation studies: every subset falls back to the mean.
        log.warning("no validation-split predictions: fusion falls back to the mean of the views")
    labels_val = labels[labels["split"].astype(str) == "val"] if "split" in labels.columns else labels
    fusion = fit_fusion(val, labels_val, **fusion_kwargs)
    bundle = evaluate_split(per_study, labels, fusion, config, synthetic=synthetic)
    from .segment_eval import evaluate_segments  # per AHA segment, when the models predict segments

    bundle.segments = evaluate_segments(clip_preds, labels, config, synthetic=synthetic)
    return bundle, fusion
