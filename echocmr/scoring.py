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
from . import metrics as M
from .config import EvalConfig
from .errors import EvaluationError
from .fusion import FusionModel
from .jsonfile import now_iso
from .metrics import MetricRecord
from .per_study import aggregate_per_study, fit_fusion, long_predictions
from .results import ResultsBundle
from .targets import BINARY_TARGETS, GLOBAL, GLOBAL_TARGETS, TARGETS, TARGETS_BY_NAME, VIEW_ORDER

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
    which, count = ("positive", n_with) if n_with < n_without else ("negative", n_without)
    plural = {"patient": "patients", "study": "studies"}.get(unit_name, unit_name + "s")
    return f"no CI: {count} {which} {unit_name if count == 1 else plural}"


def _binary_cell(target, view, y, p, counts, level, note: str = "", n_bins=10):
    """Metrics and curves of one binary cell. y, p: ``(m,)``; counts ``(B, m)``; ``note``
    non-empty: too few units for an AUROC interval (the value is still reported).

    Returns (records, roc entry, calibration entry, resamples dropped as single-class)."""
    if note:  # no interval: skip its bootstrap
        auc = M.Estimate(M.auroc(y, p), math.nan, math.nan, int(y.size))
    else:
        auc = B.auroc_ci(y, p, counts, level)
    recs = [_record(target, view, "auroc", auc, n_positive=int((y > 0.5).sum()), note=note)]
    brier = B.with_ci(M.brier(y, p), B.bootstrap_brier(y, p, counts), level, y.size)
    recs.append(_record(target, view, "brier", brier))
    roc = M.roc_curve(y, p)
    roc_entry = {"fpr": roc["fpr"], "tpr": roc["tpr"], "thresholds": roc["thresholds"], "band": {}}
    if not note:  # the band would mislead for the same reason as the AUROC interval
        band = B.bootstrap_roc_band(y, p, counts, level)
        roc_entry["band"] = {"fpr": band["fpr"], "tpr_low": band["tpr_low"], "tpr_high": band["tpr_high"]}
    return recs, roc_entry, M.calibration_curve(y, p, n_bins), auc.n_nan


def _continuous_cell(target, view, y, p, counts, level):
    """Returns (records, Bland–Altman entry, resamples whose R² was undefined)."""
    ba = M.bland_altman(y, p)
    boot_ba = B.bootstrap_bland_altman(y, p, counts)
    n = y.size
    r2 = B.r2_ci(y, p, counts, level)
    recs = [
        _record(target, view, "mae", B.mae_ci(y, p, counts, level)),
        _record(target, view, "r2", r2),
        _record(target, view, "bias", B.with_ci(ba.bias, boot_ba["bias"], level, n)),
        _record(target, view, "loa_low", B.with_ci(ba.loa_low, boot_ba["loa_low"], level, n)),
        _record(target, view, "loa_high", B.with_ci(ba.loa_high, boot_ba["loa_high"], level, n)),
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
    preds = allpred[allpred["split"] == split].reset_index(drop=True)
    if preds.empty:
        raise EvaluationError(f"no predictions for split {split!r}; splits present: "
                              f"{sorted(set(per_study['split']))}")
    studies = preds.drop_duplicates("study")[["study", "patient"]].sort_values("study").reset_index(drop=True)
    position = pd.Series(np.arange(len(studies)), index=studies["study"])
    counts = bootstrap_for_studies(studies, config)
    units = resampling_units(studies, config)
    level = config.ci_level

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
            recs, roc[key], calib[key], n_nan = _binary_cell(target, view, y, p, c, level, note)
            if n_nan:
                nan_resamples[f"{key}|auroc"] = n_nan
        else:
            recs, bland[key], n_nan = _continuous_cell(target, view, y, p, c, level)
            if n_nan:
                nan_resamples[f"{key}|r2"] = n_nan
        records.extend(recs)
    records.sort(key=_record_order)

    ops = operating_points(allpred, split=split, threshold_split=threshold_split)
    summary = {
        "synthetic": synthetic,
        "n_test_studies": int(len(studies)),
        "n_bootstrap": int(config.n_bootstrap),
        "resample_unit": config.resample_unit,
        "created": now_iso(),
        "split": split,
        "n_test_patients": int(studies["patient"].nunique()),
        "ci_level": float(level),
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


def operating_points(allpred: pd.DataFrame, split: str = "test", threshold_split: str = "val") -> dict:
    """Global binary targets: Youden-J threshold on ``threshold_split``, sens/spec on ``split``.

    allpred: long predictions (:func:`long_predictions`) including both splits.
    Returns ``{target: {"threshold", "sensitivity", "specificity", "n_val", "n_test"}}``.
    """
    out = {}
    fused = allpred[(allpred["view"] == GLOBAL)].dropna(subset=["y_true", "y_pred"])
    for t in (t for t in GLOBAL_TARGETS if t in BINARY_TARGETS):
        cell = fused[fused["target"] == t]
        if cell.empty:
            continue
        val = cell[cell["split"] == threshold_split]
        test = cell[cell["split"] == split]
        thr = M.youden_threshold(val["y_true"].to_numpy(), val["y_pred"].to_numpy()) if len(val) else math.nan
        if math.isnan(thr) or test.empty:
            sens = spec = math.nan
        else:
            sens, spec = M.sensitivity_specificity(test["y_true"].to_numpy(), test["y_pred"].to_numpy(), thr)
        out[t] = {"threshold": thr, "sensitivity": sens, "specificity": spec,
                  "n_val": int(len(val)), "n_test": int(len(test))}
    return out


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
    return bundle, fusion
