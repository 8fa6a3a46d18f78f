"""Inference on one study: files → clips → view per clip → per-view predictions → fused globals.

The one entry point the dashboard and ``echocmr predict`` call. Ingestion and view
classification (``ingest_study``) are separate from prediction (``predict_study``) so a user's
view override re-runs only the models.
"""

from __future__ import annotations

import dataclasses
import math
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .bundle import ModelBundle
from .clip import Clip
from .clip_selection import SelectionPolicy, awaits_confirmation, left_out_reason, views_fed, windows_per_clip
from .errors import ConfigError, InputError
from .metrics import is_positive
from .segments import SegmentMap, has_segment_outputs, study_segments
from .targets import CLASSIFIER_LABELS, GLOBAL_TARGETS, MODEL_VIEWS, TARGETS_BY_NAME, parse_segment_output, segment_output


@dataclass
class ClipPrediction:
    """One accepted clip: its view (classifier's or the user's) and the view model's outputs."""

    index: int
    display_name: str
    clip: Clip
    view: str
    view_confidence: float
    view_probs: dict[str, float]
    view_overridden: bool = False  # the user chose another view than the classifier's
    view_confirmed: bool = False  # the user set the view (the classifier's own, or another)
    predictions: dict[str, float] = field(default_factory=dict)  # empty unless it fed a view model
    used_for: str = ""  # the view model it fed ("" when left out)
    left_out: str = ""  # why it fed no view model (clip_selection.left_out_reason)
    # A model view the classifier is unsure of, not confirmed by a user: out of the per-view
    # models and fusion until someone confirms it (an override).
    awaiting_confirmation: bool = False


@dataclass(frozen=True)
class TargetPrediction:
    """A fused, study-level prediction with how to read it.

    ``value`` is a probability for binary targets and a value in ``unit`` for continuous ones.
    ``threshold`` is the operating threshold chosen on validation (binary) or the clinical
    cut-off (continuous). ``called``: whether held-out evidence supports calling this target at
    all (:mod:`echocmr.calls`; ``evidence`` says why); only then is ``call`` True (score at or
    above the threshold) or False, otherwise None and ``status`` is ``calls.NOT_CALLED``.
    ``rates``: sensitivity, specificity, PPV, NPV at the threshold on the held-out test, each
    ``{value, ci_low, ci_high, note}``; ``interval`` says what the intervals are.
    """

    target: str
    label: str
    kind: str
    unit: str
    value: float
    threshold: float | None
    called: bool
    call: bool | None
    status: str
    evidence: str
    rates: dict
    interval: str
    views_used: tuple[str, ...]

    @property
    def sensitivity(self) -> float | None:
        return self.rates.get("sensitivity", {}).get("value")

    @property
    def specificity(self) -> float | None:
        return self.rates.get("specificity", {}).get("value")


@dataclass
class StudyPrediction:
    clips: list[ClipPrediction]
    rejected: list[tuple[str, str]]
    per_view: dict[str, dict[str, float]]
    fused: dict[str, TargetPrediction]
    timings: dict[str, float]
    synthetic: bool
    # Per AHA segment (echocmr.segments); None when the bundle's models predict no segments.
    segments: SegmentMap | None = None

    def to_frame(self) -> pd.DataFrame:
        """Tidy rows (level, view, target, value, threshold, call) for CSV download."""
        rows = [{"level": "view", "view": view, "target": target, "value": value,
                 "threshold": None, "call": None}
                for view, preds in self.per_view.items() for target, value in _targets_only(preds).items()]
        rows += [{"level": "study", "view": "global", "target": p.target, "value": p.value,
                  "threshold": p.threshold, "call": p.status} for p in self.fused.values()]
        if self.segments is not None:
            rows += [{"level": "segment", "view": "+".join(self.segments.views[s]) or None,
                      "target": segment_output(f, s), "value": v, "threshold": None, "call": None}
                     for f, per in self.segments.values.items() for s, v in per.items() if math.isfinite(v)]
        return pd.DataFrame(rows, columns=["level", "view", "target", "value", "threshold", "call"])

    def to_json(self) -> dict:
        """Machine-readable result (``echocmr predict --json``); no pixels, no PHI."""
        return {
            "synthetic_model": self.synthetic,
            "clips": [{"clip": c.display_name, "view": c.view, "view_confidence": round(c.view_confidence, 4),
                       "view_overridden": c.view_overridden, "awaiting_confirmation": c.awaiting_confirmation,
                       "n_frames": c.clip.n_frames,
                       "fps": round(c.clip.fps, 2), "fed_view_model": c.used_for or None,
                       "left_out": c.left_out or None, "predictions": _rounded(_targets_only(c.predictions))}
                      for c in self.clips],
            "views_fed": views_fed(self.clips),
            "rejected": [{"clip": name, "reason": reason} for name, reason in self.rejected],
            "per_view": {v: _rounded(_targets_only(p)) for v, p in self.per_view.items()},
            "global": {t: _clean(dataclasses.asdict(p)) for t, p in self.fused.items()},
            # Per AHA segment: mean probability over the used clips whose view shows it; null
            # where no used clip shows it, or for a model without segment outputs.
            "segments": None if self.segments is None else self.segments.to_json(),
            "timings_s": _rounded(self.timings),
        }


def _clean(obj):
    """Floats rounded to 4 places, NaN → None (strict JSON), recursively."""
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, float):
        return round(obj, 4) if math.isfinite(obj) else None
    return obj


def _targets_only(values: dict[str, float]) -> dict[str, float]:
    """Without the segment outputs: those are reported per study, for shown segments only."""
    return {k: v for k, v in values.items() if parse_segment_output(k) is None}


def _rounded(values: dict[str, float]) -> dict[str, float]:
    return {k: round(float(v), 4) for k, v in values.items()}


def bundle_jpeg_decode(bundle: ModelBundle) -> str:
    """The JPEG decode recipe (``echocmr.ingest.reduced``) every model of ``bundle`` was trained
    with: uploads must be decoded the same way; a bundle that mixes recipes cannot be served."""
    models = [*bundle.view_models.values(), bundle.view_classifier]
    modes = {getattr(m, "jpeg_decode", "exact") for m in models if m is not None}
    if len(modes) > 1:
        raise ConfigError("the bundle's models were trained on clips decoded in different ways "
                          f"({sorted(modes)}); retrain them on one prepared set")
    return modes.pop() if modes else "exact"


def ingest_study(sources: Sequence[tuple[str, bytes | Path]], session: str = "default",
                 jpeg_decode: str = "exact") -> list:
    """Ingest uploaded files (a zip counts as many) into StudyItems with PHI-free names.

    Pseudonyms use a fresh salt per call: an upload's identifiers never link to anything else.
    Each file (and zip member) is decoded in the isolated worker (``ingest.isolated``): a
    decoder that crashes, hangs or runs out of memory fails that file only. The given names are
    never used (they may hold patient names); files are "file N". ``session`` (one per browser
    session) gives each user a fair turn at the shared decoders (``ingest.decoder_pool``).
    ``jpeg_decode``: the models' recipe (``bundle_jpeg_decode``); "exact" for the shipped and
    published models.
    """
    from .config import IngestLimits
    from .ingest.study_files import read_files_isolated

    limits = IngestLimits(jpeg_decode=jpeg_decode)
    salt = secrets.token_bytes(16)
    items: list = []
    # The pool's decoders work on several files at once (ingest.study_files); order is kept.
    per_file = read_files_isolated([data for _, data in sources], salt=salt, session=session, limits=limits)
    for number, found in enumerate(per_file, start=1):
        for member, item in enumerate(found, start=1):
            name = f"file {number}" if len(found) == 1 else f"file {number}, item {member}"
            items.append(dataclasses.replace(item, index=len(items), display_name=name))
    return items


def predict_study(items: list, bundle: ModelBundle, view_overrides: dict[int, str] | None = None,
                  n_clips: int = 4, policy: SelectionPolicy | None = None, published=None) -> StudyPrediction:
    """Classify every clip's view, run each view's model on the clips that may feed it (mean per
    view; see ``clip_selection``), fuse per target.

    ``view_overrides`` maps an item's ``index`` to a view from targets.CLASSIFIER_LABELS.
    ``published``: ``official_infer.PublishedOptions`` for a published-weights bundle (exact
    AVI inputs, windows); its models run the published recipe whatever is passed.
    Raises ``InputError("only_stills")`` when every readable file is a still image.
    """
    from .model_runner import at_model_rate, classify_views

    overrides = view_overrides or {}
    accepted = [item for item in items if item.clip is not None]
    rejected = [(item.display_name, str(item.error)) for item in items if item.clip is None]
    if accepted and all(item.clip.n_frames < 2 for item in accepted):
        raise InputError("only_stills", "every file read is a still image; prediction needs the study's cine "
                                        "clips (moving images), not single frames")
    started = time.perf_counter()
    classifier = bundle.view_classifier
    calls = classify_views(classifier, [at_model_rate(i.clip.frames, i.clip.fps, classifier) for i in accepted],
                           fast_cpu=True) if accepted else []
    classified = time.perf_counter()
    clips = [_clip_prediction(item, call, overrides.get(item.index)) for item, call in zip(accepted, calls)]
    per_view = _run_view_models(clips, bundle, n_clips, policy or SelectionPolicy(), published, rejected)
    predicted = time.perf_counter()
    fused = _fuse(per_view, bundle)
    used = [c for c in clips if c.used_for and c.predictions]
    segments = study_segments((c.used_for, c.predictions) for c in used) if any(
        has_segment_outputs(c.predictions) for c in used) else None
    timings = {"view_classification": classified - started, "view_models": predicted - classified,
               "fusion": time.perf_counter() - predicted}
    return StudyPrediction(clips, rejected, per_view, fused, timings, bundle.synthetic, segments)


def _clip_prediction(item, call: tuple, override: str | None) -> ClipPrediction:
    view, confidence, probs = call
    if override is not None and override not in CLASSIFIER_LABELS:
        raise ValueError(f"view override must be one of {CLASSIFIER_LABELS}; got {override!r}")
    chosen = override or view
    return ClipPrediction(item.index, item.display_name, item.clip, chosen, float(confidence),
                          {k: float(v) for k, v in probs.items()}, view_overridden=override is not None and override != view,
                          view_confirmed=override is not None)


def _run_view_models(clips: list[ClipPrediction], bundle: ModelBundle, n_clips: int, policy: SelectionPolicy,
                     published=None, rejected: list | None = None) -> dict[str, dict[str, float]]:
    """Fill the predictions of each clip that feeds a model; the per-view mean over those clips."""
    from .model_runner import at_model_rate, predict_clips
    from .official_infer import is_published, run_published

    per_view = {}
    inputs: dict[int, np.ndarray] = {}
    for clip in clips:
        model = bundle.view_models.get(clip.view) if clip.view in MODEL_VIEWS else None
        frames = at_model_rate(clip.clip.frames, clip.clip.fps, model) if model and clip.clip.n_frames > 1 else None
        clip.left_out = left_out_reason(clip, model, policy, None if frames is None else len(frames))
        clip.awaiting_confirmation = awaits_confirmation(clip, model, policy)
        if not clip.left_out and frames is not None:
            clip.used_for, inputs[clip.index] = clip.view, frames
    for view in MODEL_VIEWS:
        members = [c for c in clips if c.used_for == view]
        if not members:
            continue
        model = bundle.view_models[view]
        if is_published(model):  # the published recipe (echocmr/official_infer.py)
            members, outputs = run_published(model, members, published, rejected)
            if not members:
                continue
        else:
            outputs = predict_clips(model, [inputs[c.index] for c in members],
                                    n_clips=windows_per_clip(len(members), n_clips), batch_size=16, fast_cpu=True)
        for clip, row in zip(members, outputs):
            clip.predictions = dict(zip(model.outputs, map(float, row)))
        per_view[view] = dict(zip(model.outputs, map(float, np.mean(outputs, axis=0))))
    return per_view


def _fuse(per_view: dict[str, dict[str, float]], bundle: ModelBundle) -> dict[str, TargetPrediction]:
    from .bootstrap_ci import describe_intervals
    from .calls import NOT_CALLED, RATES, rate

    if not per_view:
        return {}
    values = bundle.fusion.predict(per_view)
    interval = describe_intervals(bundle.results_summary) if bundle.results_summary else "no intervals recorded"
    fused = {}
    for name in GLOBAL_TARGETS:
        if name not in values:
            continue
        spec = TARGETS_BY_NAME[name]
        point = bundle.operating_points.get(name, {})
        threshold = spec.abnormal_above if spec.kind == "continuous" else point.get("threshold")
        value = float(values[name])
        # No recorded evidence (e.g. no held-out results): nothing is called.
        called = bool(point.get("called", False)) and threshold is not None and math.isfinite(threshold)
        call = bool(is_positive(value, float(threshold))) if called and threshold is not None else None
        words = ("positive", "negative") if spec.kind == "binary" else ("abnormal", "normal")
        status = NOT_CALLED if call is None else words[0] if call else words[1]
        rates = {r: rate(point, r) for r in RATES} if spec.kind == "binary" else {}
        fused[name] = TargetPrediction(
            name, spec.label, spec.kind, spec.unit, value, threshold, called, call, status,
            str(point.get("evidence", "no held-out evidence recorded")), rates, interval, tuple(sorted(per_view)))
    return fused
