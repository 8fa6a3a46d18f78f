"""Inference on one study: files → clips → view per clip → per-view predictions → fused globals.

The one entry point the dashboard and ``echocmr predict`` call. Ingestion and view
classification (``ingest_study``) are separate from prediction (``predict_study``) so a user's
view override re-runs only the models.
"""

from __future__ import annotations

import dataclasses
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from .bundle import ModelBundle
from .clip import Clip
from .targets import CLASSIFIER_LABELS, GLOBAL_TARGETS, MODEL_VIEWS, TARGETS_BY_NAME


@dataclass
class ClipPrediction:
    """One accepted clip: its view (classifier's or the user's) and the view model's outputs."""

    index: int
    display_name: str
    clip: Clip
    view: str
    view_confidence: float
    view_probs: dict[str, float]
    view_overridden: bool = False
    predictions: dict[str, float] = field(default_factory=dict)  # empty for "other" views
    # Classifier below view_review.VIEW_CONFIDENCE_THRESHOLD and nobody confirmed the view: the
    # clip stays out of the per-view models and fusion until a user confirms it (an override).
    awaiting_confirmation: bool = False


@dataclass(frozen=True)
class TargetPrediction:
    """A fused, study-level prediction with how to read it.

    ``value`` is a probability for binary targets and a value in ``unit`` for continuous ones.
    ``threshold`` is the operating threshold chosen on validation (binary) or the clinical
    cut-off (continuous); ``sensitivity``/``specificity`` are measured at it on the held-out test.
    """

    target: str
    label: str
    kind: str
    unit: str
    value: float
    threshold: float | None
    call: bool | None
    sensitivity: float | None
    specificity: float | None
    views_used: tuple[str, ...]


@dataclass
class StudyPrediction:
    clips: list[ClipPrediction]
    rejected: list[tuple[str, str]]
    per_view: dict[str, dict[str, float]]
    fused: dict[str, TargetPrediction]
    timings: dict[str, float]
    synthetic: bool

    def to_frame(self) -> pd.DataFrame:
        """Tidy rows (level, view, target, value, threshold, call) for CSV download."""
        rows = [{"level": "view", "view": view, "target": target, "value": value,
                 "threshold": None, "call": None}
                for view, preds in self.per_view.items() for target, value in preds.items()]
        rows += [{"level": "study", "view": "global", "target": p.target, "value": p.value,
                  "threshold": p.threshold, "call": p.call} for p in self.fused.values()]
        return pd.DataFrame(rows, columns=["level", "view", "target", "value", "threshold", "call"])

    def to_json(self) -> dict:
        """Machine-readable result (``echocmr predict --json``); no pixels, no PHI."""
        return {
            "synthetic_model": self.synthetic,
            "clips": [{"clip": c.display_name, "view": c.view, "view_confidence": round(c.view_confidence, 4),
                       "view_overridden": c.view_overridden, "awaiting_confirmation": c.awaiting_confirmation,
                       "n_frames": c.clip.n_frames,
                       "fps": round(c.clip.fps, 2), "predictions": _rounded(c.predictions)} for c in self.clips],
            "rejected": [{"clip": name, "reason": reason} for name, reason in self.rejected],
            "per_view": {v: _rounded(p) for v, p in self.per_view.items()},
            "global": {t: {k: (round(v, 4) if isinstance(v, float) else v)
                           for k, v in dataclasses.asdict(p).items()} for t, p in self.fused.items()},
            "timings_s": _rounded(self.timings),
        }


def _rounded(values: dict[str, float]) -> dict[str, float]:
    return {k: round(float(v), 4) for k, v in values.items()}


def ingest_study(sources: Sequence[tuple[str, bytes | Path]]) -> list:
    """Ingest uploaded files (a zip counts as many) into StudyItems with PHI-free names.

    Pseudonyms use a fresh salt per call: an upload's identifiers never link to anything else.
    Each file (and zip member) is decoded in the isolated worker (``ingest.isolated``): a
    decoder that crashes, hangs or runs out of memory fails that file only. The given names are
    never used (they may hold patient names); files are "file N".
    """
    from .ingest import read_study_isolated

    salt = secrets.token_bytes(16)
    items = []
    for number, (_, data) in enumerate(sources, start=1):
        found = read_study_isolated(data, name=f"file {number}", salt=salt)
        for member, item in enumerate(found, start=1):
            name = f"file {number}" if len(found) == 1 else f"file {number}, item {member}"
            items.append(dataclasses.replace(item, index=len(items), display_name=name))
    return items


def predict_study(items: list, bundle: ModelBundle, view_overrides: dict[int, str] | None = None,
                  n_clips: int = 4, published=None) -> StudyPrediction:
    """Classify views, run each view's model on its clips, fuse per target.

    ``view_overrides`` maps an item's ``index`` to a view from targets.CLASSIFIER_LABELS.
    ``published``: ``official_infer.PublishedOptions`` for a published-weights bundle (exact
    AVI inputs, windows); its models run the published recipe whatever is passed.
    """
    from .inference import at_model_rate, classify_views

    overrides = view_overrides or {}
    accepted = [item for item in items if item.clip is not None]
    rejected = [(item.display_name, str(item.error)) for item in items if item.clip is None]
    started = time.perf_counter()
    classifier = bundle.view_classifier
    calls = classify_views(classifier, [at_model_rate(i.clip.frames, i.clip.fps, classifier) for i in accepted]
                           ) if accepted else []
    classified = time.perf_counter()
    clips = [_clip_prediction(item, call, overrides.get(item.index)) for item, call in zip(accepted, calls)]
    per_view = _run_view_models(clips, bundle, n_clips, published, rejected)
    predicted = time.perf_counter()
    fused = _fuse(per_view, bundle)
    timings = {"view_classification": classified - started, "view_models": predicted - classified,
               "fusion": time.perf_counter() - predicted}
    return StudyPrediction(clips, rejected, per_view, fused, timings, bundle.synthetic)


def _clip_prediction(item, call: tuple, override: str | None) -> ClipPrediction:
    view, confidence, probs = call
    if override is not None and override not in CLASSIFIER_LABELS:
        raise ValueError(f"view override must be one of {CLASSIFIER_LABELS}; got {override!r}")
    from .view_review import VIEW_CONFIDENCE_THRESHOLD

    chosen = override or view
    return ClipPrediction(item.index, item.display_name, item.clip, chosen, float(confidence),
                          {k: float(v) for k, v in probs.items()}, view_overridden=override is not None and override != view,
                          awaiting_confirmation=override is None and float(confidence) < VIEW_CONFIDENCE_THRESHOLD)


def _run_view_models(clips: list[ClipPrediction], bundle: ModelBundle, n_clips: int, published=None,
                     rejected: list | None = None) -> dict[str, dict[str, float]]:
    """Fill each clip's predictions and return the per-view mean over that view's clips."""
    from .inference import at_model_rate, predict_clips
    from .official_infer import is_published, run_published

    per_view = {}
    for view in MODEL_VIEWS:
        members = [c for c in clips if c.view == view and not c.awaiting_confirmation]
        if not members or view not in bundle.view_models:
            continue
        model = bundle.view_models[view]
        if is_published(model):  # the published recipe (echocmr/official_infer.py)
            members, outputs = run_published(model, members, published, rejected)
            if not members:
                continue
        else:
            outputs = predict_clips(model, [at_model_rate(c.clip.frames, c.clip.fps, model) for c in members],
                                    n_clips=n_clips)
        for clip, row in zip(members, outputs):
            clip.predictions = dict(zip(model.outputs, map(float, row)))
        per_view[view] = dict(zip(model.outputs, map(float, np.mean(outputs, axis=0))))
    return per_view


def _fuse(per_view: dict[str, dict[str, float]], bundle: ModelBundle) -> dict[str, TargetPrediction]:
    if not per_view:
        return {}
    values = bundle.fusion.predict(per_view)
    fused = {}
    for name in GLOBAL_TARGETS:
        if name not in values:
            continue
        spec = TARGETS_BY_NAME[name]
        point = bundle.operating_points.get(name, {})
        # Published weights came with no thresholds: no call until `echocmr evaluate` chose one.
        fallback = None if bundle.meta.get("official") else 0.5
        threshold = spec.abnormal_above if spec.kind == "continuous" else point.get("threshold", fallback)
        value = float(values[name])
        fused[name] = TargetPrediction(
            name, spec.label, spec.kind, spec.unit, value, threshold,
            None if threshold is None else bool(value > threshold),
            point.get("sensitivity"), point.get("specificity"), tuple(sorted(per_view)))
    return fused
