"""Find the ultrasound fan and build the mask that zeroes everything outside it.

Two sources: the header's SequenceOfUltrasoundRegions (the 2-D region's box, with the fan
inscribed in it) or the pixels (what changes over time, or for a still what is bright, reduced
to its largest connected component and fitted with a fan: apex, two straight edges, an arc).
No plausible fan → ``InputError("no_sector")``: we never pass unmasked pixels through.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ..clip import SectorGeometry
from ..errors import InputError
from .gate import PARSE_ERRORS, quiet_pydicom

MOTION_THRESHOLD = 4  # grey levels of max−min over time that count as "moving" (static text: 0)
STILL_THRESHOLD = 10  # grey level above which a still's pixel counts as image content
MIN_AREA_FRACTION = 0.03  # a fan smaller than this share of the frame is implausible
MIN_IOU = 0.6  # fitted fan vs. detected region


def _region_value(region, keyword: str, default=None):
    with quiet_pydicom():
        value = region.get(keyword, default)
    return default if value is None or value == "" else value


def sector_from_regions(ds, rows: int, cols: int) -> SectorGeometry | None:
    """The fan inscribed in the largest 2-D ultrasound region, or None when there is none usable.

    Boxes slightly outside the frame (≤10 %) are clamped; boxes that disagree more are not
    trusted (we fall back to the pixels rather than guess a rescaling).
    """
    try:
        with quiet_pydicom():
            regions = list(ds.get("SequenceOfUltrasoundRegions", []) or [])
        boxes = []
        for reg in regions:
            if int(_region_value(reg, "RegionSpatialFormat", 0)) != 1:
                continue
            x0, y0 = int(_region_value(reg, "RegionLocationMinX0")), int(_region_value(reg, "RegionLocationMinY0"))
            x1, y1 = int(_region_value(reg, "RegionLocationMaxX1")) + 1, int(_region_value(reg, "RegionLocationMaxY1")) + 1
            boxes.append(((x1 - x0) * (y1 - y0), (x0, y0, x1, y1), reg))
    except (*PARSE_ERRORS,):
        return None
    if not boxes:
        return None
    _, (x0, y0, x1, y1), reg = max(boxes, key=lambda b: b[0])
    if x0 < -0.1 * cols or y0 < -0.1 * rows or x1 > 1.1 * cols or y1 > 1.1 * rows:
        return None
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, cols), min(y1, rows)
    if x1 - x0 < 16 or y1 - y0 < 16:
        return None
    return _inscribed_fan((x0, y0, x1, y1), reg)


def _inscribed_fan(box: tuple[int, int, int, int], reg) -> SectorGeometry:
    """Fan with its apex at the region's reference pixel (or top centre), touching the box."""
    x0, y0, x1, y1 = box
    ax, ay = (x0 + x1) / 2.0, float(y0)
    try:
        rx, ry = _region_value(reg, "ReferencePixelX0"), _region_value(reg, "ReferencePixelY0")
        if rx is not None and ry is not None:
            cx, cy = x0 + float(rx), y0 + float(ry)
            # Sector probes put the reference pixel at the (possibly virtual) apex; elsewhere ignore it.
            if x0 < cx < x1 and y0 - (y1 - y0) <= cy <= y0 + 0.1 * (y1 - y0):
                ax, ay = cx, cy
    except PARSE_ERRORS:
        pass
    radius = float(y1 - ay)
    left = -math.degrees(math.asin(min(1.0, (ax - x0) / radius)))
    right = math.degrees(math.asin(min(1.0, (x1 - ax) / radius)))
    return SectorGeometry(box, (ax, ay), radius, left, right, "regions")


def region_spacing_mm(ds) -> float | None:
    """Physical size of an original pixel in mm (regions' PhysicalDeltaX/Y in cm), if known."""
    try:
        with quiet_pydicom():
            for reg in ds.get("SequenceOfUltrasoundRegions", []) or []:
                if int(_region_value(reg, "RegionSpatialFormat", 0)) != 1:
                    continue
                if int(_region_value(reg, "PhysicalUnitsXDirection", 0)) != 3:
                    continue
                dx = float(_region_value(reg, "PhysicalDeltaX", 0.0))
                dy = float(_region_value(reg, "PhysicalDeltaY", dx))
                if 0 < dx < 1 and 0 < dy < 1:
                    return 10.0 * (abs(dx) + abs(dy)) / 2.0
    except PARSE_ERRORS:
        return None
    return None


def fan_mask(geom: SectorGeometry, box: tuple[int, int, int, int]) -> np.ndarray:
    """bool (y1-y0, x1-x0): the fan's pixels inside ``box`` = (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = box
    ys = np.arange(y0, y1, dtype=np.float32)[:, None] - np.float32(geom.apex[1])
    xs = np.arange(x0, x1, dtype=np.float32)[None, :] - np.float32(geom.apex[0])
    ang = np.degrees(np.arctan2(xs, ys))
    inside = (xs * xs + ys * ys <= np.float32(geom.radius) ** 2) & (ys >= 0)
    return inside & (ang >= geom.angle_left) & (ang <= geom.angle_right)


def fan_bbox(geom: SectorGeometry, rows: int, cols: int) -> tuple[int, int, int, int]:
    """Half-open bbox (x0, y0, x1, y1) of the fan clipped to the frame."""
    ax, ay = geom.apex
    r = geom.radius
    angles = np.radians(np.concatenate([[geom.angle_left, geom.angle_right], np.linspace(geom.angle_left, geom.angle_right, 181)]))
    xs = np.concatenate([[ax], ax + r * np.sin(angles)])
    ys = np.concatenate([[ay], ay + r * np.cos(angles)])
    x0, x1 = max(0, int(math.floor(xs.min()))), min(cols, int(math.ceil(xs.max())) + 1)
    y0, y1 = max(0, int(math.floor(max(ay, ys.min())))), min(rows, int(math.ceil(ys.max())) + 1)
    if x1 - x0 < 8 or y1 - y0 < 8:
        raise InputError("no_sector", "the ultrasound sector lies outside the frame")
    return x0, y0, x1, y1


class MotionStats:
    """Running per-pixel min and max of grey frames (uint8 (H, W) each): O(H·W) memory."""

    def __init__(self) -> None:
        self.lo: np.ndarray | None = None
        self.hi: np.ndarray | None = None
        self.count = 0
        self.first: np.ndarray | None = None

    def add(self, grey: np.ndarray) -> None:
        if self.lo is None or self.hi is None:
            self.lo, self.hi, self.first = grey.copy(), grey.copy(), grey.copy()
        else:
            cv2.min(self.lo, grey, dst=self.lo)
            cv2.max(self.hi, grey, dst=self.hi)
        self.count += 1


def sector_from_pixels(stats: MotionStats) -> SectorGeometry:
    """Fit a fan to what moves (≥2 frames) or to what is bright (a still)."""
    if stats.lo is None or stats.hi is None or stats.first is None:
        raise InputError("no_sector", "no frames to locate the sector in")
    if stats.count >= 2:
        rng = cv2.subtract(stats.hi, stats.lo)
        moving = rng[rng > MOTION_THRESHOLD]
        # Relative to how much the sector itself moves: JPEG ringing just outside the fan
        # flickers too, but far less than speckle does.
        thr = max(MOTION_THRESHOLD, 0.2 * float(np.median(moving))) if moving.size else MOTION_THRESHOLD
        raw: np.ndarray = rng > thr
    else:
        raw = np.asarray(stats.first > STILL_THRESHOLD)
    mask = _largest_blob(raw)
    rows, cols = mask.shape
    if mask.sum() < MIN_AREA_FRACTION * rows * cols:
        raise InputError("no_sector", "no plausible ultrasound sector: the moving region is too small")
    geom = _fit_fan(mask)
    box = fan_bbox(geom, rows, cols)
    fitted = np.zeros_like(mask)
    fitted[box[1]:box[3], box[0]:box[2]] = fan_mask(geom, box)
    inter, union = np.count_nonzero(fitted & mask), np.count_nonzero(fitted | mask)
    if union == 0 or inter / union < MIN_IOU:
        raise InputError("no_sector", "no plausible ultrasound sector: the region is not fan-shaped")
    return SectorGeometry(box, geom.apex, geom.radius, geom.angle_left, geom.angle_right, "pixels")


def _largest_blob(raw: np.ndarray) -> np.ndarray:
    """bool (H, W): convex hull of the largest 8-connected component after closing (joins
    speckle) and opening (drops text strokes, thin ECG lines)."""
    rows, cols = raw.shape
    k = max(3, min(rows, cols) // 80) | 1
    m: np.ndarray = raw.astype(np.uint8)
    m = cv2.morphologyEx(m, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    m = cv2.morphologyEx(m, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1)))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    if n <= 1:
        raise InputError("no_sector", "no plausible ultrasound sector: nothing moves in the frames")
    blob = (labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))).astype(np.uint8)
    # A fan is convex: its hull fills static dark cavities (blood pools) open to the edge.
    contours, _ = cv2.findContours(blob, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    hull = cv2.convexHull(np.concatenate(contours))
    filled = np.zeros_like(blob)
    cv2.fillPoly(filled, [hull], 1)
    return filled.astype(bool)


def _robust_line(y: np.ndarray, x: np.ndarray) -> tuple[float, float]:
    """x = a*y + b by least squares, refitted without residual outliers (> 3 MAD)."""
    a, b = np.polyfit(y, x, 1)
    res = x - (a * y + b)
    mad = np.median(np.abs(res - np.median(res))) + 0.5
    keep = np.abs(res) <= 3 * mad
    if keep.sum() >= 4:
        a, b = np.polyfit(y[keep], x[keep], 1)
    return float(a), float(b)


def _fit_fan(mask: np.ndarray) -> SectorGeometry:
    """Apex, edge angles and radius of the fan best describing ``mask`` (bool (H, W))."""
    rows, cols = mask.shape
    ys = np.flatnonzero(mask.any(axis=1))
    y0, y1 = int(ys[0]), int(ys[-1]) + 1
    h = y1 - y0
    sub = mask[y0:y1]
    present = sub.any(axis=1)
    xl = np.argmax(sub, axis=1)
    xr = cols - np.argmax(sub[:, ::-1], axis=1)  # exclusive right edge
    yy = np.arange(y0, y1)
    # The straight edges span at least the upper ~45 % of any fan up to ±60°; rows where the
    # fan is cut by the frame's side say nothing about the edge.
    band = (yy >= y0 + 0.03 * h) & (yy <= y0 + 0.45 * h) & present
    left_ok, right_ok = band & (xl > 0), band & (xr < cols)
    if left_ok.sum() < 6 or right_ok.sum() < 6 or h < 24:
        raise InputError("no_sector", "no plausible ultrasound sector: too few rows to fit a fan")
    al, bl = _robust_line(yy[left_ok].astype(float), xl[left_ok].astype(float))
    ar, br = _robust_line(yy[right_ok].astype(float), xr[right_ok].astype(float))
    if ar - al < math.tan(math.radians(7.5)):
        raise InputError("no_sector", "no plausible ultrasound sector: edges do not diverge")
    ay = (bl - br) / (ar - al)
    ax = al * ay + bl
    left, right = math.degrees(math.atan(al)), math.degrees(math.atan(ar))
    if ay > y0 + 0.15 * h or not (15.0 <= right - left <= 170.0) or ay < y0 - 3 * h:
        raise InputError("no_sector", "no plausible ultrasound sector: edges do not meet at an apex")
    my, mx = np.nonzero(mask)
    radius = float(np.percentile(np.hypot(mx - ax, my - ay), 99.5))
    if radius < 16:
        raise InputError("no_sector", "no plausible ultrasound sector: the fan is too small")
    return SectorGeometry((0, 0, cols, rows), (float(ax), float(ay)), radius, left, right, "pixels")
