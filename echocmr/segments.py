"""Per-segment (AHA 17) predictions of a study: the one rule that turns clip outputs into a
study's segment probabilities, and the CMR truth per segment.

A view model predicts WMA and LGE for every AHA segment, but only the segments its view shows
were ever labelled (``targets.VIEW_SEGMENTS``; the others were masked out of the loss), so only
those outputs mean anything. A study's probability for a segment is the mean over the study's
used clips whose view shows that segment (segment 17, the apex, is seen in A4C and A2C); a
segment no used clip shows has no prediction (NaN).

Used by ``study_prediction`` (one uploaded study), ``segment_eval`` (held-out test studies) and
the example-study truth of a model bundle. No files are written here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .targets import (
    MODEL_VIEWS,
    N_SEGMENTS,
    SEGMENT_FINDINGS,
    SEGMENT_OUTPUTS,
    SEGMENTS,
    parse_segment_output,
    segment_output,
    shows,
)

# The example study's CMR truth, written beside its files by ``echocmr demo-assets``.
EXAMPLE_TRUTH_FILE = "cmr_truth.json"
MAX_TRUTH_BYTES = 64 * 1024


@dataclass(frozen=True)
class SegmentMap:
    """One value per finding and AHA segment: ``values[finding][segment]`` (NaN = none).

    ``views[segment]``: the views whose clips gave the value (empty = none did)."""

    values: dict[str, dict[int, float]]
    views: dict[int, tuple[str, ...]]

    def value(self, finding: str, segment: int) -> float:
        return self.values.get(finding, {}).get(segment, math.nan)

    def any_value(self) -> bool:
        return any(math.isfinite(v) for per in self.values.values() for v in per.values())

    def to_json(self) -> dict:
        """``{"wma": {"1": p | None, …}, "lge": {…}, "views": {"1": [...], …}}`` (JSON-safe)."""
        out: dict = {f: {str(s): (None if not math.isfinite(v) else round(float(v), 6)) for s, v in per.items()}
                     for f, per in self.values.items()}
        out["views"] = {str(s): list(v) for s, v in self.views.items()}
        return out


def has_segment_outputs(outputs: Iterable[str]) -> bool:
    """Whether a model with these outputs predicts segments (older models do not)."""
    return any(parse_segment_output(name) is not None for name in outputs)


def study_segments(clip_outputs: Iterable[tuple[str, Mapping[str, float]]]) -> SegmentMap:
    """The study's segment probabilities from its used clips: ``(view, {output: probability})``.

    Per segment, the mean over the clips whose view shows it and whose model predicted it; a
    clip of a model without segment outputs contributes nothing."""
    sums = {f: np.zeros(N_SEGMENTS) for f in SEGMENT_FINDINGS}
    counts = {f: np.zeros(N_SEGMENTS) for f in SEGMENT_FINDINGS}
    views: dict[int, set[str]] = {s: set() for s in SEGMENTS}
    for view, outputs in clip_outputs:
        for name, value in outputs.items():
            parsed = parse_segment_output(name)
            if parsed is None or not shows(view, parsed[1]) or not math.isfinite(float(value)):
                continue
            finding, segment = parsed
            sums[finding][segment - 1] += float(value)
            counts[finding][segment - 1] += 1
            views[segment].add(view)
    values = {f: {s: (float(sums[f][s - 1] / counts[f][s - 1]) if counts[f][s - 1] else math.nan) for s in SEGMENTS}
              for f in SEGMENT_FINDINGS}
    return SegmentMap(values, {s: tuple(m for m in MODEL_VIEWS if m in v) for s, v in views.items()})


def study_segment_frame(clip_preds: pd.DataFrame) -> pd.DataFrame:
    """Per-clip predictions (``clip_id, study, patient, split, view`` + segment columns) → one row
    per study (``study, patient, split`` + one column per segment output), by the same rule as
    :func:`study_segments`. Columns of segment outputs the models lack are absent."""
    names = [n for n in SEGMENT_OUTPUTS if n in clip_preds.columns]
    frame = clip_preds[clip_preds["view"].isin(MODEL_VIEWS)].copy()
    frame = frame.astype({"study": str, "patient": str, "split": str, "view": str})
    for name in names:
        segment = parse_segment_output(name)[1]  # type: ignore[index]
        shown = frame["view"].map(lambda v, s=segment: shows(v, s)).astype(bool)
        frame[name] = pd.to_numeric(frame[name], errors="coerce").where(shown, np.nan)
    grouped = frame.groupby(["study", "patient", "split"], sort=True)
    return grouped[names].mean().reset_index()


def study_segment_labels(labels: pd.DataFrame) -> pd.DataFrame:
    """Per-clip labels (manifest rows; a segment is labelled only on clips whose view shows it)
    → one row per study: ``study`` + each segment output present (first labelled value)."""
    names = [n for n in SEGMENT_OUTPUTS if n in labels.columns]
    lab = labels
    if "status" in lab.columns:
        lab = lab[lab["status"].astype(str) == "ok"]
    lab = lab.astype({"study": str})
    return lab.groupby("study", sort=True)[names].first().reset_index()


def truth_from_scores(wma_scores: Mapping[int, float], lge_flags: Mapping[int, float],
                      wma_min_score: int) -> SegmentMap:
    """CMR truth per segment from a report's wall-motion scores and LGE flags (the thresholds of
    ``labels.report_labels``): 1.0 abnormal, 0.0 normal, NaN not reported."""
    def flag(value: float, positive) -> float:
        return math.nan if value is None or not math.isfinite(float(value)) else float(positive(float(value)))

    values = {
        "wma": {s: flag(wma_scores.get(s, math.nan), lambda v: v >= wma_min_score) for s in SEGMENTS},
        "lge": {s: flag(lge_flags.get(s, math.nan), lambda v: v > 0) for s in SEGMENTS},
    }
    return SegmentMap(values, {s: () for s in SEGMENTS})


def truth_to_json(truth: SegmentMap, synthetic: bool) -> dict:
    return {"format_version": 1, "synthetic": bool(synthetic),
            **{f: {str(s): (None if not math.isfinite(v) else int(v)) for s, v in truth.values[f].items()}
               for f in SEGMENT_FINDINGS}}


def read_example_truth(study_dir: str | Path) -> SegmentMap | None:
    """The CMR truth of a bundled example study, or None when the bundle has none. The file
    comes with a bundle (untrusted): size-capped, and anything but 0 / 1 / null is refused."""
    from .errors import CheckpointError
    from .trust import read_json_file

    path = Path(study_dir) / EXAMPLE_TRUTH_FILE
    if not path.is_file():
        return None
    data = read_json_file(path, "example study truth", MAX_TRUTH_BYTES)
    if not isinstance(data, dict) or data.get("format_version") != 1:
        raise CheckpointError("the example study's truth file has an unknown format", code="bad_example_truth")
    values: dict[str, dict[int, float]] = {}
    for finding in SEGMENT_FINDINGS:
        per = data.get(finding)
        if not isinstance(per, dict):
            raise CheckpointError("the example study's truth file lacks a finding", code="bad_example_truth")
        values[finding] = {}
        for s in SEGMENTS:
            cell = per.get(str(s))
            if cell not in (None, 0, 1) or isinstance(cell, bool):
                raise CheckpointError("the example study's truth file holds a value other than 0, 1 or null",
                                      code="bad_example_truth")
            values[finding][s] = math.nan if cell is None else float(cell)
    return SegmentMap(values, {s: () for s in SEGMENTS})


__all__ = ["EXAMPLE_TRUTH_FILE", "SegmentMap", "has_segment_outputs", "read_example_truth", "segment_output",
           "shows", "study_segment_frame", "study_segment_labels", "study_segments", "truth_from_scores",
           "truth_to_json"]
