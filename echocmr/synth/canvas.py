"""The heart on the canvas: per-clip maps (``prepare_canvas``) and per-frame drawing.

Tissue-bound texture: the myocardium carries a speckle-like texture indexed by its own
coordinates (angle along the wall, fractional depth across it), so the pattern moves and
thickens with the wall. The drawn endocardium is ragged (trabeculation); the ground-truth
segment radii use the smooth border.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .anatomy import N_PSI, SCENES, LVTables, ViewScene, jitter_scene, lv_tables
from .cohort import HeartState
from .ellipse import CANVAS, EllipseGrid, band, ellipse_grid, ellipse_point, psi_table, ramp
from .spec import ClipSpec

BLOOD = 0.010  # linear echo of blood (~40 dB below myocardium)
BACKGROUND = 0.15  # tissue around the heart
N_WALL_BINS = 4  # tissue-bound texture: bins across the wall

# Population moments (PAPER.md) used to standardise tissue values for the tissue_signal knob.
T1_MEAN, T1_SD = 1020.0, 72.0
T2_MEAN, T2_SD = 48.7, 6.1
ECV_MEAN, ECV_SD = 28.4, 5.7


@dataclass(frozen=True, eq=False)
class CanvasScene:
    """Everything about a clip's heart that does not change from frame to frame.

    ``background``: float32 (S, S), S = ``CANVAS``, the surrounding tissue. Over the LV's window
    (float32 (h, w)): ``lv_level`` myocardial echogenicity, ``lv_wall`` 1 where the LV has a wall,
    ``pericardium`` 1 where the pericardial line is drawn. ``others``: (grid, wall thickness in rho units,
    wall present) per non-LV chamber. ``border`` and ``texture``: see the module docstring.
    """

    scene: ViewScene
    lv: EllipseGrid
    tables: LVTables
    lv_level: np.ndarray
    lv_wall: np.ndarray
    pericardium: np.ndarray
    background: np.ndarray
    others: tuple[tuple[EllipseGrid, np.ndarray, np.ndarray], ...]
    border: np.ndarray  # float32 (N_PSI,): inward rho offset of the drawn (ragged) endocardium
    texture: np.ndarray  # float32 (N_PSI, N_WALL_BINS): tissue-bound myocardial texture, mean 1
    texture_base: np.ndarray  # int32 (h, w): lv.psi * N_WALL_BINS (flat index of a pixel's row)


def _smooth_noise(rng: np.random.Generator, sigma: float) -> np.ndarray:
    """float32 (S, S) smooth noise with zero mean and unit standard deviation."""
    noise = cv2.GaussianBlur(rng.standard_normal((CANVAS, CANVAS)).astype(np.float32), (0, 0), sigma)
    return (noise - noise.mean()) / (noise.std() + 1e-6)


def _tissue_modulation(heart: HeartState, tissue_signal: float,
                       texture: np.ndarray) -> tuple[float, np.ndarray | float]:
    """(echogenicity gain, texture factor) from standardised T1/ECV/T2; identity when the knob is 0."""
    if tissue_signal <= 0:
        return 1.0, 1.0  # the paper's finding: tissue values never reach the pixels
    z_fibrosis = np.clip(((heart.t1_ms - T1_MEAN) / T1_SD + (heart.ecv_pct - ECV_MEAN) / ECV_SD) / 2, -3, 3)
    z_oedema = np.clip((heart.t2_ms - T2_MEAN) / T2_SD, -3, 3)
    gain = 1.0 + 0.15 * tissue_signal * float(z_fibrosis)
    return gain, np.clip(1.0 + 0.25 * tissue_signal * float(z_oedema) * texture, 0.3, 2.0)


def prepare_canvas(spec: ClipSpec, heart: HeartState, tissue_signal: float,
                   rng: np.random.Generator) -> CanvasScene:
    """Jitter the view's anatomy for this clip and precompute its per-pixel maps."""
    scene = jitter_scene(SCENES[spec.view], rng, heart.lv_scale, spec.look.foreshortening)
    background = BACKGROUND * np.clip(1.0 + 0.45 * _smooth_noise(rng, 5.0), 0.2, 2.5)
    texture = _smooth_noise(rng, 0.8)
    gain, texture_factor = _tissue_modulation(heart, tissue_signal, texture)
    tables = lv_tables(scene, heart, scene.lv.wall * CANVAS, gain)
    outer_px = float(tables.thickness.max()) * (1 + float(tables.thickening.max())) + 6.0
    bulge = max(0.0, -float(tables.excursion.min()))  # dyskinetic walls move outwards
    lv = ellipse_grid(scene.lv, 1.0 + bulge + outer_px / (min(scene.lv.axes) * CANVAS))
    peri = psi_table([scene.pericardium] if scene.pericardium else [], 1.0, 0.0)
    others = []
    for ch in scene.others:
        rho_max = (1 + max(ch.pump, 0.0)) * (1.0 + (ch.wall * CANVAS + 2.0) / (min(ch.axes) * CANVAS))
        grid = ellipse_grid(ch, rho_max)
        present = psi_table(ch.gap, 0.0, 1.0)[grid.psi]
        others.append((grid, ch.wall * CANVAS * grid.soft, present))
    return CanvasScene(
        scene=scene, lv=lv, tables=tables,
        lv_level=(tables.level[lv.psi] * _crop(texture_factor, lv.window)).astype(np.float32),
        lv_wall=tables.wall[lv.psi], pericardium=peri[lv.psi],
        background=background.astype(np.float32), others=tuple(others),
        border=_ragged_border(rng, spec.look.irregularity), texture=_wall_texture(rng),
        texture_base=lv.psi.astype(np.int32) * N_WALL_BINS,
    )


def _circular_noise(rng: np.random.Generator, sigma_deg: float, shape: tuple[int, ...] = ()) -> np.ndarray:
    """float32 (N_PSI, *shape) noise smoothed around the circle, zero mean, unit SD."""
    z = rng.standard_normal((N_PSI, *shape)).astype(np.float32)
    tiled = np.concatenate([z, z, z])
    blurred = cv2.GaussianBlur(tiled.reshape(3 * N_PSI, -1), (0, 0), sigmaX=0.01, sigmaY=sigma_deg)
    out = blurred[N_PSI:2 * N_PSI].reshape(z.shape)
    return (out - out.mean()) / (out.std() + 1e-6)


def _ragged_border(rng: np.random.Generator, irregularity: float) -> np.ndarray:
    """Inward offset of the drawn endocardium: coarse (trabecular bundles) plus fine roughness."""
    raw = 0.5 + 0.35 * _circular_noise(rng, 2.0) + 0.25 * _circular_noise(rng, 8.0)
    return (irregularity * np.clip(raw, 0.0, 1.5)).astype(np.float32)


def _wall_texture(rng: np.random.Generator) -> np.ndarray:
    """Rayleigh-like magnitudes on the wall's own grid (~3-degree cells along it), mean 1."""
    re, im = _circular_noise(rng, 3.0, (N_WALL_BINS,)), _circular_noise(rng, 3.0, (N_WALL_BINS,))
    mag = np.hypot(re, im)
    return (mag / mag.mean()).astype(np.float32)


def _crop(value: np.ndarray | float, window: tuple[slice, slice]) -> np.ndarray | float:
    return value[window] if isinstance(value, np.ndarray) else value


def lv_boundaries(cs: CanvasScene, c: float) -> tuple[np.ndarray, np.ndarray]:
    """Endocardial and epicardial rho per psi bin at contraction ``c``: float32 (N_PSI,) each."""
    t = cs.tables
    endo = 1.0 - t.excursion * c
    epi = endo + t.thickness * (1.0 + t.thickening * c) * cs.lv.grad
    return endo.astype(np.float32), epi.astype(np.float32)


def segment_radii(cs: CanvasScene, endo: np.ndarray) -> np.ndarray:
    """float32 (T, 17): mean endocardial distance (canvas px) from the LV centre per segment.

    ``endo``: float32 (T, N_PSI) endocardial rho per frame; nan for segments not in the view.
    """
    a, b = cs.scene.lv.axes[0] * CANVAS, cs.scene.lv.axes[1] * CANVAS
    ang = np.radians(np.arange(N_PSI) - 180.0)
    dist = endo * np.hypot(a * np.sin(ang), b * np.cos(ang))
    out = np.full((len(endo), 17), np.nan, np.float32)
    for seg in np.unique(cs.tables.segment[cs.tables.segment > 0]):
        out[:, seg - 1] = dist[:, cs.tables.segment == seg].mean(axis=1)
    return out


def label_canvas(cs: CanvasScene, endo: np.ndarray, epi: np.ndarray) -> np.ndarray:
    """uint8 (S, S): 1 LV blood pool, 2 LV myocardium, 0 elsewhere (for measuring only)."""
    labels = np.zeros((CANVAS, CANVAS), np.uint8)
    lv = cs.lv
    e, p = (endo - cs.border)[lv.psi], epi[lv.psi]
    window = labels[lv.window]
    window[lv.rho < e] = 1
    window[(lv.rho >= e) & (lv.rho < p) & (cs.lv_wall > 0.5)] = 2
    return labels


def render_canvas(cs: CanvasScene, c: float) -> tuple[np.ndarray, np.ndarray]:
    """(canvas float32 (S, S) echogenicity, endo rho float32 (N_PSI,)) at contraction ``c``."""
    img = cs.background.copy()
    bands = []
    for grid, wall_rho, present in cs.others:
        view = img[grid.window]  # a view: edits land in img
        rho = grid.rho / np.float32(1.0 + grid.chamber.pump * c)
        view += (BLOOD - view) * ramp(1.0 - rho, grid.soft)
        bands.append((view, band(rho, 1.0, 1.0 + wall_rho, grid.soft) * present, grid.chamber.wall_level))
    endo, epi = lv_boundaries(cs, c)
    lv = cs.lv
    view = img[lv.window]
    e, p = (endo - cs.border)[lv.psi], epi[lv.psi]
    view += (BLOOD - view) * ramp(e - lv.rho, lv.soft)
    for other, wall_band, level in bands:
        np.maximum(other, wall_band * np.float32(level), out=other)
    myo = band(lv.rho, e, p, lv.soft) * cs.lv_wall
    # Texture bin from the fractional depth across the wall: the pattern rides on the tissue.
    depth_bin = ((lv.rho - e) / np.maximum(p - e, 1e-3) * N_WALL_BINS).astype(np.int32)
    np.clip(depth_bin, 0, N_WALL_BINS - 1, out=depth_bin)
    depth_bin += cs.texture_base
    view += (cs.lv_level * cs.texture.ravel().take(depth_bin) - view) * myo
    peri = band(lv.rho, p + 0.5 * lv.soft, p + 3.5 * lv.soft, lv.soft) * cs.pericardium
    np.maximum(view, peri, out=view)
    _draw_valves(img, cs, endo, c)
    return img, endo


def _draw_valves(img: np.ndarray, cs: CanvasScene, endo: np.ndarray, c: float) -> None:
    """Leaflets at the LV annulus (open in diastole) and papillary muscles, drawn in place."""
    ch = cs.scene.lv
    shift = 4  # cv2 fixed-point drawing: sub-pixel positions, smooth motion
    width = max(1, CANVAS // 90)
    if cs.scene.valve_psi is not None:
        pl, pr = cs.scene.valve_psi
        al = np.array(ellipse_point(ch, float(endo[int(pl) + 180]), pl))
        ar = np.array(ellipse_point(ch, float(endo[(int(pr) + 180) % N_PSI]), pr))
        mid = (al + ar) / 2
        inward = np.array(ch.centre) * CANVAS - mid
        inward /= np.linalg.norm(inward) + 1e-6
        length = 0.5 * np.linalg.norm(ar - al)
        openness = float(np.clip(1.0 - 3.0 * c, 0.0, 1.0))
        for root in (al, ar):
            closed = mid - 0.1 * length * inward
            tip = closed + openness * (root + length * inward - closed)
            cv2.line(img, _fixed(root, shift), _fixed(tip, shift), 0.75, width, cv2.LINE_AA, shift)
    for psi in cs.scene.papillary:
        centre = ellipse_point(ch, 0.78 * float(endo[(int(psi) + 180) % N_PSI]), psi)
        radius = 0.028 * CANVAS * (1.0 + 0.3 * c)
        cv2.circle(img, _fixed(centre, shift), int(radius * 16), 0.8, -1, cv2.LINE_AA, shift)


def _fixed(point, shift: int) -> tuple[int, int]:
    return int(round(point[0] * (1 << shift))), int(round(point[1] * (1 << shift)))
