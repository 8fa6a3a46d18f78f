"""The results bundle: everything ``echocmr evaluate`` writes, and reading it back.

Layout in docs/ARCHITECTURE.md ("Results bundle"). JSON is strict (NaN written as null and read
back as NaN); every file is written atomically.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .atomic import atomic_write_text
from .errors import EvaluationError
from .jsonfile import nan_for_null, read_json, write_json
from .metrics import MetricRecord
from .per_study import PREDICTION_COLUMNS
from .table2 import table2_frame
from .trust import csv_text

log = logging.getLogger(__name__)

METRIC_KEYS = ("target", "view", "metric", "value", "ci_low", "ci_high", "n", "n_positive", "note")
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
    # Per AHA segment (echocmr.segment_eval.SegmentResults); None for models without segment
    # outputs or a bundle from before them. ``segments_problem``: why a present file was not used.
    segments: Any = None
    segments_problem: str = ""

    def metric(self, target: str, view: str, metric: str) -> MetricRecord | None:
        for r in self.metrics:
            if (r.target, r.view, r.metric) == (target, view, metric):
                return r
        return None


def write_results(bundle: ResultsBundle, out_dir: str | os.PathLike) -> Path:
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
    if bundle.segments is not None:
        from .segment_eval import write_segment_results

        write_segment_results(bundle.segments, out)
    return out


def read_results(out_dir: str | os.PathLike) -> ResultsBundle:
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
    metrics = [MetricRecord.from_dict(d) for d in read_json(folder / "metrics.json")]
    segments, problem = _read_segments(folder)
    return ResultsBundle(
        predictions=preds,
        metrics=metrics,
        roc=nan_for_null(read_json(folder / "roc.json")),
        bland_altman=nan_for_null(read_json(folder / "bland_altman.json")),
        calibration=nan_for_null(read_json(folder / "calibration.json")),
        operating_points=nan_for_null(read_json(folder / "operating_points.json")),
        summary=read_json(folder / "summary.json"),
        segments=segments,
        segments_problem=problem,
    )


def _read_segments(folder: Path) -> tuple[Any, str]:
    """The optional per-segment results; a damaged file costs only them, said plainly."""
    from .segment_eval import read_segment_results

    try:
        return read_segment_results(folder), ""
    except EvaluationError as exc:
        log.warning("per-segment results not used: %s", exc)
        return None, str(exc)
