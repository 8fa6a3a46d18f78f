"""Held-out evaluation: per-study aggregation, view fusion, bootstrap statistics, results bundle.

Pipeline (``echocmr evaluate`` is a thin wrapper around :func:`evaluate_predictions`)::

    per-clip predictions ──aggregate_per_study──▶ per-study, per-view predictions
          (val + test)                              │
                          fit_fusion (val only) ◀───┤
                                                    ▼
                    evaluate_split (test; thresholds from val) ──▶ ResultsBundle
                                                    │
                                      write_results / read_results (docs/ARCHITECTURE.md)

Units of analysis: a per-view prediction of a study is the mean over that study's clips of that
view; the unit of every metric is the study. Bootstrap CIs resample patients (cluster bootstrap,
all of a patient's studies together) or studies, per ``EvalConfig.resample_unit``; the same
resamples are used for every cell of the table, so cells are paired.

Cells: for every model view, the view-specific targets (``wma_view``, ``lge_view``, labelled per
study × view) and every global target as predicted by that view's model; for ``"global"``, the
fused prediction of every target in ``GLOBAL_TARGETS``. Binary: AUROC and Brier score.
Continuous: MAE, R², Bland–Altman bias and limits of agreement. All with bootstrap CIs.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from . import metrics as M
from .atomic import atomic_write_text
from .config import EvalConfig
from .errors import EchoCMRError
from .fusion import FusionModel, fit_fusion_frame
from .metrics import MetricRecord
from .trust import csv_text
from .targets import (
    BINARY_TARGETS,
    CONTINUOUS_TARGETS,
    GLOBAL,
    GLOBAL_TARGETS,
    MODEL_VIEWS,
    TARGETS,
    TARGETS_BY_NAME,
)

KEY_COLUMNS = ("study", "patient", "split", "view")
CLIP_COLUMNS = ("clip_id",) + KEY_COLUMNS
PREDICTION_COLUMNS = ("study", "patient", "split", "view", "target", "y_true", "y_pred")
METRIC_KEYS = ("target", "view", "metric", "value", "ci_low", "ci_high", "n", "n_positive", "note")
TABLE_VIEWS = MODEL_VIEWS + (GLOBAL,)
BUNDLE_FILES = (
    "predictions.csv",
    "metrics.json",
    "roc.json",
    "bland_altman.json",
    "calibration.json",
    "operating_points.json",
    "summary.json",
    "table2.csv",
)
PER_VIEW_TARGETS = tuple(t.name for t in TARGETS if t.per_view)
log = logging.getLogger(__name__)


class EvaluationError(EchoCMRError, ValueError):
    """Predictions or labels given to the evaluation do not have the expected layout."""


def _require(frame: pd.DataFrame, columns, what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise EvaluationError(f"{what} lacks columns {missing}; has {list(frame.columns)} (shape {frame.shape})")


# --------------------------------------------------------------------------------------------
# Aggregation and labels


def aggregate_per_study(clip_preds: pd.DataFrame) -> pd.DataFrame:
    """Per-clip predictions → one row per (study, view): the mean over that view's clips.

    clip_preds: ``clip_id, study, patient, split, view`` + one float column per target name.
    Returns ``study, patient, split, view, n_clips, <targets>`` (targets in ``TARGETS`` order),
    views outside ``MODEL_VIEWS`` dropped.
    """
    _require(clip_preds, CLIP_COLUMNS, "clip predictions")
    targets = [t.name for t in TARGETS if t.name in clip_preds.columns]
    if not targets:
        raise EvaluationError(f"clip predictions have no target columns; columns {list(clip_preds.columns)}")
    frame = clip_preds[clip_preds["view"].isin(MODEL_VIEWS)]
    frame = frame.astype({"study": str, "patient": str, "split": str, "view": str})
    grouped = frame.groupby(list(KEY_COLUMNS), sort=True)
    out = grouped[targets].mean()
    out.insert(0, "n_clips", grouped.size())
    return out.reset_index()


def study_labels(labels: pd.DataFrame) -> pd.DataFrame:
    """One row per study: ``study, patient, split`` + the global targets present (first non-null
    over the study's rows, i.e. clips). Rows with ``status != "ok"`` are ignored."""
    _require(labels, ("study",), "labels")
    lab = _ok_rows(labels)
    cols = [c for c in ("patient", "split") if c in lab.columns]
    targets = [t for t in GLOBAL_TARGETS if t in lab.columns]
    out = lab.groupby("study", sort=True)[cols + targets].first().reset_index()
    return out.astype({c: str for c in ["study"] + cols})


def view_labels(labels: pd.DataFrame) -> pd.DataFrame:
    """One row per (study, view) for the view-specific targets (``wma_view``, ``lge_view``).

    Needs a ``view`` column (per-clip labels such as ``manifest.csv``); empty otherwise.
    """
    targets = [t for t in PER_VIEW_TARGETS if t in labels.columns]
    if "view" not in labels.columns or not targets:
        return pd.DataFrame(columns=["study", "view"] + targets)
    lab = _ok_rows(labels)
    lab = lab[lab["view"].isin(MODEL_VIEWS)]
    out = lab.groupby(["study", "view"], sort=True)[targets].first().reset_index()
    return out.astype({"study": str, "view": str})


def _ok_rows(labels: pd.DataFrame) -> pd.DataFrame:
    lab = labels
    if "status" in lab.columns:
        lab = lab[lab["status"].astype(str) == "ok"]
    return lab.astype({"study": str})


def fit_fusion(per_study_val: pd.DataFrame, labels_val: pd.DataFrame, **kwargs) -> FusionModel:
    """Fit view fusion on validation studies. per_study_val: output of
    :func:`aggregate_per_study` restricted to the validation split; labels_val: per-clip or
    per-study labels (``study`` + target columns). ``kwargs`` go to
    :func:`echocmr.fusion.fit_fusion_frame` (``min_studies``, ``min_per_class``, ``eps``)."""
    _require(per_study_val, ("study", "view"), "per-study predictions")
    splits = set(per_study_val["split"]) if "split" in per_study_val.columns else set()
    if splits - {"val"}:
        raise EvaluationError(f"fusion must be fitted on the validation split only; got splits {sorted(splits)}")
    return fit_fusion_frame(per_study_val, study_labels(labels_val), **kwargs)


def long_predictions(per_study: pd.DataFrame, labels: pd.DataFrame, fusion: FusionModel) -> pd.DataFrame:
    """Every (study, view, target) prediction with its label, views + fused ``"global"``.

    Returns ``study, patient, split, view, target, y_true, y_pred`` (y_true NaN = unlabelled).
    """
    _require(per_study, KEY_COLUMNS, "per-study predictions")
    slab = study_labels(labels).set_index("study")
    vlab = view_labels(labels).set_index(["study", "view"])
    meta = per_study.drop_duplicates("study").set_index("study")[["patient", "split"]]
    parts = []
    for t in (t.name for t in TARGETS):
        if t not in per_study.columns:
            continue
        rows = per_study[["study", "patient", "split", "view", t]].rename(columns={t: "y_pred"})
        if t in PER_VIEW_TARGETS:
            keys = pd.MultiIndex.from_arrays([rows["study"], rows["view"]])
            y = vlab[t].reindex(keys).to_numpy() if t in vlab.columns else np.nan
        else:
            y = slab[t].reindex(rows["study"]).to_numpy() if t in slab.columns else np.nan
        parts.append(rows.assign(target=t, y_true=y))
    fused = fusion.predict_frame(per_study)
    for t in fused.columns:
        rows = pd.DataFrame({"study": fused.index, "y_pred": fused[t].to_numpy()})
        rows = rows.join(meta, on="study").assign(view=GLOBAL, target=t)
        rows["y_true"] = slab[t].reindex(rows["study"]).to_numpy() if t in slab.columns else np.nan
        parts.append(rows)
    if not parts:
        return pd.DataFrame(columns=list(PREDICTION_COLUMNS))
    out = pd.concat(parts, ignore_index=True)[list(PREDICTION_COLUMNS)]
    return out.astype({"y_true": float, "y_pred": float})


# --------------------------------------------------------------------------------------------
# The bundle


@dataclass
class ResultsBundle:
    """Everything ``echocmr evaluate`` writes (docs/ARCHITECTURE.md, "Results bundle").

    ``roc``/``bland_altman``/``calibration`` are keyed ``"<target>|<view>"``; NaN marks undefined
    numbers in memory (written as JSON null).
    """

    predictions: pd.DataFrame
    metrics: list[MetricRecord]
    roc: dict = field(default_factory=dict)
    bland_altman: dict = field(default_factory=dict)
    calibration: dict = field(default_factory=dict)
    operating_points: dict = field(default_factory=dict)
    summary: dict = field(default_factory=dict)

    def metric(self, target: str, view: str, metric: str) -> MetricRecord | None:
        for r in self.metrics:
            if (r.target, r.view, r.metric) == (target, view, metric):
                return r
        return None


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
        auc = M.auroc_ci(y, p, counts, level)
    recs = [_record(target, view, "auroc", auc, n_positive=int((y > 0.5).sum()), note=note)]
    brier = M.with_ci(M.brier(y, p), M.bootstrap_brier(y, p, counts), level, y.size)
    recs.append(_record(target, view, "brier", brier))
    roc = M.roc_curve(y, p)
    roc_entry = {"fpr": roc["fpr"], "tpr": roc["tpr"], "thresholds": roc["thresholds"], "band": {}}
    if not note:  # the band would mislead for the same reason as the AUROC interval
        band = M.bootstrap_roc_band(y, p, counts, level)
        roc_entry["band"] = {"fpr": band["fpr"], "tpr_low": band["tpr_low"], "tpr_high": band["tpr_high"]}
    return recs, roc_entry, M.calibration_curve(y, p, n_bins), auc.n_nan


def _continuous_cell(target, view, y, p, counts, level):
    """Returns (records, Bland–Altman entry, resamples whose R² was undefined)."""
    ba = M.bland_altman(y, p)
    boot_ba = M.bootstrap_bland_altman(y, p, counts)
    n = y.size
    r2 = M.r2_ci(y, p, counts, level)
    recs = [
        _record(target, view, "mae", M.mae_ci(y, p, counts, level)),
        _record(target, view, "r2", r2),
        _record(target, view, "bias", M.with_ci(ba.bias, boot_ba["bias"], level, n)),
        _record(target, view, "loa_low", M.with_ci(ba.loa_low, boot_ba["loa_low"], level, n)),
        _record(target, view, "loa_high", M.with_ci(ba.loa_high, boot_ba["loa_high"], level, n)),
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
    return M.bootstrap_counts(groups, len(studies), int(config.n_bootstrap), rng)


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
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
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
    v_order = list(TABLE_VIEWS)
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


def evaluate_run(
    run_dir,
    prepared_dir,
    out_dir,
    *,
    n_bootstrap: int | None = None,
    seed: int | None = None,
    resample_unit: str | None = None,
    ci_level: float | None = None,
    tta_clips: int | None = None,
) -> Path:
    """``echocmr evaluate`` as a function: predict val + test with ``RUN/<view>/best`` for every
    model view, fit fusion on val, evaluate test, write the bundle and ``fusion.json`` into
    ``out_dir``. Unset options keep :class:`EvalConfig`'s defaults. Returns ``out_dir``."""
    run_evaluation(run_dir, prepared_dir, out_dir, eval_config(
        n_bootstrap=n_bootstrap, seed=seed, resample_unit=resample_unit, ci_level=ci_level,
        tta_clips=tta_clips))
    return Path(out_dir)


def eval_config(**overrides) -> EvalConfig:
    import dataclasses

    return dataclasses.replace(EvalConfig(), **{k: v for k, v in overrides.items() if v is not None})


def run_evaluation(run_dir, prepared_dir, out_dir, config: EvalConfig = EvalConfig()):
    """The glue behind :func:`evaluate_run`; returns ``(ResultsBundle, FusionModel)``."""
    from .checkpoint import checkpoint_exists
    from .inference import load_view_model, predict_prepared
    from .prepare import read_prepare_json

    run_dir, prepared_dir, out_dir = Path(run_dir), Path(prepared_dir), Path(out_dir)
    manifest_path = prepared_dir / "manifest.csv"
    if not manifest_path.is_file():
        raise EvaluationError(f"no manifest.csv in the prepared dataset folder {prepared_dir}")
    frames = []
    for view in MODEL_VIEWS:
        stem = run_dir / view / "best"
        if not checkpoint_exists(stem):
            log.warning("no %s checkpoint in the run; %s is left out", view, view)
            continue
        model = load_view_model(stem)
        for split in ("val", "test"):
            log.info("predicting %s clips of the %s split", view, split)
            frames.append(predict_prepared(model, prepared_dir, split, view, n_clips=config.tta_clips))
    if not frames:
        raise EvaluationError(f"no per-view checkpoints (<view>/best.json + .safetensors) in {run_dir}")
    clip_preds = pd.concat(frames, ignore_index=True)
    labels = pd.read_csv(manifest_path, dtype={"clip_id": str, "patient": str, "study": str,
                                               "view": str, "split": str, "status": str})
    synthetic = read_prepare_json(prepared_dir).get("synthetic")
    bundle, fusion = evaluate_predictions(clip_preds, labels, config, synthetic=synthetic)
    views = view_classifier_accuracy(run_dir, prepared_dir, "test")
    if views is not None:
        bundle.summary["view_classifier"] = views
    write_results(bundle, out_dir)
    write_json(out_dir / "fusion.json", fusion.to_json())
    return bundle, fusion


def view_classifier_accuracy(run_dir, prepared_dir, split: str = "test", chunk: int = 64) -> dict | None:
    """Held-out accuracy of ``RUN/view_classifier/best`` over every clip of ``split`` (PSAX, A3C …
    count as "other"): ``{split, n, accuracy, recall: {label: share}}``; None without a classifier."""
    from .checkpoint import checkpoint_exists
    from .dataset import classifier_label, classifier_rows, open_clip, read_manifest
    from .inference import classify_views, load_view_classifier

    stem = Path(run_dir) / "view_classifier" / "best"
    if not checkpoint_exists(stem):
        return None
    classifier = load_view_classifier(stem)
    rows = classifier_rows(read_manifest(prepared_dir), split)
    truth = rows["view"].map(classifier_label).to_numpy()
    chosen = []
    for begin in range(0, len(rows), chunk):
        ids = rows["clip_id"].iloc[begin:begin + chunk]
        chosen += [label for label, _, _ in classify_views(classifier, [np.asarray(open_clip(prepared_dir, str(c)))
                                                                          for c in ids])]
    hit = np.asarray(chosen) == truth
    recall = {label: float(hit[truth == label].mean()) for label in classifier.outputs if (truth == label).any()}
    return {"split": split, "n": int(len(hit)), "accuracy": float(hit.mean()) if len(hit) else float("nan"),
            "recall": recall}


# --------------------------------------------------------------------------------------------
# Writing and reading


def jsonable(obj):
    """Numpy → Python, non-finite floats → None, recursively (strict JSON a browser can parse)."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    return obj


def _nan_for_null(obj):
    """Inverse of :func:`jsonable` for numeric payloads: None → NaN, recursively."""
    if isinstance(obj, dict):
        return {k: _nan_for_null(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_nan_for_null(v) for v in obj]
    return math.nan if obj is None else obj


def write_json(path, obj, indent: int | None = 2) -> Path:
    text = json.dumps(jsonable(obj), indent=indent, allow_nan=False)
    return atomic_write_text(path, text + "\n")


def write_results(bundle: ResultsBundle, out_dir) -> Path:
    """Write the results bundle (every file atomically) into ``out_dir``; returns the folder."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "predictions.csv", csv_text(bundle.predictions[list(PREDICTION_COLUMNS)]))
    write_json(out / "metrics.json", [r.to_dict() for r in bundle.metrics])
    # Curves are long: no indentation keeps them compact.
    write_json(out / "roc.json", bundle.roc, indent=None)
    write_json(out / "bland_altman.json", bundle.bland_altman, indent=None)
    write_json(out / "calibration.json", bundle.calibration, indent=None)
    write_json(out / "operating_points.json", bundle.operating_points)
    write_json(out / "summary.json", bundle.summary)
    atomic_write_text(out / "table2.csv", csv_text(table2_frame(bundle.metrics)))
    return out


def _read_json(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


def read_results(out_dir) -> ResultsBundle:
    """Read a bundle written by :func:`write_results` (JSON nulls come back as NaN)."""
    folder = Path(out_dir)
    missing = [f for f in BUNDLE_FILES if not (folder / f).is_file()]
    if missing:
        raise EvaluationError(f"results bundle is missing {missing}")
    preds = pd.read_csv(
        folder / "predictions.csv",
        dtype={"study": str, "patient": str, "split": str, "view": str, "target": str,
               "y_true": float, "y_pred": float},
        keep_default_na=False, na_values=[""],
    )
    metrics = [MetricRecord.from_dict(d) for d in _read_json(folder / "metrics.json")]
    return ResultsBundle(
        predictions=preds,
        metrics=metrics,
        roc=_nan_for_null(_read_json(folder / "roc.json")),
        bland_altman=_nan_for_null(_read_json(folder / "bland_altman.json")),
        calibration=_nan_for_null(_read_json(folder / "calibration.json")),
        operating_points=_nan_for_null(_read_json(folder / "operating_points.json")),
        summary=_read_json(folder / "summary.json"),
    )


# --------------------------------------------------------------------------------------------
# Table 2


METRIC_LABELS = {"auroc": "AUROC", "mae": "MAE", "r2": "R²", "brier": "Brier", "bias": "bias"}


def _fmt_number(x: float, metric: str) -> str:
    if metric in ("auroc", "r2", "brier"):
        return f"{x:.3f}"
    # Values in physical units: three significant digits, never scientific notation.
    mag = math.floor(math.log10(abs(x))) if x != 0 else 0
    return f"{x:.{max(0, 2 - mag)}f}"


def format_cell(r: MetricRecord | None) -> str:
    """``"0.873 (0.816–0.922)"``; the value alone without a CI; ``"n/a"`` when undefined."""
    if r is None:
        return ""
    if not math.isfinite(r.value):
        return "n/a"
    text = _fmt_number(r.value, r.metric)
    if math.isfinite(r.ci_low) and math.isfinite(r.ci_high):
        text += f" ({_fmt_number(r.ci_low, r.metric)}–{_fmt_number(r.ci_high, r.metric)})"
    elif r.note:
        text += f" ({r.note})"
    return text


def table2_frame(metrics) -> pd.DataFrame:
    """Paper-style Table 2 as a frame: one row per (target, metric) — AUROC for binary targets,
    MAE and R² for continuous ones — with columns ``target, label, metric, unit, A4C, A2C, PLAX,
    global`` holding formatted cells ("" where not computed). Accepts MetricRecords or dicts."""
    recs = [r if isinstance(r, MetricRecord) else MetricRecord.from_dict(r) for r in metrics]
    index = {(r.target, r.view, r.metric): r for r in recs}
    rows = []
    for t in TARGETS:
        for metric in ("auroc",) if t.kind == "binary" else ("mae", "r2"):
            cells = {v: format_cell(index.get((t.name, v, metric))) for v in TABLE_VIEWS}
            if any(cells.values()):
                unit = t.unit if metric == "mae" else ""
                rows.append({"target": t.name, "label": t.label, "metric": metric, "unit": unit, **cells})
    return pd.DataFrame(rows, columns=["target", "label", "metric", "unit", *TABLE_VIEWS])


def format_table2(metrics, title: str = "Table 2 — held-out test set") -> str:
    """Table 2 as aligned plain text for the terminal."""
    frame = table2_frame(metrics)
    header = ["target", *TABLE_VIEWS]
    lines = []
    for _, row in frame.iterrows():
        name = f"{row['label']} — {METRIC_LABELS.get(row['metric'], row['metric'])}"
        if row["unit"]:
            name += f" ({row['unit']})"
        lines.append([name, *(row[v] or "—" for v in TABLE_VIEWS)])
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


# --------------------------------------------------------------------------------------------
# Simulated predictions (tests and bench/bootstrap.py; never model output)


def simulate_predictions(
    n_patients: int = 200,
    seed: int = 0,
    signal: float = 1.0,
    split_fractions: tuple[float, float, float] = (0.5, 0.25, 0.25),
    missing_view: float = 0.1,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A synthetic per-clip predictions frame and matching per-clip labels.

    Each patient has 1–2 studies, each study 1–3 of the model views (each missing with
    probability ``missing_view``) with 1–2 clips per view. Every view's prediction carries the
    true label with strength ``signal`` plus independent per-view noise (``signal=0``: pure
    noise). Returns ``(clip_preds, labels)``: ``clip_id, study, patient, split, view`` + targets
    (probabilities / units), and the same keys + ``status`` + labels.
    """
    rng = np.random.default_rng(seed)
    split_of = rng.choice(["train", "val", "test"], size=n_patients, p=list(split_fractions))
    pred_rows, label_rows = [], []
    for pi in range(n_patients):
        for si in range(int(rng.integers(1, 3))):
            study = f"S{pi:04d}_{si}"
            g = {"wma": rng.random() < 0.48, "lge": rng.random() < 0.49}
            cont = {"t1": rng.normal(1020, 72), "t2": rng.normal(48.7, 6.1), "ecv": rng.normal(28.4, 5.7)}
            for name, b in (("t1", "t1_abnormal"), ("t2", "t2_abnormal"), ("ecv", "ecv_abnormal")):
                g[b] = cont[name] > TARGETS_BY_NAME[name].abnormal_above
            views = [v for v in MODEL_VIEWS if rng.random() >= missing_view] or [MODEL_VIEWS[0]]
            for v in views:
                lab = {t: float(x) for t, x in g.items()} | cont
                lab["wma_view"] = float(g["wma"] and rng.random() < 0.8)
                lab["lge_view"] = float(g["lge"] and rng.random() < 0.7)
                view_noise = {t: rng.normal(0, 1.5) for t in BINARY_TARGETS}
                cont_noise = {t: rng.normal(0, 1.0) for t in CONTINUOUS_TARGETS}
                for ci in range(int(rng.integers(1, 3))):
                    clip = f"{study}_{v}_{ci}"
                    keys = {"clip_id": clip, "study": study, "patient": f"P{pi:04d}",
                            "split": split_of[pi], "view": v}
                    pred = dict(keys)
                    for t in BINARY_TARGETS:
                        z = signal * (2 * lab[t] - 1) + view_noise[t] + rng.normal(0, 0.3)
                        pred[t] = float(1 / (1 + math.exp(-z)))
                    for t, (mu, sd) in {"t1": (1020, 72), "t2": (48.7, 6.1), "ecv": (28.4, 5.7)}.items():
                        shrink = 0.4 * signal * (lab[t] - mu)
                        pred[t] = float(mu + shrink + sd * 0.5 * (cont_noise[t] + rng.normal(0, 0.3)))
                    pred_rows.append(pred)
                    label_rows.append({**keys, "status": "ok", **{t: lab[t] for t in TARGETS_BY_NAME}})
    return pd.DataFrame(pred_rows), pd.DataFrame(label_rows)
