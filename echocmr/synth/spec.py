"""A clip's acquisition (``ClipSpec``: geometry, timing, rhythm, look) and the output geometry."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .look import Look, Realism, draw_rhythm, phase_track

CANVAS = 128  # side of the square canvas the heart is drawn on (transducer at its top centre)
FRAME_RATES = (30.0, 36.0, 40.0, 44.0, 50.0, 54.0, 60.0)  # typical scanner settings


@dataclass(frozen=True)
class ClipSpec:
    """Acquisition parameters of one clip (everything random about it except speckle)."""

    view: str
    heart_rate_bpm: float
    fps: float
    n_frames: int
    start_phase: float
    size: tuple[int, int]  # rows, cols
    apex: tuple[float, float]  # x, y in output pixels
    radius: float  # sector depth in output pixels
    half_angle: float  # degrees
    rotation: float  # degrees, heart within the sector
    heart_scale: float  # canvas height / sector radius
    offset: tuple[float, float]  # heart shift in canvas fractions
    gain: float
    attenuation: float
    depth_cm: float
    seed: int  # speckle/texture stream
    look: Look = field(default_factory=Look)
    rr: tuple[float, ...] = (1.0,) * 8  # relative RR interval of each beat (heart-rate variability)
    lateral_side: int = 1  # +1: the wall parallel to the beam (dropout) lies on the image right

    @property
    def bbox(self) -> tuple[int, int, int, int]:
        """Sector bounding box (x0, y0, x1, y1), half-open, clipped to the frame."""
        rows, cols = self.size
        ax, ay = self.apex
        half = np.radians(self.half_angle)
        x0 = int(np.floor(ax - self.radius * np.sin(half)))
        x1 = int(np.ceil(ax + self.radius * np.sin(half))) + 1
        return max(x0, 0), max(int(ay), 0), min(x1, cols), min(int(np.ceil(ay + self.radius)) + 1, rows)


def draw_clip_spec(rng: np.random.Generator, view: str, size: tuple[int, int], beats: float,
                   fps_range: tuple[float, float] = (30.0, 60.0),
                   realism: Realism | None = None) -> ClipSpec:
    """Random acquisition: HR 50–110 bpm, fps in ``fps_range``, at least ``beats`` (>= 2) cycles.

    ``realism``: ranges of the look and rhythm draws (default ``Realism()``: 3–5 beats).
    """
    realism = realism or Realism()
    rows, cols = size
    hr = float(rng.uniform(50, 110))
    rates = [f for f in FRAME_RATES if fps_range[0] <= f <= fps_range[1]] or [float(fps_range[0])]
    fps = float(rates[int(rng.integers(len(rates)))])
    apex_y = rows * rng.uniform(0.03, 0.07)
    parasternal = view in ("PLAX", "PSAX")
    start_phase = float(rng.random())
    geometry: dict[str, Any] = dict(
        apex=(cols / 2 + cols * rng.uniform(-0.02, 0.02), apex_y),
        radius=float((rows - apex_y) * rng.uniform(0.88, 0.96)),
        half_angle=float(rng.uniform(30, 45)), rotation=float(rng.uniform(-10, 10)),
        heart_scale=float(rng.uniform(*realism.heart_scale)),
        offset=(float(rng.normal(0, realism.offset_sd)), float(rng.normal(0, realism.offset_sd))),
        gain=float(rng.uniform(0.85, 1.15)), attenuation=float(rng.uniform(0.3, 0.9)),
        depth_cm=float(rng.uniform(12, 16) if parasternal else rng.uniform(14, 20)),
    )
    seed = int(rng.integers(2**31))
    look = realism.draw_look(rng, view)
    n_beats, rr = draw_rhythm(rng, realism, max(beats, 2.0))
    lateral = 1 if (not parasternal or rng.random() < 0.5) else -1
    beat_s = 60.0 / hr
    n_frames = int(np.ceil(n_beats * float(np.mean(rr)) * beat_s * fps)) + 1
    return ClipSpec(view=view, heart_rate_bpm=round(hr, 1), fps=fps, n_frames=max(n_frames, 2),
                    start_phase=start_phase, size=(rows, cols), seed=seed, look=look, rr=rr,
                    lateral_side=lateral, **geometry)


def clip_phases(spec: ClipSpec) -> np.ndarray:
    """float64 (T,) cardiac phase (cycles; beat k spans k..k+1) of each frame."""
    return clip_rhythm(spec)[0]


def clip_rhythm(spec: ClipSpec) -> tuple[np.ndarray, np.ndarray]:
    """(phase (T,) in cycles, contraction amplitude (T,)) of each frame, with the clip's RR intervals."""
    times = np.arange(spec.n_frames) / spec.fps
    return phase_track(spec.rr, spec.start_phase, 60.0 / spec.heart_rate_bpm, times)


# --------------------------------------------------------------------------- output geometry

def canvas_to_image(spec: ClipSpec) -> np.ndarray:
    """float32 (2, 3) affine map from canvas pixels to output pixels (for cv2.warpAffine)."""
    scale = spec.radius * spec.heart_scale / CANVAS
    theta = np.radians(spec.rotation)
    rot = scale * np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    origin = np.array([CANVAS / 2 + spec.offset[0] * CANVAS, spec.offset[1] * CANVAS])
    shift = np.asarray(spec.apex) - rot @ origin
    return np.hstack([rot, shift[:, None]]).astype(np.float32)


def sector_polar(spec: ClipSpec) -> tuple[np.ndarray, np.ndarray]:
    """Polar coordinates about the apex of the pixels of the sector's bounding box.

    r (px) and theta (deg from straight down), both float32 (y1 - y0, x1 - x0).
    """
    x0, y0, x1, y1 = spec.bbox
    y, x = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    dx, dy = x - spec.apex[0], y - spec.apex[1]
    return np.hypot(dx, dy), np.degrees(np.arctan2(dx, dy))


def sector_mask(spec: ClipSpec) -> np.ndarray:
    """bool (H, W): pixels inside the fan."""
    r, theta = sector_polar(spec)
    x0, y0, x1, y1 = spec.bbox
    mask = np.zeros(spec.size, bool)
    mask[y0:y1, x0:x1] = (r <= spec.radius) & (np.abs(theta) <= spec.half_angle)
    return mask
