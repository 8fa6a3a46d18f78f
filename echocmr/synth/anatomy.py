"""View geometry and cardiac motion for the synthetic echo renderer.

Every chamber is an ellipse in *canvas* coordinates (fractions of a square canvas whose top centre
is the transducer). A point's elliptic coordinates are ``rho`` (1 on the ellipse) and ``psi``, the
ellipse parameter angle in degrees: 0 points to the chamber's top (towards the transducer), +90
to the image right, ±180 to the bottom. The LV myocardium is a band ``endo(psi) < rho < epi(psi)``
whose per-segment endocardial excursion and thickening follow the wall-motion scores.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .cohort import MOTION_FACTOR, SEPTAL_SEGMENTS, HeartState

N_PSI = 360  # 1-degree bins for the per-angle lookup tables
SYSTOLIC_THICKENING = 0.45  # fractional wall thickening of a normal segment at end-systole


@dataclass(frozen=True)
class Chamber:
    """An elliptic chamber; lengths are canvas fractions, angles degrees.

    ``gap``: psi ranges (start, end) without a wall (valve orifices, shared walls).
    ``pump``: fractional size change at end-systole (negative: the chamber empties).
    """

    name: str
    centre: tuple[float, float]
    axes: tuple[float, float]  # half-width, half-height before rotation
    angle: float = 0.0
    wall: float = 0.02
    wall_level: float = 0.5
    gap: tuple[tuple[float, float], ...] = ()
    pump: float = 0.0


@dataclass(frozen=True)
class ViewScene:
    """One echo view: the LV (segment arcs along psi), other chambers, pericardium, valves."""

    view: str
    lv: Chamber
    arcs: tuple[tuple[int, float, float], ...]  # (AHA segment, psi start, psi end)
    others: tuple[Chamber, ...]
    pericardium: tuple[float, float] | None = None  # psi range of the bright pericardial line
    valve_psi: tuple[float, float] | None = None  # LV annulus angles for the valve leaflets
    papillary: tuple[float, ...] = ()  # psi of papillary muscles (short axis)


def _apical_arcs(left: tuple[int, int, int], right: tuple[int, int, int]) -> tuple:
    """Arcs for an apical view: walls (basal, mid, apical) on each side, apex cap 17."""
    lb, lm, la = left
    rb, rm, ra = right
    return ((17, -15, 15), (la, -60, -15), (lm, -105, -60), (lb, -150, -105),
            (ra, 15, 60), (rm, 60, 105), (rb, 105, 150))


_LV_APICAL: dict[str, Any] = dict(axes=(0.15, 0.29), wall=0.05, wall_level=0.85, gap=((150, 210),))

SCENES: dict[str, ViewScene] = {
    "A4C": ViewScene(
        "A4C",
        Chamber("LV", (0.60, 0.42), angle=8.0, **_LV_APICAL),
        _apical_arcs((3, 9, 14), (6, 12, 16)),
        (
            Chamber("RV", (0.40, 0.47), (0.15, 0.25), angle=-10.0, wall=0.02, wall_level=0.55,
                    gap=((15, 215),), pump=-0.15),
            Chamber("LA", (0.62, 0.80), (0.14, 0.12), wall=0.02, wall_level=0.5, gap=((-40, 40),), pump=0.1),
            Chamber("RA", (0.35, 0.80), (0.11, 0.11), wall=0.02, wall_level=0.45, gap=((-35, 35),), pump=0.1),
        ),
        pericardium=(40.0, 150.0),
        valve_psi=(-150.0, 150.0),
    ),
    "A2C": ViewScene(
        "A2C",
        Chamber("LV", (0.52, 0.42), angle=2.0, **_LV_APICAL),
        _apical_arcs((4, 10, 15), (1, 7, 13)),
        (
            Chamber("LA", (0.53, 0.80), (0.15, 0.12), wall=0.02, wall_level=0.5, gap=((-40, 40),), pump=0.1),
            Chamber("CS", (0.30, 0.74), (0.03, 0.03), wall=0.01, wall_level=0.55),
        ),
        pericardium=(-150.0, -40.0),
        valve_psi=(-150.0, 150.0),
    ),
    "A3C": ViewScene(
        "A3C",
        Chamber("LV", (0.50, 0.42), angle=-4.0, **_LV_APICAL),
        _apical_arcs((5, 11, 16), (2, 8, 13)),
        (
            Chamber("LA", (0.44, 0.81), (0.13, 0.11), wall=0.02, wall_level=0.5, gap=((-40, 40),), pump=0.1),
            Chamber("AO", (0.68, 0.74), (0.065, 0.15), angle=35.0, wall=0.03, wall_level=0.7,
                    gap=((-60, 10),), pump=0.05),
        ),
        pericardium=(-150.0, -40.0),
        valve_psi=(-150.0, 150.0),
    ),
    "PLAX": ViewScene(
        "PLAX",
        # The LV runs off the fan's left edge: a real PLAX rarely shows the apex (14/16/17).
        Chamber("LV", (0.32, 0.50), (0.40, 0.14), angle=-8.0, wall=0.05, wall_level=0.85, gap=((70, 110),)),
        ((8, -45, 20), (2, 20, 70), (5, 110, 165), (11, 165, 225)),
        (
            Chamber("RV", (0.36, 0.22), (0.34, 0.10), angle=-8.0, wall=0.025, wall_level=0.55,
                    gap=((100, 260),), pump=-0.15),
            Chamber("AO", (0.80, 0.44), (0.17, 0.075), angle=-5.0, wall=0.03, wall_level=0.75,
                    gap=((-125, -55),), pump=0.05),
            Chamber("LA", (0.80, 0.67), (0.12, 0.11), wall=0.02, wall_level=0.5, gap=((-80, -10),), pump=0.1),
            Chamber("DAO", (0.67, 0.88), (0.035, 0.035), wall=0.015, wall_level=0.75),
        ),
        pericardium=(115.0, 250.0),
        valve_psi=(70.0, 110.0),
    ),
    "PSAX": ViewScene(
        "PSAX",
        Chamber("LV", (0.53, 0.52), (0.17, 0.17), wall=0.05, wall_level=0.85),
        ((7, -30, 30), (12, 30, 90), (11, 90, 150), (10, 150, 210), (9, -150, -90), (8, -90, -30)),
        (
            Chamber("RV", (0.36, 0.42), (0.19, 0.13), angle=-35.0, wall=0.02, wall_level=0.55,
                    gap=((40, 200),), pump=-0.15),
        ),
        pericardium=(100.0, 230.0),
        papillary=(125.0, -155.0),
    ),
}


# --------------------------------------------------------------------------- cardiac cycle

_PHASE_KNOTS = np.array([0.0, 0.30, 0.38, 0.55, 0.75, 0.86, 0.93, 1.0])
_PHASE_VALUES = np.array([0.0, 1.0, 0.96, 0.3, 0.12, 0.14, 0.0, 0.0])


def contraction(phase: np.ndarray) -> np.ndarray:
    """Systolic contraction c in [0, 1] (0 end-diastole, 1 end-systole) for phase in cycles.

    float array, same shape as ``phase``; smoothed with a cosine ease between knots.
    """
    p = np.mod(phase, 1.0)
    idx = np.clip(np.searchsorted(_PHASE_KNOTS, p, side="right") - 1, 0, len(_PHASE_KNOTS) - 2)
    t = (p - _PHASE_KNOTS[idx]) / (_PHASE_KNOTS[idx + 1] - _PHASE_KNOTS[idx])
    ease = 0.5 - 0.5 * np.cos(np.pi * t)
    return _PHASE_VALUES[idx] + (_PHASE_VALUES[idx + 1] - _PHASE_VALUES[idx]) * ease


# --------------------------------------------------------------------------- LV lookup tables

def _psi_index(psi_start: float, psi_end: float) -> np.ndarray:
    """int indices of the 1-degree psi bins in [start, end) (bin i covers psi = i - 180)."""
    return (np.arange(int(psi_start), int(psi_end)) + 180) % N_PSI


def _circular_smooth(values: np.ndarray, sigma_deg: float) -> np.ndarray:
    """Gaussian smoothing of a (N_PSI,) table around the circle, so segment borders blend."""
    x = np.arange(-3 * int(sigma_deg), 3 * int(sigma_deg) + 1)
    kernel = np.exp(-0.5 * (x / sigma_deg) ** 2)
    kernel /= kernel.sum()
    padded = np.concatenate([values[-len(x):], values, values[: len(x)]])
    return np.convolve(padded, kernel, mode="same")[len(x): len(x) + N_PSI]


@dataclass(frozen=True, eq=False)
class LVTables:
    """Per-psi LV properties, each float32 (N_PSI,).

    ``excursion``: fractional endocardial inward motion at end-systole (negative: outward).
    ``thickness``: end-diastolic wall thickness in canvas pixels; ``thickening``: fractional
    systolic change. ``level``: myocardial echogenicity. ``wall``: 1 where a wall exists.
    ``segment``: int (N_PSI,), AHA segment shown at that angle (0: none).
    """

    excursion: np.ndarray
    thickness: np.ndarray
    thickening: np.ndarray
    level: np.ndarray
    wall: np.ndarray
    segment: np.ndarray


def lv_tables(scene: ViewScene, heart: HeartState, wall_px: float, tissue_gain: float) -> LVTables:
    """Per-angle LV motion/thickness tables for ``heart`` in ``scene``.

    ``wall_px``: normal wall thickness in canvas pixels. ``tissue_gain``: multiplies the
    myocardial echogenicity (1.0 unless tissue_signal > 0).
    """
    wall = np.ones(N_PSI)
    for start, end in scene.lv.gap:
        wall[_psi_index(start, end)] = 0.0
    segment = np.zeros(N_PSI, np.int16)
    for seg, start, end in scene.arcs:
        segment[_psi_index(start, end)] = seg
    shown = segment > 0
    seg0 = np.maximum(segment - 1, 0)
    score = np.where(shown, heart.wma[seg0], 0)
    factor = np.asarray(MOTION_FACTOR)[score]
    transmural = shown & heart.transmural[seg0]
    septal = shown & np.isin(segment, SEPTAL_SEGMENTS)
    thickness = wall_px * heart.wall_scale * np.where(septal, heart.septal_scale, 1.0)
    thickness = thickness * np.where(transmural, 0.55, 1.0)  # thinned, scarred wall
    level = scene.lv.wall_level * tissue_gain * np.where(transmural, 1.25, 1.0)
    # The orifice (no wall) keeps its end-diastolic extent so the cavity stays open to the atrium.
    excursion = heart.excursion * factor * (shown | (wall > 0))
    return LVTables(
        excursion=_circular_smooth(excursion, 5.0).astype(np.float32),
        thickness=_circular_smooth(thickness, 5.0).astype(np.float32),
        thickening=_circular_smooth(SYSTOLIC_THICKENING * factor, 5.0).astype(np.float32),
        level=_circular_smooth(np.broadcast_to(level, (N_PSI,)).astype(float), 4.0).astype(np.float32),
        wall=_circular_smooth(wall, 3.0).astype(np.float32),
        segment=segment,
    )


def jitter_scene(scene: ViewScene, rng: np.random.Generator, lv_scale: float,
                 foreshortening: float = 0.0) -> ViewScene:
    """A per-clip variant: chamber positions ±1.5 %, sizes ±8 %, LV scaled by ``lv_scale``.

    ``foreshortening`` (apical views): the imaging plane misses the true apex, so the LV's long
    axis looks shorter by that fraction and its apex rounder (the base stays in place).
    """
    def move(ch: Chamber, scale: float) -> Chamber:
        cx, cy = ch.centre
        ax, ay = ch.axes
        s = scale * rng.uniform(0.92, 1.08)
        return replace(ch, centre=(cx + rng.normal(0, 0.015), cy + rng.normal(0, 0.015)),
                       axes=(ax * s, ay * s), angle=ch.angle + rng.normal(0, 3.0))

    lv_scale = float(np.clip(lv_scale, 0.8, 1.45))
    lv = move(scene.lv, 1.0)
    # A dilated LV grows mostly across its short axis (it becomes more spherical).
    short, long_ = (lv_scale, 1 + 0.5 * (lv_scale - 1))
    ax, ay = lv.axes
    lv = replace(lv, axes=(ax * short, ay * long_) if ax <= ay else (ax * long_, ay * short))
    if foreshortening > 0 and lv.axes[1] > lv.axes[0]:
        ax, ay = lv.axes
        cut = foreshortening * ay
        lv = replace(lv, axes=(ax, ay - cut), centre=(lv.centre[0], lv.centre[1] + cut))
    return replace(scene, lv=lv, others=tuple(move(ch, 1.0) for ch in scene.others))
