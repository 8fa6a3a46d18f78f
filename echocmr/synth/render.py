"""Vectorised ultrasound rendering of one synthetic echo clip.

Per frame the heart is drawn on a small square *canvas* (``CANVAS`` px, transducer at its top
centre) from precomputed elliptic coordinates, warped into the fan-shaped sector of the output
frame, multiplied by Rayleigh speckle and depth attenuation, log-compressed, and overlaid with
burned-in text (outside the sector) and an ECG trace (along the bottom, partly inside the sector).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import cv2
import numpy as np

from .anatomy import N_PSI, SCENES, Chamber, LVTables, ViewScene, contraction, jitter_scene, lv_tables
from .cohort import HeartState

CANVAS = 128
BLOOD = 0.025
BACKGROUND = 0.13
N_SPECKLE_KEYS = 5  # speckle magnitude fields per clip, interpolated over the cardiac phase

# Population moments (PAPER.md) used to standardise tissue values for the tissue_signal knob.
T1_MEAN, T1_SD = 1020.0, 72.0
T2_MEAN, T2_SD = 48.7, 6.1
ECV_MEAN, ECV_SD = 28.4, 5.7


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

    @property
    def bbox(self) -> tuple[int, int, int, int]:
        """Sector bounding box (x0, y0, x1, y1), half-open, clipped to the frame."""
        rows, cols = self.size
        ax, ay = self.apex
        half = np.radians(self.half_angle)
        x0 = int(np.floor(ax - self.radius * np.sin(half)))
        x1 = int(np.ceil(ax + self.radius * np.sin(half))) + 1
        return max(x0, 0), max(int(ay), 0), min(x1, cols), min(int(np.ceil(ay + self.radius)) + 1, rows)


@dataclass(frozen=True, eq=False)
class RenderedClip:
    """A rendered clip.

    ``frames``: uint8 (T, H, W, 3) RGB (BGR if rendered with ``bgr=True``) with overlays. ``clean``: uint8 (T, H, W) grey, no
    overlays. ``segment_radii``: float32 (T, 17) endocardial distance from the LV centre per AHA
    segment in canvas pixels (nan where the view does not show the segment). ``contraction``:
    float (T,), 0 end-diastole .. 1 end-systole. ``sector_mask``: bool (H, W).
    """

    spec: ClipSpec
    frames: np.ndarray
    clean: np.ndarray
    segment_radii: np.ndarray
    contraction: np.ndarray
    sector_mask: np.ndarray = field(repr=False)


FRAME_RATES = (30.0, 36.0, 40.0, 44.0, 50.0, 54.0, 60.0)  # typical scanner settings


def draw_clip_spec(rng: np.random.Generator, view: str, size: tuple[int, int], beats: float,
                   fps_range: tuple[float, float] = (30.0, 60.0)) -> ClipSpec:
    """Random acquisition: HR 50–110 bpm, fps in ``fps_range``, at least ``beats`` (>= 2) cycles."""
    rows, cols = size
    hr = float(rng.uniform(50, 110))
    rates = [f for f in FRAME_RATES if fps_range[0] <= f <= fps_range[1]] or [float(fps_range[0])]
    fps = float(rates[int(rng.integers(len(rates)))])
    n_frames = int(np.ceil(max(beats, 2.0) * 60.0 / hr * fps)) + 1
    apex_y = rows * rng.uniform(0.03, 0.07)
    parasternal = view in ("PLAX", "PSAX")
    return ClipSpec(
        view=view, heart_rate_bpm=round(hr, 1), fps=fps, n_frames=n_frames,
        start_phase=float(rng.random()), size=(rows, cols),
        apex=(cols / 2 + cols * rng.uniform(-0.02, 0.02), apex_y),
        radius=float((rows - apex_y) * rng.uniform(0.88, 0.96)),
        half_angle=float(rng.uniform(30, 45)),
        rotation=float(rng.uniform(-10, 10)),
        heart_scale=float(rng.uniform(0.95, 1.1)),
        offset=(float(rng.normal(0, 0.02)), float(rng.normal(0, 0.02))),
        gain=float(rng.uniform(0.85, 1.15)),
        attenuation=float(rng.uniform(0.3, 0.9)),
        depth_cm=float(rng.uniform(12, 16) if parasternal else rng.uniform(14, 20)),
        seed=int(rng.integers(2**31)),
    )


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


def _display_map(spec: ClipSpec, r: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """float32 (H, W): gain × depth attenuation (partly undone by TGC) × sector mask."""
    depth = r / spec.radius
    atten = np.exp(-spec.attenuation * depth) * (1.0 + 0.35 * depth)
    near = 1.0 + 0.6 * np.exp(-depth / 0.05)  # near-field clutter below the transducer
    return (spec.gain * atten * near * mask).astype(np.float32)


# --------------------------------------------------------------------------- speckle

@functools.lru_cache(maxsize=4)
def _speckle_bank(rows: int, cols: int, n: int = 4) -> tuple[np.ndarray, ...]:
    """``n`` complex64 (rows+64, cols+64) circular Gaussian fields, laterally elongated.

    Fixed per frame size (seeded by the size only), so every worker process builds the same bank.
    """
    rng = np.random.default_rng(np.random.SeedSequence([rows, cols, 7]))
    sigma = max(rows / 480.0, 0.5)
    bank = []
    for _ in range(n):
        z = rng.standard_normal((2, rows + 64, cols + 64)).astype(np.float32)
        z = [cv2.GaussianBlur(p, (0, 0), sigmaX=1.6 * sigma, sigmaY=0.8 * sigma) for p in z]
        field_ = (z[0] + 1j * z[1]).astype(np.complex64)
        bank.append(field_ / np.sqrt(np.mean(np.abs(field_) ** 2)))
    return tuple(bank)


def speckle_keys(spec: ClipSpec, rng: np.random.Generator) -> np.ndarray:
    """float32 (K, h, w) Rayleigh speckle magnitudes (mean ~0.89) over the sector's bounding box,
    decorrelating gradually from key to key."""
    x0, y0, x1, y1 = spec.bbox
    rows, cols = y1 - y0, x1 - x0
    bank = _speckle_bank(*spec.size)
    i, j = rng.choice(len(bank), size=2, replace=False)
    oy, ox = rng.integers(0, 64, size=2)
    zi = bank[i][oy:oy + rows, ox:ox + cols]
    zj = bank[j][oy:oy + rows, ox:ox + cols]
    keys = []
    for angle in np.linspace(0.0, 0.9, N_SPECKLE_KEYS):
        keys.append(np.abs(np.cos(angle) * zi + np.sin(angle) * zj))
    return np.stack(keys).astype(np.float32)


def speckle_at(keys: np.ndarray, phase: float) -> np.ndarray:
    """float32 (H, W): speckle for a cardiac phase; periodic, so tissue speckle repeats per beat."""
    u = (0.5 - 0.5 * np.cos(2 * np.pi * phase)) * (len(keys) - 1)
    k = min(int(u), len(keys) - 2)
    w = np.float32(u - k)
    return keys[k] * (1 - w) + keys[k + 1] * w


# --------------------------------------------------------------------------- canvas geometry

@dataclass(frozen=True, eq=False)
class EllipseGrid:
    """Elliptic coordinates of the canvas pixels near one chamber.

    Only the window (a (rows, cols) slice pair of the canvas) where rho <= rho_max is kept, so
    per-frame work scales with the chamber's size. ``rho``: float32 (h, w); ``psi``: int16
    (h, w) 1-degree bin; ``grad``: float32 (N_PSI,), |d rho / d pixel| per bin; ``soft``:
    float32 (h, w), rho change over one pixel (edge width).
    """

    chamber: Chamber
    window: tuple[slice, slice]
    rho: np.ndarray
    psi: np.ndarray
    grad: np.ndarray
    soft: np.ndarray


def ellipse_grid(ch: Chamber, rho_max: float) -> EllipseGrid:
    y, x = np.mgrid[0:CANVAS, 0:CANVAS].astype(np.float32) + 0.5
    a, b = ch.axes[0] * CANVAS, ch.axes[1] * CANVAS
    t = np.radians(ch.angle)
    dx, dy = x - ch.centre[0] * CANVAS, y - ch.centre[1] * CANVAS
    lx = np.cos(t) * dx + np.sin(t) * dy
    ly = -np.sin(t) * dx + np.cos(t) * dy
    u, v = lx / a, ly / b
    rho = np.hypot(u, v).astype(np.float32)
    rows, cols = np.nonzero(rho <= rho_max)
    if len(rows) == 0:
        window = (slice(0, 0), slice(0, 0))
    else:
        window = (slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1))
    u, v, rho = u[window], v[window], rho[window]
    psi = ((np.round(np.degrees(np.arctan2(u, -v))).astype(np.int32) + 180) % N_PSI).astype(np.int16)
    ang = np.radians(np.arange(N_PSI) - 180.0)
    grad = np.sqrt((np.sin(ang) / a) ** 2 + (np.cos(ang) / b) ** 2).astype(np.float32)
    return EllipseGrid(ch, window, rho, psi, grad, grad[psi])


def ellipse_point(ch: Chamber, rho: float, psi_deg: float) -> tuple[float, float]:
    """Canvas pixel (x, y) of elliptic coordinates (rho, psi) of a chamber."""
    a, b = ch.axes[0] * CANVAS, ch.axes[1] * CANVAS
    p = np.radians(psi_deg)
    lx, ly = rho * a * np.sin(p), -rho * b * np.cos(p)
    t = np.radians(ch.angle)
    return (ch.centre[0] * CANVAS + np.cos(t) * lx - np.sin(t) * ly,
            ch.centre[1] * CANVAS + np.sin(t) * lx + np.cos(t) * ly)


def _unit(v: np.ndarray) -> np.ndarray:
    """Clamp to [0, 1] in place (ufuncs: np.clip's wrapper dominates on small arrays)."""
    np.maximum(v, 0, out=v)
    return np.minimum(v, 1, out=v)


def _ramp(distance: np.ndarray, soft: np.ndarray) -> np.ndarray:
    """float32 soft step: 0 at distance <= -soft/2, 1 at distance >= soft/2 (one-pixel edge)."""
    v = distance / soft
    v += 0.5
    return _unit(v)


def _band(x: np.ndarray, lo: np.ndarray | float, hi: np.ndarray | float, soft: np.ndarray) -> np.ndarray:
    """float32 soft indicator of lo < x < hi with edges one pixel wide."""
    return _ramp(np.minimum(x - lo, hi - x), soft)


def _psi_table(ranges, inside: float, outside: float) -> np.ndarray:
    table = np.full(N_PSI, outside, np.float32)
    for start, end in ranges:
        table[(np.arange(int(start), int(end)) + 180) % N_PSI] = inside
    return table


# --------------------------------------------------------------------------- the heart on the canvas

@dataclass(frozen=True, eq=False)
class CanvasScene:
    """Everything about a clip's heart that does not change from frame to frame.

    ``background``: float32 (S, S), S = ``CANVAS``, the surrounding tissue. Over the LV's window
    (float32 (h, w)): ``lv_level`` myocardial echogenicity, ``lv_wall`` 1 where the LV has a wall,
    ``pericardium`` 1 where the pericardial line is drawn. ``others``: (grid, wall thickness in rho units,
    wall present) per non-LV chamber.
    """

    scene: ViewScene
    lv: EllipseGrid
    tables: LVTables
    lv_level: np.ndarray
    lv_wall: np.ndarray
    pericardium: np.ndarray
    background: np.ndarray
    others: tuple[tuple[EllipseGrid, np.ndarray, np.ndarray], ...]


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
    scene = jitter_scene(SCENES[spec.view], rng, heart.lv_scale)
    background = BACKGROUND * np.clip(1.0 + 0.45 * _smooth_noise(rng, 5.0), 0.2, 2.5)
    texture = _smooth_noise(rng, 0.8)
    gain, texture_factor = _tissue_modulation(heart, tissue_signal, texture)
    tables = lv_tables(scene, heart, scene.lv.wall * CANVAS, gain)
    outer_px = float(tables.thickness.max()) * (1 + float(tables.thickening.max())) + 6.0
    bulge = max(0.0, -float(tables.excursion.min()))  # dyskinetic walls move outwards
    lv = ellipse_grid(scene.lv, 1.0 + bulge + outer_px / (min(scene.lv.axes) * CANVAS))
    peri = _psi_table([scene.pericardium] if scene.pericardium else [], 1.0, 0.0)
    others = []
    for ch in scene.others:
        rho_max = (1 + max(ch.pump, 0.0)) * (1.0 + (ch.wall * CANVAS + 2.0) / (min(ch.axes) * CANVAS))
        grid = ellipse_grid(ch, rho_max)
        present = _psi_table(ch.gap, 0.0, 1.0)[grid.psi]
        others.append((grid, ch.wall * CANVAS * grid.soft, present))
    return CanvasScene(
        scene=scene, lv=lv, tables=tables,
        lv_level=(tables.level[lv.psi] * _crop(texture_factor, lv.window)).astype(np.float32),
        lv_wall=tables.wall[lv.psi], pericardium=peri[lv.psi],
        background=background.astype(np.float32), others=tuple(others),
    )


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


def render_canvas(cs: CanvasScene, c: float) -> tuple[np.ndarray, np.ndarray]:
    """(canvas float32 (S, S) echogenicity, endo rho float32 (N_PSI,)) at contraction ``c``."""
    img = cs.background.copy()
    bands = []
    for grid, wall_rho, present in cs.others:
        view = img[grid.window]  # a view: edits land in img
        rho = grid.rho / np.float32(1.0 + grid.chamber.pump * c)
        view += (BLOOD - view) * _ramp(1.0 - rho, grid.soft)
        bands.append((view, _band(rho, 1.0, 1.0 + wall_rho, grid.soft) * present, grid.chamber.wall_level))
    endo, epi = lv_boundaries(cs, c)
    lv = cs.lv
    view = img[lv.window]
    e, p = endo[lv.psi], epi[lv.psi]
    view += (BLOOD - view) * _ramp(e - lv.rho, lv.soft)
    for other, band, level in bands:
        np.maximum(other, band * np.float32(level), out=other)
    myo = _band(lv.rho, e, p, lv.soft) * cs.lv_wall
    view += (cs.lv_level - view) * myo
    peri = _band(lv.rho, p + 0.5 * lv.soft, p + 3.5 * lv.soft, lv.soft) * cs.pericardium
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


# --------------------------------------------------------------------------- overlays

@dataclass(frozen=True)
class BurnedText:
    """Text burned into the pixels outside the sector (top-left and top-right blocks)."""

    left: tuple[str, ...] = ()
    right: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class Overlay:
    """Static overlay pixels: ``index`` int64 (n,) flat pixel indices, ``rgb`` uint8 (n, 3).

    ``ecg_xy``: float32 (T, 2), the moving ECG cursor position per frame. With ``bgr`` the
    colours (``rgb`` and ``cursor``) are in OpenCV's BGR order.
    """

    index: np.ndarray
    rgb: np.ndarray
    ecg_xy: np.ndarray
    cursor: tuple[int, int, int] = (255, 230, 40)
    bgr: bool = False


def ecg_wave(phase: np.ndarray) -> np.ndarray:
    """Synthetic P-QRS-T (arbitrary units, R = 1) with the R peak at end-diastole (phase 0)."""
    p = np.mod(phase + 0.5, 1.0) - 0.5  # -0.5 .. 0.5 around the R peak

    def g(centre: float, width: float, height: float) -> np.ndarray:
        return height * np.exp(-0.5 * ((p - centre) / width) ** 2)

    return g(-0.16, 0.025, 0.12) + g(-0.02, 0.006, -0.12) + g(0.0, 0.008, 1.0) \
        + g(0.025, 0.007, -0.2) + g(0.28, 0.045, 0.25)


def _ecg_polyline(spec: ClipSpec, phases: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(int32 (N, 2) trace points across the bottom, float32 (T, 2) cursor per frame)."""
    rows, cols = spec.size
    x0, x1 = 0.06 * cols, 0.94 * cols
    base, amp = rows * 0.935, rows * 0.045
    t = np.linspace(0.0, 1.0, int(x1 - x0))
    trace_phase = phases[0] + t * (phases[-1] - phases[0])
    pts = np.stack([x0 + t * (x1 - x0), base - amp * ecg_wave(trace_phase)], axis=1)
    tf = np.linspace(0.0, 1.0, len(phases))
    cursor = np.stack([x0 + tf * (x1 - x0), base - amp * ecg_wave(phases)], axis=1)
    return np.round(pts).astype(np.int32), cursor.astype(np.float32)


def _put_lines(img: np.ndarray, lines, x: float, y: float, scale: float, right: bool) -> None:
    font = cv2.FONT_HERSHEY_SIMPLEX
    step = 22 * scale / 0.5
    for k, text in enumerate(lines):
        (w, _), _ = cv2.getTextSize(text, font, scale, 1)
        xx = int(x - w) if right else int(x)
        cv2.putText(img, text, (xx, int(y + k * step)), font, scale, (225, 225, 225), 1, cv2.LINE_AA)


def build_overlay(spec: ClipSpec, text: BurnedText, mask: np.ndarray, phases: np.ndarray,
                  bgr: bool = False) -> Overlay:
    """Burned-in text/markers outside the sector plus an ECG trace that may cross into it."""
    rows, cols = spec.size
    canvas = np.zeros((rows, cols, 3), np.uint8)
    scale = 0.38 * rows / 480
    _put_lines(canvas, text.left, 0.015 * cols, 0.05 * rows, scale, right=False)
    _put_lines(canvas, text.right, 0.985 * cols, 0.05 * rows, scale, right=True)
    marker = (int(spec.apex[0] + 0.07 * cols), int(spec.apex[1] + 0.02 * rows))
    cv2.circle(canvas, marker, max(2, rows // 120), (40, 140, 255), -1)
    canvas[mask] = 0  # text never lies inside the fan
    pts, cursor = _ecg_polyline(spec, phases)
    cv2.polylines(canvas, [pts], False, (60, 220, 60), max(1, rows // 240), cv2.LINE_AA)
    flat = canvas.reshape(-1, 3)
    index = np.flatnonzero(flat.any(axis=1))
    colours = flat[index][:, ::-1] if bgr else flat[index]
    cursor_colour = (40, 230, 255) if bgr else (255, 230, 40)
    return Overlay(index, np.ascontiguousarray(colours), cursor, cursor_colour, bgr)


# --------------------------------------------------------------------------- the clip

@functools.lru_cache(maxsize=1)
def _display_lut() -> np.ndarray:
    """uint8 (256,) log compression of linear intensity to display grey."""
    v = np.arange(256) / 255.0
    return np.round(255 * np.log1p(12 * v) / np.log1p(12)).astype(np.uint8)


def _grey_frame(tissue: np.ndarray, speckle: np.ndarray) -> np.ndarray:
    """uint8 (h, w) displayed grey from linear echogenicity × (speckle × gain × attenuation)."""
    linear = tissue * speckle
    return cv2.LUT(cv2.convertScaleAbs(linear, alpha=255.0 / 2.2), _display_lut())


def clip_phases(spec: ClipSpec) -> np.ndarray:
    """float64 (T,) cardiac phase (cycles) of each frame."""
    return spec.start_phase + np.arange(spec.n_frames) * (spec.heart_rate_bpm / 60.0) / spec.fps


def render_clip(spec: ClipSpec, heart: HeartState, tissue_signal: float = 0.0,
                text: BurnedText | None = None, bgr: bool = False) -> RenderedClip:
    """Render one clip; deterministic in (spec, heart, tissue_signal, text).

    ``bgr``: fill ``frames`` in OpenCV's BGR channel order (saves a conversion before JPEG).
    """
    rng = np.random.default_rng(spec.seed)
    cs = prepare_canvas(spec, heart, tissue_signal, rng)
    keys = speckle_keys(spec, rng)
    # Per-pixel work is confined to the sector's bounding box; the rest of the frame stays black.
    x0, y0, x1, y1 = spec.bbox
    r, theta = sector_polar(spec)
    local_mask = (r <= spec.radius) & (np.abs(theta) <= spec.half_angle)
    keys *= _display_map(spec, r, local_mask)  # gain, attenuation and mask are static per clip
    mask = np.zeros(spec.size, bool)
    mask[y0:y1, x0:x1] = local_mask
    warp = canvas_to_image(spec)
    warp[:, 2] -= (x0, y0)
    phases = clip_phases(spec)
    c = contraction(phases)
    overlay = build_overlay(spec, text or BurnedText(), mask, phases, bgr)
    rows, cols = spec.size
    frames = np.empty((spec.n_frames, rows, cols, 3), np.uint8)
    clean = np.zeros((spec.n_frames, rows, cols), np.uint8)
    endo = np.empty((spec.n_frames, N_PSI), np.float32)
    for t in range(spec.n_frames):
        canvas, endo[t] = render_canvas(cs, float(c[t]))
        tissue = cv2.warpAffine(canvas, warp, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=BACKGROUND)
        clean[t, y0:y1, x0:x1] = _grey_frame(tissue, speckle_at(keys, float(phases[t])))
        _compose(clean[t], overlay, t, frames[t])
    return RenderedClip(spec, frames, clean, segment_radii(cs, endo), c, mask)


def _compose(grey: np.ndarray, overlay: Overlay, t: int, rgb: np.ndarray) -> np.ndarray:
    """Fill uint8 ``rgb`` (H, W, 3) with the grey frame, the static overlay and the ECG cursor."""
    cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB, dst=rgb)
    rgb.reshape(-1, 3)[overlay.index] = overlay.rgb
    x, y = overlay.ecg_xy[t]
    radius = max(2, grey.shape[0] // 160)
    cv2.circle(rgb, (int(round(x)), int(round(y))), radius, overlay.cursor, -1)
    return rgb
