"""Held-out AUROC per AHA segment (WMA, LGE) and its files in the results bundle.

Per test study, the segment probability is :func:`echocmr.segments.study_segment_frame` (mean
over the study's clips whose view shows the segment) and the truth is the CMR label of that
segment. The AUROC's interval uses the same resampling as every other metric of the bundle
(:func:`echocmr.scoring.bootstrap_for_studies`, the same seed, patients resampled together, the
same :class:`~echocmr.bootstrap_ci.IntervalSpec`). A segment with fewer than
``EvalConfig.min_class_units`` resampling units (patients) with, or without, the finding gets no
AUROC at all, only the reason: on so few the value itself means nothing.

Files (docs/ARCHITECTURE.md, "Results bundle"): ``segments.json`` (the records and how they
were made) and ``segment_predictions.csv`` (study, patient, split, finding, segment, y_true,
y_pred). Both are optional: a bundle from before segments, or from models without segment
outputs, has neither. They are read back as untrusted input (size-capped, checked field by
field).
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import bootstrap as B
from . import metrics as M
from .atomic import atomic_write_text
from .bootstrap_ci import estimate
from .config import EvalConfig
from .errors import CheckpointError, EvaluationError
from .jsonfile import now_iso, write_json
from .segments import study_segment_frame, study_segment_labels
from .targets import (
    AHA_SEGMENT_NAMES,
    SEGMENT_FINDINGS,
    SEGMENTS,
    parse_segment_output,
    segment_output,
    views_showing,
)
from .trust import csv_text, read_bounded_bytes, read_json_file

SEGMENTS_FILE = "segments.json"
SEGMENT_PREDICTIONS_FILE = "segment_predictions.csv"
SEGMENT_PREDICTION_COLUMNS = ("study", "patient", "split", "finding", "segment", "y_true", "y_pred")
FORMAT_VERSION = 1
# "ok": AUROC with its interval; "insufficient": too few units with or without the finding (no
# AUROC); "no_data": no test study had both a prediction and a label for the segment.
STATUSES = ("ok", "insufficient", "no_data")
MAX_SEGMENTS_BYTES = 1024 * 1024
MAX_SEGMENT_PREDICTIONS_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class SegmentRecord:
    """The held-out AUROC of one finding in one AHA segment (NaN where not given)."""

    finding: str
    segment: int
    name: str
    views: tuple[str, ...]
    status: str
    auroc: float
    ci_low: float
    ci_high: float
    n: int  # test studies with a prediction and a label for the segment
    n_positive: int  # of them, with the finding
    n_units_with: int  # resampling units (patients) with the finding
    n_units_without: int
    note: str = ""


@dataclass
class SegmentResults:
    records: list[SegmentRecord]
    info: dict  # synthetic, split, unit, ci_level, ci_method, n_bootstrap, resample_unit, min_class_units, …
    predictions: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(SEGMENT_PREDICTION_COLUMNS)))

    def record(self, finding: str, segment: int) -> SegmentRecord | None:
        return next((r for r in self.records if (r.finding, r.segment) == (finding, segment)), None)


def evaluate_segments(clip_preds: pd.DataFrame, labels: pd.DataFrame, config: EvalConfig = EvalConfig(),
                      synthetic: bool | None = None, split: str = "test") -> SegmentResults | None:
    """Per-segment held-out AUROCs of ``split``; None when the predictions have no segment outputs
    or the labels no segment columns (models or data from before segments)."""
    from .scoring import bootstrap_for_studies, interval_spec, resampling_units, too_few_units_note

    per_study = study_segment_frame(clip_preds)
    truth = study_segment_labels(labels)
    names = [segment_output(f, s) for f in SEGMENT_FINDINGS for s in SEGMENTS]
    names = [n for n in names if n in per_study.columns and n in truth.columns]
    if not names:
        return None
    per_study = per_study[per_study["split"] == split].sort_values("study").reset_index(drop=True)
    if per_study.empty:
        raise EvaluationError(f"no segment predictions for split {split!r}")
    counts = bootstrap_for_studies(per_study, config)
    units = resampling_units(per_study, config)
    spec = interval_spec(config)
    truth = truth.set_index("study").reindex(per_study["study"])
    records, rows = [], []
    for name in names:
        finding, segment = parse_segment_output(name)  # type: ignore[misc]
        y_all = truth[name].to_numpy(dtype=np.float64)
        p_all = per_study[name].to_numpy(dtype=np.float64)
        rows.append(per_study[["study", "patient", "split"]].assign(finding=finding, segment=segment,
                                                                     y_true=y_all, y_pred=p_all))
        columns = np.flatnonzero(np.isfinite(y_all) & np.isfinite(p_all))
        y, p = y_all[columns], p_all[columns]
        records.append(_segment_record(finding, segment, y, p, counts[:, columns], spec, units[columns],
                                       too_few_units_note(y, units[columns], config.min_class_units,
                                                          config.resample_unit)))
    info = {"format_version": FORMAT_VERSION, "synthetic": synthetic, "split": split, "unit": "study",
            "n_studies": int(len(per_study)), "n_patients": int(per_study["patient"].nunique()),
            "n_bootstrap": int(config.n_bootstrap), "resample_unit": config.resample_unit,
            "ci_level": float(spec.level), "ci_method": spec.method, "seed": int(config.seed),
            "min_class_units": int(config.min_class_units), "created": now_iso(),
            "rule": "study probability = mean over the study's clips whose view shows the segment"}
    predictions = pd.concat(rows, ignore_index=True)[list(SEGMENT_PREDICTION_COLUMNS)]
    return SegmentResults(records, info, predictions.dropna(subset=["y_pred"]).reset_index(drop=True))


def _segment_record(finding, segment, y, p, counts, spec, units, note: str) -> SegmentRecord:
    base = dict(finding=finding, segment=int(segment), name=AHA_SEGMENT_NAMES[segment],
                views=views_showing(segment), n=int(y.size), n_positive=int((y > 0.5).sum()),
                n_units_with=int(len(np.unique(units[y > 0.5]))),
                n_units_without=int(len(np.unique(units[y <= 0.5]))))
    if y.size == 0:
        return SegmentRecord(**base, status="no_data", auroc=math.nan, ci_low=math.nan, ci_high=math.nan,
                             note="no test study with a prediction and a label for this segment")
    if note:
        return SegmentRecord(**base, status="insufficient", auroc=math.nan, ci_low=math.nan, ci_high=math.nan,
                             note=note.replace("interval withheld", "AUROC withheld"))
    auc = estimate(M.auroc(y, p), lambda c: B.bootstrap_auroc(y, p, c), counts, spec, units)
    return SegmentRecord(**base, status="ok", auroc=float(auc.value), ci_low=float(auc.low),
                         ci_high=float(auc.high))


# ----------------------------------------------------------------------------- files


def write_segment_results(results: SegmentResults, out_dir: str | os.PathLike) -> None:
    out = Path(out_dir)
    records = [{**asdict(r), "views": list(r.views)} for r in results.records]
    write_json(out / SEGMENTS_FILE, {**results.info, "records": records})
    atomic_write_text(out / SEGMENT_PREDICTIONS_FILE, csv_text(results.predictions[list(SEGMENT_PREDICTION_COLUMNS)]))


def read_segment_results(folder: str | os.PathLike) -> SegmentResults | None:
    """The segment results of a bundle; None when it has none. A damaged or tampered file raises
    :class:`EvaluationError` (naming the file, never echoing its content)."""
    folder = Path(folder)
    path = folder / SEGMENTS_FILE
    if not path.is_file():
        return None
    try:
        data = read_json_file(path, SEGMENTS_FILE, MAX_SEGMENTS_BYTES)
    except (CheckpointError, OSError) as exc:  # the bounded reader's refusal, or an unreadable file
        raise EvaluationError(f"{SEGMENTS_FILE} cannot be read: {exc}") from None
    if not isinstance(data, dict) or data.get("format_version") != FORMAT_VERSION:
        raise EvaluationError(f"{SEGMENTS_FILE} has an unknown format")
    raw = data.get("records")
    if not isinstance(raw, list) or len(raw) > len(SEGMENT_FINDINGS) * len(SEGMENTS):
        raise EvaluationError(f"{SEGMENTS_FILE}: records must be a list of at most 34 segments")
    records = [_checked_record(r) for r in raw]
    info = {k: v for k, v in data.items() if k != "records" and isinstance(v, (str, int, float, bool, type(None)))}
    return SegmentResults(records, info, _read_predictions(folder / SEGMENT_PREDICTIONS_FILE))


def _number(value, what: str, low: float = 0.0, high: float = 1.0) -> float:
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= float(value) <= high:
        raise EvaluationError(f"{SEGMENTS_FILE}: {what} must be a number in [{low:g}, {high:g}] or null")
    return float(value)


def _count(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10**9:
        raise EvaluationError(f"{SEGMENTS_FILE}: {what} must be a non-negative integer")
    return int(value)


def _checked_record(raw) -> SegmentRecord:
    if not isinstance(raw, dict):
        raise EvaluationError(f"{SEGMENTS_FILE}: a record is not an object")
    finding, segment, status = raw.get("finding"), raw.get("segment"), raw.get("status")
    if finding not in SEGMENT_FINDINGS or segment not in SEGMENTS or isinstance(segment, bool) \
            or status not in STATUSES:
        raise EvaluationError(f"{SEGMENTS_FILE}: a record names an unknown finding, segment or status")
    note = raw.get("note", "")
    if not isinstance(note, str) or len(note) > 500:
        raise EvaluationError(f"{SEGMENTS_FILE}: a note must be text of at most 500 characters")
    counts = {k: _count(raw.get(k), k) for k in ("n", "n_positive", "n_units_with", "n_units_without")}
    numbers = {k: _number(raw.get(k), k) for k in ("auroc", "ci_low", "ci_high")}
    # The segment's name and views come from the rules, not from the file.
    return SegmentRecord(finding, int(segment), AHA_SEGMENT_NAMES[segment], views_showing(segment), status,
                         numbers["auroc"], numbers["ci_low"], numbers["ci_high"], counts["n"], counts["n_positive"],
                         counts["n_units_with"], counts["n_units_without"], note)


def _read_predictions(path: Path) -> pd.DataFrame:
    if not path.is_file():
        return pd.DataFrame(columns=list(SEGMENT_PREDICTION_COLUMNS))
    import io

    data = read_bounded_bytes(path, SEGMENT_PREDICTIONS_FILE, MAX_SEGMENT_PREDICTIONS_BYTES)
    try:
        frame = pd.read_csv(io.BytesIO(data), dtype={"study": str, "patient": str, "split": str, "finding": str},
                            keep_default_na=False, na_values=[""])
    except (ValueError, pd.errors.ParserError):
        raise EvaluationError(f"{SEGMENT_PREDICTIONS_FILE} is not a valid CSV") from None
    if list(frame.columns) != list(SEGMENT_PREDICTION_COLUMNS):
        raise EvaluationError(f"{SEGMENT_PREDICTIONS_FILE} has unexpected columns")
    for column in ("segment", "y_true", "y_pred"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    ok = frame["finding"].isin(SEGMENT_FINDINGS) & frame["segment"].isin(SEGMENTS)
    return frame[ok].reset_index(drop=True)
