"""Image formation: speckle, depth attenuation with TGC, dropout, clutter, reverberation and
log compression to display grey.

The linear echo of a pixel is ``(tissue + haze) × gain map × speckle``: ``tissue`` comes from the
heart drawn on the canvas (it moves with the heart), the gain map holds attenuation, TGC, dropout
and the sector mask, ``haze`` holds near-field clutter and reverberation bands (fixed to the
transducer, as in a real scanner), and the speckle is a fully developed (Rayleigh) field whose
cells are elongated across the beam and decorrelate over time.
"""

from __future__ import annotations

import cv2
import numpy as np

from .spec import ClipSpec

MAX_DECORRELATION_RAD = 40.0  # caps the number of speckle keys of long, fast-decorrelating clips
KEY_STEP_RAD = np.pi / 3
GOLDEN = (1 + 5 ** 0.5) / 2  # decorrelation angle between two stored speckle keys
NOISE_FLOOR = 1e-3  # electronic noise, linear echo level
DB_PER_LN = 20.0 / np.log(10.0)


def _polar_gaussian_field(rng: np.random.Generator, shape: tuple[int, int], sigma_r: float,
                          sigma_t: float) -> np.ndarray:
    """complex64 (n_r, n_theta) circular Gaussian field, blurred to the speckle cell, E|z|² = 1."""
    noise = rng.standard_normal((2, *shape)).astype(np.float32)
    real_part, imag_part = (cv2.GaussianBlur(p, (0, 0), sigmaX=max(sigma_t, 0.3), sigmaY=max(sigma_r, 0.3)) for p in noise)
    out = (real_part + 1j * imag_part).astype(np.complex64)
    return out / np.sqrt(np.mean(np.abs(out) ** 2) + 1e-12)


def speckle_keys(spec: ClipSpec, rng: np.random.Generator, r: np.ndarray, theta: np.ndarray
                 ) -> tuple[np.ndarray, float]:
    """(float32 (K, h, w) Rayleigh magnitudes over the bbox (mean ~1), keys per second).

    Built on a polar grid so cells are oriented along the beam (axial) and across it (lateral,
    a constant angle: widening with depth as a real beam does), then resampled to the bbox.
    Consecutive keys are ``KEY_STEP_RAD`` apart on a quasi-periodic path through three
    independent fields, so the speckle keeps decorrelating over the clip instead of repeating
    each beat.
    """
    look = spec.look
    # Fields are drawn on a half-resolution polar grid (cells span several pixels anyway).
    n_r = int(np.ceil(spec.radius / 2)) + 2
    arc = np.radians(2 * spec.half_angle) * spec.radius / 2  # lateral grid pixels at full depth
    n_t = int(np.ceil(arc)) + 2
    # The lateral cell is set at mid-depth (the usual focus) and spans a constant angle, so it
    # narrows towards the transducer and widens beyond, like a focused beam's.
    sig_r, sig_t = look.speckle_axial * spec.radius / 2, look.speckle_lateral * spec.radius
    map_t = ((theta + spec.half_angle) / (2 * spec.half_angle) * (n_t - 2)).astype(np.float32)
    map_r = (r / 2).astype(np.float32)
    duration = spec.n_frames / spec.fps
    total = min(look.decorrelation * 30.0 * duration, MAX_DECORRELATION_RAD)
    n_keys = max(2, int(np.ceil(total / KEY_STEP_RAD)) + 1)
    base = []
    for _ in range(3):
        z = _polar_gaussian_field(rng, (n_r, n_t), sig_r, sig_t)
        re = cv2.remap(np.ascontiguousarray(z.real), map_t, map_r, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        im = cv2.remap(np.ascontiguousarray(z.imag), map_t, map_r, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        base.append((re, im))
    (ra, ia), (rb, ib), (rc, ic) = base
    keys = []
    for s in np.linspace(0.0, total, n_keys):
        # A quasi-periodic path over three independent fields (unit power all along): the
        # pattern keeps decorrelating and never repeats within a clip, at the cost of 3 fields.
        u, v = s, s / GOLDEN
        ca, sa = np.float32(np.cos(u) * np.cos(v)), np.float32(np.sin(u) * np.cos(v))
        sc = np.float32(np.sin(v))
        keys.append(cv2.magnitude(ca * ra + sa * rb + sc * rc, ca * ia + sa * ib + sc * ic))
    stacked = np.stack(keys).astype(np.float32)
    stacked /= np.float32(stacked.mean() + 1e-6)
    return stacked, (n_keys - 1) / max(duration, 1e-6)


def speckle_at(keys: np.ndarray, key_rate: float, time_s: float) -> np.ndarray:
    """float32 (h, w): speckle at ``time_s`` seconds, interpolated between stored keys."""
    u = min(max(time_s * key_rate, 0.0), len(keys) - 1.0)
    k = min(int(u), len(keys) - 2)
    w = float(u - k)
    return cv2.addWeighted(keys[k], 1.0 - w, keys[k + 1], w, 0.0)


def _smooth_profile(rng: np.random.Generator, n: int, sigma: float) -> np.ndarray:
    """float (n,) smooth noise, zero mean, unit SD."""
    x = cv2.GaussianBlur(rng.standard_normal((1, n)).astype(np.float32), (0, 0), sigmaX=sigma)[0]
    return (x - x.mean()) / (x.std() + 1e-6)


def gain_map(spec: ClipSpec, r: np.ndarray, theta: np.ndarray, mask: np.ndarray,
             rng: np.random.Generator) -> np.ndarray:
    """float32 (h, w): gain × attenuation after TGC × lateral/apical dropout × sector mask."""
    look = spec.look
    depth = r / spec.radius
    atten = np.exp(-2.0 * spec.attenuation * depth * (1.0 - look.tgc))
    side = spec.lateral_side * theta / spec.half_angle  # -1 .. 1, +1 at the dropout side
    ramp = np.clip((side - 0.2) / 0.5, 0.0, 1.0)
    window = np.exp(-0.5 * ((depth - 0.5) / 0.22) ** 2)  # mid-depth: where the free wall runs
    beams = _smooth_profile(rng, 181, 6.0)  # rib shadows / poor contact: patchy beams
    patchy = beams[np.clip(((theta / spec.half_angle + 1) * 90).astype(int), 0, 180)]
    drop = look.lateral_dropout * (ramp * window + 0.25 * np.clip(patchy, 0, None))
    apical = look.apical_dropout * np.exp(-0.5 * (depth / 0.18) ** 2) * np.exp(-0.5 * (theta / 18.0) ** 2)
    out = spec.gain * atten * np.clip(1.0 - drop, 0.05, 1.0) * (1.0 - apical) * mask
    return out.astype(np.float32)


def haze_map(spec: ClipSpec, r: np.ndarray, theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """float32 (h, w) linear echo added to the tissue: near-field clutter, reverberation, noise."""
    look = spec.look
    depth = r / spec.radius
    haze = look.clutter * np.exp(-depth / 0.08) + NOISE_FLOOR
    spacing = rng.uniform(0.10, 0.18)  # transducer-to-first-interface distance (depth fraction)
    lateral = 0.6 + 0.4 * np.clip(_smooth_profile(rng, 181, 10.0), -1.5, 1.5)
    across = lateral[np.clip(((theta / spec.half_angle + 1) * 90).astype(int), 0, 180)]
    for k in range(1, 4):
        band = np.exp(-0.5 * ((depth - k * spacing) / 0.012) ** 2)
        haze = haze + look.reverberation * 0.55 ** (k - 1) * band * across
    return haze.astype(np.float32)


def display_grey(linear: np.ndarray, spec: ClipSpec, out: np.ndarray | None = None) -> np.ndarray:
    """uint8 (h, w) log-compressed grey: ``headroom_db`` below white is linear 1, black is
    ``dynamic_range_db`` below white."""
    look = spec.look
    logv = cv2.log(np.maximum(linear, np.float32(1e-6)))
    alpha = 255.0 / look.dynamic_range_db * DB_PER_LN
    beta = 255.0 * (look.dynamic_range_db - look.headroom_db) / look.dynamic_range_db
    scaled = logv * np.float32(alpha) + np.float32(beta)
    np.maximum(scaled, 0, out=scaled)  # convertScaleAbs would fold negative values back up
    return cv2.convertScaleAbs(scaled, out)
