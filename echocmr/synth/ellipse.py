"""Elliptic coordinates of canvas pixels around a chamber, and soft-edged drawing helpers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .anatomy import N_PSI, Chamber
from .spec import CANVAS


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


def unit(v: np.ndarray) -> np.ndarray:
    """Clamp to [0, 1] in place (ufuncs: np.clip's wrapper dominates on small arrays)."""
    np.maximum(v, 0, out=v)
    return np.minimum(v, 1, out=v)


def ramp(distance: np.ndarray, soft: np.ndarray) -> np.ndarray:
    """float32 soft step: 0 at distance <= -soft/2, 1 at distance >= soft/2 (one-pixel edge)."""
    v = distance / soft
    v += 0.5
    return unit(v)


def band(x: np.ndarray, lo: np.ndarray | float, hi: np.ndarray | float, soft: np.ndarray) -> np.ndarray:
    """float32 soft indicator of lo < x < hi with edges one pixel wide."""
    return ramp(np.minimum(x - lo, hi - x), soft)


def psi_table(ranges, inside: float, outside: float) -> np.ndarray:
    table = np.full(N_PSI, outside, np.float32)
    for start, end in ranges:
        table[(np.arange(int(start), int(end)) + 180) % N_PSI] = inside
    return table
