"""Overlays burned into a rendered clip: text blocks outside the fan and an ECG trace."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .spec import ClipSpec


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
