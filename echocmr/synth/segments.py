"""Which pixels of a rendered clip are which AHA segment's myocardium (ground truth for checks).

The renderer draws the LV wall as the band ``endo(psi) <= rho < epi(psi)`` of the LV's elliptic
coordinates, and gives each 1-degree angle bin an AHA segment (``anatomy.ViewScene.arcs``).
:func:`segment_label_frames` replays exactly the per-clip anatomy :func:`~echocmr.synth.render_clip`
draws (same seed, same random draws) and labels each myocardium pixel with its segment, frame by
frame as the wall moves; :func:`segment_labels_112` maps those labels into the 112×112 model clip
the way ingestion mapped the pixels. Nothing here is ever written to a cohort: it is for measuring
(e.g. whether an attribution map points at the akinetic segment, ``echocmr.attribution_check``).
"""

from __future__ import annotations

import cv2
import numpy as np

from ..clip import Clip
from .anatomy import SCENES, contraction
from .canvas import CanvasScene, lv_boundaries, prepare_canvas
from .cohort import HeartState
from .measure import labels_to_112
from .spec import CANVAS, ClipSpec, canvas_to_image, clip_rhythm, sector_mask

UNASSIGNED = 18  # LV myocardium the view shows at an angle no AHA segment is drawn at (PLAX off-fan apex)


def shown_segments(view: str) -> tuple[int, ...]:
    """The AHA segments (1..17) a view's LV wall is drawn with, in the order of its arcs."""
    if view not in SCENES:
        raise ValueError(f"no synthetic scene for view {view!r}; views: {sorted(SCENES)}")
    return tuple(seg for seg, _, _ in SCENES[view].arcs)


def segment_canvas(cs: CanvasScene, c: float) -> np.ndarray:
    """uint8 (CANVAS, CANVAS) at contraction ``c``: segment 1..17 (or ``UNASSIGNED``) on LV
    myocardium pixels, 0 elsewhere — the same pixels ``canvas.label_canvas`` marks 2."""
    endo, epi = lv_boundaries(cs, c)
    lv = cs.lv
    e, p = (endo - cs.border)[lv.psi], epi[lv.psi]
    myo = (lv.rho >= e) & (lv.rho < p) & (cs.lv_wall > 0.5)
    seg = cs.tables.segment[lv.psi]
    labels = np.zeros((CANVAS, CANVAS), np.uint8)
    labels[lv.window] = np.where(myo, np.where(seg > 0, seg, UNASSIGNED), 0).astype(np.uint8)
    return labels


def segment_label_frames(spec: ClipSpec, heart: HeartState, tissue_signal: float = 0.0) -> np.ndarray:
    """uint8 (T, H, W) for ``render_clip(spec, heart, tissue_signal)``'s frames: each pixel's AHA
    segment (1..17) where it is LV myocardium, ``UNASSIGNED`` for myocardium of no segment, 0
    elsewhere and outside the fan. Pure: a function of its arguments only."""
    rng = np.random.default_rng(spec.seed)  # render_clip draws its anatomy first from this stream
    cs = prepare_canvas(spec, heart, tissue_signal, rng)
    phases, strength = clip_rhythm(spec)
    c = contraction(phases) * strength
    warp = canvas_to_image(spec)
    rows, cols = spec.size
    out = np.zeros((spec.n_frames, rows, cols), np.uint8)
    for t in range(spec.n_frames):
        cv2.warpAffine(segment_canvas(cs, float(c[t])), warp, (cols, rows), dst=out[t], flags=cv2.INTER_NEAREST,
                       borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    out[:, ~sector_mask(spec)] = 0
    return out


def segment_labels_112(labels: np.ndarray, clip: Clip) -> np.ndarray:
    """uint8 (T, 112, 112): full-size segment labels mapped into ``clip``'s model grid (the
    sector crop and resize ingestion applied to the pixels; nearest neighbour, so labels stay
    labels). ``clip`` is the ingested clip of the same rendering."""
    return labels_to_112(labels, clip)


def segment_territories(segments: np.ndarray, lv: np.ndarray) -> np.ndarray:
    """uint8 (T, H, W): each LV pixel (``lv`` > 0: blood pool or myocardium) labelled with the
    segment of the nearest myocardium pixel in ``segments`` (same frame), 0 elsewhere.

    ``segments``: uint8 (T, H, W) as :func:`segment_labels_112` gives; ``lv``: (T, H, W), e.g. the
    renderer's LV labels mapped the same way. A wall's motion shows at its endocardial border, on
    the cavity side as much as in the wall, so a map that lights the cavity beside a segment is
    pointing at that segment: this is the region that counts it so.
    """
    from scipy import ndimage

    segments, lv = np.asarray(segments), np.asarray(lv)
    if segments.shape != lv.shape or segments.ndim != 3:
        raise ValueError(f"segments {segments.shape} and lv {lv.shape} must be one (T, H, W) shape")
    out = np.zeros(segments.shape, np.uint8)
    for t, frame in enumerate(segments):
        if not (frame > 0).any():
            continue
        _, (rows, cols) = ndimage.distance_transform_edt(frame == 0, return_indices=True)
        out[t] = np.where(lv[t] > 0, frame[rows, cols], 0)
    return out
