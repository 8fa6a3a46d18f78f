"""Vectorised ultrasound rendering of one synthetic echo clip.

Per frame the heart is drawn on a small square *canvas* (``CANVAS`` px, transducer at its top
centre; ``canvas.py``), warped into the fan-shaped sector of the output frame, turned into echo by
``formation.py`` (speckle that decorrelates over time, attenuation with TGC, dropout, clutter,
reverberation, log compression with the study's gain and dynamic range), and overlaid with
burned-in text (outside the sector) and an ECG trace (``overlay.py``). Acquisition and look are
drawn in ``spec.py`` / ``look.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from .anatomy import N_PSI, contraction
from .canvas import BACKGROUND, CanvasScene, label_canvas, lv_boundaries, prepare_canvas, render_canvas, segment_radii
from .cohort import HeartState
from .formation import display_grey, gain_map, haze_map, speckle_at, speckle_keys
from .look import Look, Realism
from .overlay import BurnedText, Overlay, build_overlay, ecg_wave
from .spec import CANVAS, ClipSpec, canvas_to_image, clip_phases, clip_rhythm, draw_clip_spec, sector_mask, sector_polar

SIDELOBE_PX = 31  # canvas px: width of the side-lobe neighbourhood

__all__ = ["CANVAS", "BurnedText", "ClipSpec", "Look", "Realism", "RenderedClip", "canvas_to_image",
           "clip_phases", "draw_clip_spec", "ecg_wave", "render_clip", "sector_mask"]


@dataclass(frozen=True, eq=False)
class RenderedClip:
    """A rendered clip.

    ``frames``: uint8 (T, H, W, 3) RGB (BGR if rendered with ``bgr=True``) with overlays. ``clean``:
    uint8 (T, H, W) grey, no overlays. ``segment_radii``: float32 (T, 17) endocardial distance
    from the LV centre per AHA segment in canvas pixels (nan where the view does not show the
    segment). ``contraction``: float (T,), 0 end-diastole .. 1 end-systole. ``sector_mask``: bool
    (H, W). ``labels``: uint8 (T, H, W) 1 LV blood, 2 LV myocardium, only when asked for
    (ground truth for measuring; never written to the cohort's files).
    """

    spec: ClipSpec
    frames: np.ndarray
    clean: np.ndarray
    segment_radii: np.ndarray
    contraction: np.ndarray
    sector_mask: np.ndarray = field(repr=False)
    labels: np.ndarray | None = field(default=None, repr=False)


@dataclass(frozen=True, eq=False)
class _Formation:
    """Static per-clip image-formation maps over the sector's bounding box."""

    keys: np.ndarray  # float32 (K, h, w) speckle × gain map
    key_rate: float  # keys per second
    haze: np.ndarray  # float32 (h, w) additive echo divided by the gain map
    warp: np.ndarray  # float32 (2, 3) canvas -> bbox


def _formation(spec: ClipSpec, rng: np.random.Generator) -> tuple[_Formation, np.ndarray]:
    x0, y0, x1, y1 = spec.bbox
    r, theta = sector_polar(spec)
    local_mask = (r <= spec.radius) & (np.abs(theta) <= spec.half_angle)
    keys, rate = speckle_keys(spec, rng, r, theta)
    gains = gain_map(spec, r, theta, local_mask, rng)
    keys *= gains  # gain, attenuation, dropout and mask are static per clip
    haze = haze_map(spec, r, theta, rng) / np.maximum(gains, 1e-3)  # so (tissue + haze) × keys works
    mask = np.zeros(spec.size, bool)
    mask[y0:y1, x0:x1] = local_mask
    warp = canvas_to_image(spec)
    warp[:, 2] -= (x0, y0)
    return _Formation(keys, rate, haze.astype(np.float32), warp), mask


def render_clip(spec: ClipSpec, heart: HeartState, tissue_signal: float = 0.0,
                text: BurnedText | None = None, bgr: bool = False, labels: bool = False) -> RenderedClip:
    """Render one clip; deterministic in (spec, heart, tissue_signal, text).

    ``bgr``: fill ``frames`` in OpenCV's BGR channel order (saves a conversion before JPEG).
    ``labels``: also return LV blood/myocardium label frames (for ``bench/realism.py``).
    """
    rng = np.random.default_rng(spec.seed)
    cs = prepare_canvas(spec, heart, tissue_signal, rng)
    form, mask = _formation(spec, rng)
    x0, y0, x1, y1 = spec.bbox
    phases, strength = clip_rhythm(spec)
    c = contraction(phases) * strength
    overlay = build_overlay(spec, text or BurnedText(), mask, phases, bgr)
    rows, cols = spec.size
    frames = np.empty((spec.n_frames, rows, cols, 3), np.uint8)
    clean = np.zeros((spec.n_frames, rows, cols), np.uint8)
    label_frames = np.zeros((spec.n_frames, rows, cols), np.uint8) if labels else None
    endo = np.empty((spec.n_frames, N_PSI), np.float32)
    for t in range(spec.n_frames):
        canvas, endo[t] = render_canvas(cs, float(c[t]))
        # Side lobes: every point also hears a little of its wide surroundings (fills the cavity).
        canvas += np.float32(spec.look.sidelobe) * cv2.blur(canvas, (SIDELOBE_PX, SIDELOBE_PX))
        tissue = cv2.warpAffine(canvas, form.warp, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=BACKGROUND)
        tissue += form.haze
        tissue *= speckle_at(form.keys, form.key_rate, t / spec.fps)
        display_grey(tissue, spec, clean[t, y0:y1, x0:x1])
        if label_frames is not None:
            _labels_into(cs, float(c[t]), form.warp, label_frames[t, y0:y1, x0:x1])
        _compose(clean[t], overlay, t, frames[t])
    if label_frames is not None:
        label_frames[:, ~mask] = 0
    return RenderedClip(spec, frames, clean, segment_radii(cs, endo), c, mask, label_frames)


def _labels_into(cs: CanvasScene, c: float, warp: np.ndarray, out: np.ndarray) -> None:
    endo, epi = lv_boundaries(cs, c)
    cv2.warpAffine(label_canvas(cs, endo, epi), warp, (out.shape[1], out.shape[0]), dst=out,
                   flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def _compose(grey: np.ndarray, overlay: Overlay, t: int, rgb: np.ndarray) -> np.ndarray:
    """Fill uint8 ``rgb`` (H, W, 3) with the grey frame, the static overlay and the ECG cursor."""
    cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB, dst=rgb)
    rgb.reshape(-1, 3)[overlay.index] = overlay.rgb
    x, y = overlay.ecg_xy[t]
    radius = max(2, grey.shape[0] // 160)
    cv2.circle(rgb, (int(round(x)), int(round(y))), radius, overlay.cursor, -1)
    return rgb
