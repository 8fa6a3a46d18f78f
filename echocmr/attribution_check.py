"""Does the attribution point at the wall that does not move? A check on synthetic clips.

Each case renders one synthetic clip of a model view whose heart has exactly one akinetic AHA
segment (the view shows it; every other segment normal), writes it as a JPEG DICOM in memory and
ingests it like any file (so the model sees what it sees in ``predict``), explains the view
model's WMA output (:func:`echocmr.attribution.explain_clip`) and compares the positive
attribution with the renderer's own segment map (:mod:`echocmr.synth.segments`), frame by frame:

    ratio = (share of the myocardium's positive attribution inside the akinetic segment)
            / (the segment's share of the myocardium's area)            — 1 is chance,

and the *territory ratio*, the same over the whole LV (cavity and wall) with each pixel given to
its nearest segment (:func:`echocmr.synth.segments.segment_territories`), which also credits a map
that lights the cavity beside the still wall, where its border fails to move in.

The *control* is the same clip (same acquisition, speckle and heart) with every segment normal,
scored on the same segment: a ratio that is high there too comes from the segment's place in the
picture (e.g. the apex), not from its motion. ``bench/attribution_localisation.py`` runs many cases
and bootstraps the mean.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .attribution import AttributionConfig, explain_clip, localisation_ratio
from .clip import Clip
from .model_runner import LoadedModel, at_model_rate

AKINETIC = 2  # wall-motion score of the planted segment (cmr_reports.csv coding)
RENDER_SIZE = (240, 320)  # the shipped model's cohort was rendered at this size (echocmr.demo)


@dataclass(frozen=True)
class LocalisationCase:
    """One scored clip: the view, the akinetic segment, its ratios (and the normal control's)."""

    view: str
    segment: int
    ratio: float  # on the myocardium (localisation_ratio)
    control_ratio: float  # nan when no control was run
    territory_ratio: float  # the same over the LV (cavity + wall) split by nearest segment
    control_territory_ratio: float
    on_myocardium: float  # share of all positive attribution that lands on the myocardium
    myocardium_area: float  # the myocardium's share of the fan's area (what on_myocardium would be by chance)
    probability: float  # the window's WMA probability (akinetic clip)
    control_probability: float
    segment_probability: float  # the window's P(WMA in the akinetic segment) from its own output (nan: none)
    control_segment_probability: float
    others_probability: float  # mean P(WMA in segment) of the view's other segments' outputs
    control_others_probability: float
    seconds: float  # attribution time of the akinetic clip


@dataclass(frozen=True)
class _Scored:
    ratio: float
    territory_ratio: float
    on_myocardium: float
    myocardium_area: float
    probability: float
    segment_probability: float
    others_probability: float
    seconds: float


def one_akinetic(heart, segment: int):
    """``heart`` with every segment normal except ``segment`` (1..17) akinetic, no scar."""
    wma = np.zeros(17, np.int8)
    wma[segment - 1] = AKINETIC
    return dataclasses.replace(heart, wma=wma, transmural=np.zeros(17, bool))


def ingest_rendered(rendered, spec):
    """The rendered clip as ``predict`` would see it: a JPEG DICOM read by ``echocmr.ingest``."""
    from .ingest.pipeline import read_clip
    from .synth.dicom_writer import clip_dicom_bytes

    return read_clip(clip_dicom_bytes(rendered.frames, spec, "CHECK"))


def labelled_clip(spec, heart) -> tuple[Clip, np.ndarray, np.ndarray]:
    """(clip, segments, territories) of one rendering: the ingested clip (:func:`ingest_rendered`)
    and, on its frames' 112×112 grid, uint8 (T, 112, 112) each myocardium pixel's segment and each
    LV pixel's nearest segment (:func:`echocmr.synth.segments.segment_territories`)."""
    from .synth import render_clip
    from .synth.measure import labels_to_112
    from .synth.segments import segment_label_frames, segment_labels_112, segment_territories

    rendered = render_clip(spec, heart, bgr=True, labels=True)
    clip = ingest_rendered(rendered, spec)
    segments = segment_labels_112(segment_label_frames(spec, heart), clip)
    if len(segments) != len(clip.frames):
        raise ValueError(f"ingestion changed the frame count ({len(segments)} rendered, {len(clip.frames)} read)")
    assert rendered.labels is not None  # asked for above
    return clip, segments, segment_territories(segments, labels_to_112(rendered.labels, clip))


def _score(model: LoadedModel, spec, heart, segment: int, config: AttributionConfig) -> _Scored:
    """Render, ingest and explain one clip and score its positive attribution on ``segment``."""
    from .synth.measure import sector_mask_112

    clip, labels, territories = labelled_clip(spec, heart)
    frames = at_model_rate(clip.frames, clip.fps, model)
    picked = at_model_rate(np.arange(len(clip.frames)), clip.fps, model)  # the same frames, picked the same way
    attribution = explain_clip(model, frames, config=config)
    window = labels[picked][attribution.frame_indices]
    territory = territories[picked][attribution.frame_indices]
    positive = attribution.positive
    myocardium = window > 0
    fan = np.broadcast_to(sector_mask_112(clip, erode_px=0), myocardium.shape)
    total = positive.sum()
    own, others = _segment_probabilities(model, frames, spec.view, segment)
    return _Scored(
        ratio=localisation_ratio(positive, window == segment, myocardium),
        territory_ratio=localisation_ratio(positive, territory == segment, territory > 0),
        on_myocardium=float(positive[myocardium].sum() / total) if total > 0 else float("nan"),
        myocardium_area=float(myocardium.sum() / max(int(fan.sum()), 1)),
        probability=attribution.probability,
        segment_probability=own,
        others_probability=others,
        seconds=attribution.seconds)


def _segment_probabilities(model: LoadedModel, frames: np.ndarray, view: str, segment: int) -> tuple[float, float]:
    """(P(WMA in ``segment``), mean P over the view's other segments) of the explained (central)
    window, from the per-segment outputs; NaN for a model without them."""
    from .model_runner import predict_clips
    from .synth.segments import shown_segments

    names = [f"wma_seg{s}" for s in shown_segments(view)]
    own = f"wma_seg{segment}"
    if not set(names) <= set(model.outputs):
        return float("nan"), float("nan")
    p = predict_clips(model, [frames], n_clips=1)[0]
    others = [p[model.outputs.index(n)] for n in names if n != own]
    return float(p[model.outputs.index(own)]), float(np.mean(others))


def visible_segments(spec, heart, min_share: float = 0.5) -> tuple[int, ...]:
    """The view's segments whose myocardium inside the fan (first frame) is at least ``min_share``
    of the largest one's: the fan or the frame may cut a segment off (e.g. an apical lateral wall)."""
    from .synth.segments import segment_label_frames, shown_segments

    first = segment_label_frames(dataclasses.replace(spec, n_frames=1), heart)[0]
    areas = {seg: int((first == seg).sum()) for seg in shown_segments(spec.view)}
    top = max(areas.values()) if areas else 0
    return tuple(seg for seg, area in areas.items() if top and area >= min_share * top)


def localisation_case(model: LoadedModel, rng: np.random.Generator, heart, view: str, segment: int | None = None,
                      config: AttributionConfig = AttributionConfig(), control: bool = True) -> LocalisationCase:
    """Render, ingest, explain and score one clip of ``view`` with ``segment`` akinetic.

    ``heart``: a synthetic patient's heart (its size and wall thickness are kept; its wall motion
    is replaced). ``rng`` draws the acquisition (``draw_clip_spec``) and, when ``segment`` is
    None, the segment among those the clip shows (:func:`visible_segments`).
    """
    from .synth import draw_clip_spec
    from .synth.segments import shown_segments

    spec = draw_clip_spec(rng, view, RENDER_SIZE, 2.1)
    if segment is None:
        segment = int(rng.choice(visible_segments(spec, heart)))
    if segment not in shown_segments(view):
        raise ValueError(f"segment {segment} is not drawn in the synthetic {view} view {shown_segments(view)}")
    sick = _score(model, spec, one_akinetic(heart, segment), segment, config)
    nan = float("nan")
    healthy = _Scored(nan, nan, nan, nan, nan, nan, nan, nan)
    if control:
        normal = dataclasses.replace(heart, wma=np.zeros(17, np.int8), transmural=np.zeros(17, bool))
        healthy = _score(model, spec, normal, segment, config)
    return LocalisationCase(view, segment, sick.ratio, healthy.ratio, sick.territory_ratio, healthy.territory_ratio,
                            sick.on_myocardium, sick.myocardium_area, sick.probability, healthy.probability,
                            sick.segment_probability, healthy.segment_probability, sick.others_probability,
                            healthy.others_probability, sick.seconds)


def localisation_cases(models: dict[str, LoadedModel], n_clips: int, seed: int = 0, control: bool = True,
                       config: AttributionConfig = AttributionConfig()) -> Iterator[LocalisationCase]:
    """:func:`localisation_case` for ``n_clips`` synthetic patients (``seed``), the views of
    ``models`` in turn; the same ``seed`` gives the same clips and segments whatever the method."""
    from .config import SynthConfig
    from .synth import generate_patients

    rng = np.random.default_rng(seed)
    views = list(models)
    for i, patient in enumerate(generate_patients(SynthConfig(n_patients=n_clips, seed=seed))):
        view = views[i % len(views)]
        yield localisation_case(models[view], rng, patient.heart, view, None, config, control)


def bootstrap_mean(values: np.ndarray, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """(mean, low, high): percentile bootstrap interval of the mean of finite ``values``."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(n_boot, len(values)))].mean(axis=1)
    alpha = (1.0 - level) / 2
    return float(values.mean()), float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))
