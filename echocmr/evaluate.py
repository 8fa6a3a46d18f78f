"""``echocmr evaluate``: predict a prepared set with a run's models, score it, write the results bundle.

This module is the orchestration; each job lives in its own module:

* :mod:`echocmr.per_study` — per-clip predictions → per-study rows, labels, fused rows;
* :mod:`echocmr.scoring` — metrics with bootstrap intervals, operating points;
* :mod:`echocmr.results` — the results bundle and its files;
* :mod:`echocmr.table2` — Table 2 formatting and the paper's published numbers;
* :mod:`echocmr.simulate` — simulated predictions for tests and benchmarks.

Their public names are re-exported here, so ``from echocmr.evaluate import …`` keeps working.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .config import EvalConfig
from .errors import EvaluationError
from .fusion import FusionModel
from .jsonfile import jsonable, write_json
from .per_study import (
    CLIP_COLUMNS,
    KEY_COLUMNS,
    PER_VIEW_TARGETS,
    PREDICTION_COLUMNS,
    aggregate_per_study,
    fit_fusion,
    long_predictions,
    study_labels,
    view_labels,
)
from .results import BUNDLE_FILES, METRIC_KEYS, ResultsBundle, read_results, write_results
from .scoring import (
    bootstrap_for_studies,
    evaluate_predictions,
    evaluate_split,
    interval_spec,
    resampling_units,
    too_few_units_note,
)
from .simulate import simulate_predictions
from .table2 import (
    METRIC_LABELS,
    PAPER_RECORDS,
    PAPER_RESULTS,
    PAPER_SOURCE,
    format_cell,
    format_table2,
    paper_table2_frame,
    table2_frame,
)
from .targets import MODEL_VIEWS

__all__ = [
    "BUNDLE_FILES", "CLIP_COLUMNS", "KEY_COLUMNS", "METRIC_KEYS", "METRIC_LABELS", "PAPER_RECORDS",
    "PAPER_RESULTS", "PAPER_SOURCE", "PER_VIEW_TARGETS", "PREDICTION_COLUMNS", "EvaluationError",
    "ResultsBundle", "aggregate_per_study", "bootstrap_for_studies", "eval_config", "evaluate_predictions",
    "evaluate_run", "evaluate_split", "fit_fusion", "format_cell", "format_table2", "jsonable",
    "long_predictions", "interval_spec", "paper_table2_frame", "read_results", "resampling_units",
    "run_evaluation", "simulate_predictions", "study_labels", "table2_frame", "too_few_units_note",
    "view_classifier_accuracy", "view_labels", "write_json", "write_results",
]
log = logging.getLogger(__name__)
PathLike = str | os.PathLike


def evaluate_run(
    run_dir: PathLike,
    prepared_dir: PathLike,
    out_dir: PathLike,
    *,
    n_bootstrap: int | None = None,
    seed: int | None = None,
    resample_unit: str | None = None,
    ci_level: float | None = None,
    tta_clips: int | str | None = None,
    ci_method: str | None = None,
    unit: str | None = None,
) -> Path:
    """``echocmr evaluate`` as a function: predict val + test with ``RUN/<view>/best`` for every
    model view, fit fusion on val, evaluate test, write the bundle and ``fusion.json`` into
    ``out_dir``. Unset options keep :class:`EvalConfig`'s defaults. Returns ``out_dir``."""
    run_evaluation(run_dir, prepared_dir, out_dir, eval_config(
        n_bootstrap=n_bootstrap, seed=seed, resample_unit=resample_unit, ci_level=ci_level,
        tta_clips=tta_clips, ci_method=ci_method, unit=unit))
    return Path(out_dir)


def eval_config(**overrides: Any) -> EvalConfig:
    """:class:`EvalConfig` with the given options; None keeps the default."""
    return dataclasses.replace(EvalConfig(), **{k: v for k, v in overrides.items() if v is not None})


def run_evaluation(run_dir: PathLike, prepared_dir: PathLike, out_dir: PathLike,
                   config: EvalConfig = EvalConfig()) -> tuple[ResultsBundle, FusionModel]:
    """The glue behind :func:`evaluate_run`; returns ``(ResultsBundle, FusionModel)``."""
    from .checkpoint import checkpoint_exists
    from .model_runner import load_view_model, predict_prepared
    from .prepared import is_synthetic, read_manifest

    run_dir, prepared_dir, out_dir = Path(run_dir), Path(prepared_dir), Path(out_dir)
    labels = read_manifest(prepared_dir)
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
    synthetic = is_synthetic(prepared_dir)
    bundle, fusion = evaluate_predictions(clip_preds, labels, config, synthetic=synthetic)
    bundle.summary["test_time_sampling"] = _sampling_summary(model, labels, config)
    views = view_classifier_accuracy(run_dir, prepared_dir, "test")
    if views is not None:
        bundle.summary["view_classifier"] = views
    write_results(bundle, out_dir)
    write_json(out_dir / "fusion.json", fusion.to_json())
    return bundle, fusion


def _sampling_summary(model: Any, labels: pd.DataFrame, config: EvalConfig) -> dict:
    """The test-time sampling used (echocmr.windows), with how many evaluated clips were shorter
    than the model's span."""
    from .windows import sampling_record

    used = labels[labels["split"].isin(["val", "test"]) & labels["view"].isin(MODEL_VIEWS)
                  & (labels["status"] == "ok")]
    lengths = pd.to_numeric(used.get("n_frames", pd.Series(dtype=float)), errors="coerce").dropna()
    return sampling_record(model.sampling.n_frames, model.sampling.period, config.tta_clips, lengths)


def view_classifier_accuracy(run_dir: PathLike, prepared_dir: PathLike, split: str = "test",
                             chunk: int = 64) -> dict | None:
    """Held-out accuracy of ``RUN/view_classifier/best`` over every clip of ``split`` (PSAX, A3C …
    count as "other"): ``{split, n, accuracy, recall: {label: share}}``; None without a classifier."""
    from .checkpoint import checkpoint_exists
    from .dataset import classifier_label, classifier_rows
    from .model_runner import classify_views, load_view_classifier
    from .prepared import open_clip, read_manifest

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
