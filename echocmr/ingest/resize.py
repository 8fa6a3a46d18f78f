"""Per-frame pixel de-identification, crop and resize; time resampling; the preview.

Each decoded frame is reduced to its 112×112 output immediately (never a full-size video in
memory): crop to the sector's bbox → zero coloured overlays (ECG, calipers) → grey → zero
outside the fan → paste into the sector's bounding square → cubic resize (the EchoNet-Dynamic
preprocessing). A single cubic resize of the masked square keeps the arithmetic simple and
exactly reproducible; no INTER_AREA pre-pass is needed for echo-sized frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from ..clip import SectorGeometry
from .sector import fan_mask

# |Cb − 128| or |Cr − 128| above this marks a coloured overlay, not ultrasound grey (JPEG 4:2:2
# chroma noise on grey speckle stays within a few levels; a saturated ECG green is ~90 away).
CHROMA_THRESHOLD = 20
PREVIEW_MAX_HEIGHT = 480
OUTLINE_RGB = (255, 200, 0)
_DILATE = np.ones((3, 5), np.uint8)  # chroma bleeds sideways under 4:2:2 subsampling


@dataclass
class CropPlan:
    """Everything needed to turn one original frame into one output frame.

    ``box`` (x0, y0, x1, y1) half-open: the fan's bbox in the frame; ``mask``: uint8 (y1-y0,
    x1-x0), 255 inside the fan; ``side``: the bounding square's side; ``offset``: (ox, oy) where
    the box lands in the square; ``size``: output side (112).
    """

    box: tuple[int, int, int, int]
    mask: np.ndarray
    side: int
    offset: tuple[int, int]
    size: int
    colour_order: str | None  # "BGR", "RGB" or None for grey frames
    text_mask: np.ndarray | None = None  # uint8 (h, w), 255: burned-in text inside the fan (ingest.burned_text)

    @classmethod
    def build(cls, geom: SectorGeometry, size: int, colour_order: str | None) -> "CropPlan":
        x0, y0, x1, y1 = geom.bbox
        mask = fan_mask(geom, geom.bbox).astype(np.uint8) * 255
        w, h = x1 - x0, y1 - y0
        side = max(w, h)
        return cls(geom.bbox, mask, side, ((side - w) // 2, (side - h) // 2), size, colour_order)

    def clean(self, frame: np.ndarray) -> np.ndarray:
        """uint8 (h, w) grey crop with overlays and everything outside the fan zeroed.

        ``frame``: uint8 (H, W) grey or (H, W, 3) in ``colour_order``.
        """
        x0, y0, x1, y1 = self.box
        grey, bad = _grey_and_overlay(frame[y0:y1, x0:x1], self.colour_order)
        keep = self.mask if bad is None else cv2.bitwise_and(self.mask, cv2.bitwise_not(bad))
        if self.text_mask is not None:
            keep = cv2.bitwise_and(keep, cv2.bitwise_not(self.text_mask))
        return cv2.bitwise_and(grey, keep)

    def grey_crop(self, frame: np.ndarray) -> np.ndarray:
        """uint8 (h, w): the box's grey pixels with coloured overlays zeroed (for analysis)."""
        x0, y0, x1, y1 = self.box
        grey, bad = _grey_and_overlay(frame[y0:y1, x0:x1], self.colour_order)
        return grey if bad is None else cv2.bitwise_and(grey, cv2.bitwise_not(bad))

    def apply(self, frame: np.ndarray) -> np.ndarray:
        """uint8 (size, size): the de-identified, cropped, resized frame."""
        clean = self.clean(frame)
        return self.resize(clean)

    def resize(self, clean: np.ndarray) -> np.ndarray:
        h, w = clean.shape
        if h == w == self.side:
            square = clean
        else:
            square = np.zeros((self.side, self.side), np.uint8)
            ox, oy = self.offset
            square[oy:oy + h, ox:ox + w] = clean
        if self.side == self.size:
            return np.ascontiguousarray(square)
        return cv2.resize(square, (self.size, self.size), interpolation=cv2.INTER_CUBIC)

    def spacing(self, original_mm: float | None) -> float | None:
        """Spacing (mm) of the output grid given the original pixel spacing."""
        return None if original_mm is None else original_mm * self.side / self.size

    def preview(self, frame: np.ndarray, shape: tuple[int, int], geom: SectorGeometry) -> np.ndarray:
        """uint8 (H', W', 3) RGB: the de-identified grey frame, sector outlined, ≤480 px tall."""
        rows, cols = shape
        x0, y0, x1, y1 = self.box
        full: np.ndarray = np.zeros((rows, cols), np.uint8)
        full[y0:y1, x0:x1] = self.clean(frame)
        scale = min(1.0, PREVIEW_MAX_HEIGHT / rows)
        if scale < 1.0:
            full = cv2.resize(full, (max(1, round(cols * scale)), PREVIEW_MAX_HEIGHT), interpolation=cv2.INTER_AREA)
        rgb = cv2.cvtColor(full, cv2.COLOR_GRAY2RGB)
        _outline(rgb, geom, scale)
        return rgb


def _grey_and_overlay(img: np.ndarray, order: str | None) -> tuple[np.ndarray, np.ndarray | None]:
    """(grey uint8 (h, w), overlay mask uint8 (h, w) 255 = coloured pixel, or None if none).

    ``img``: uint8 (h, w) grey or (h, w, 3) in ``order``. Ultrasound is grey; a pixel whose
    chroma (Cb or Cr distance from neutral) exceeds CHROMA_THRESHOLD is an overlay, dilated to catch the chroma bleed
    of JPEG subsampling.
    """
    if img.ndim == 2:
        return img, None
    ycrcb = cv2.cvtColor(img, cv2.COLOR_BGR2YCrCb if order == "BGR" else cv2.COLOR_RGB2YCrCb)
    grey = cv2.extractChannel(ycrcb, 0)  # Y: the same weights as COLOR_*2GRAY
    lo, hi = 128 - CHROMA_THRESHOLD, 128 + CHROMA_THRESHOLD
    grey_px = cv2.inRange(ycrcb, (0, lo, lo), (255, hi, hi))
    if cv2.countNonZero(grey_px) == grey_px.size:
        return grey, None
    return grey, cv2.dilate(cv2.bitwise_not(grey_px), _DILATE)


def grey_without_overlays(img: np.ndarray, order: str | None) -> np.ndarray:
    """uint8 (H, W): grey with coloured overlay pixels set to 0 (for sector detection)."""
    grey, bad = _grey_and_overlay(img, order)
    return grey if bad is None else cv2.bitwise_and(grey, cv2.bitwise_not(bad))


def _outline(rgb: np.ndarray, geom: SectorGeometry, scale: float) -> None:
    """Draw the fan's edges and arc onto ``rgb`` in place."""
    ax, ay = geom.apex[0] * scale, geom.apex[1] * scale
    r = geom.radius * scale
    ang = np.radians(np.linspace(geom.angle_left, geom.angle_right, 64))
    arc = np.stack([ax + r * np.sin(ang), ay + r * np.cos(ang)], axis=1)
    pts = np.concatenate([[[ax, ay]], arc, [[ax, ay]]]).round().astype(np.int32)
    cv2.polylines(rgb, [pts], False, OUTLINE_RGB, 1, lineType=cv2.LINE_8)


def resample_indices(n_frames: int, fps: float, target_fps: float) -> np.ndarray:
    """int64 (N,): nearest-earlier source frame for each output frame at ``target_fps``."""
    if not (math.isfinite(target_fps) and target_fps > 0):
        raise ValueError("target_fps must be a positive number")
    duration = n_frames / fps
    n_out = max(1, int(round(duration * target_fps)))
    idx = np.floor(np.arange(n_out) * (fps / target_fps) + 1e-9).astype(np.int64)
    return np.minimum(idx, n_frames - 1)
