"""Image statistics of an ingested 112×112 echo clip, to compare synthetic with real echo.

Everything here works on what the pipeline sees (``Clip.frames`` after ``echocmr.ingest``) and
on masks in that same 112×112 grid; ``bench/realism.py`` prints them side by side.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..clip import Clip
from ..ingest.resize import CropPlan

PERCENTILES = (5, 25, 50, 75, 95)
BRIGHT = 120  # grey level above which a sector pixel counts as bright
RESIDUAL_SIGMA = 5.0  # px: anatomy removed by subtracting a blur this wide, leaving speckle


@dataclass(frozen=True)
class ClipStats:
    """Statistics of one clip; per-frame arrays let a single real cine give a range."""

    percentiles: np.ndarray  # float (T, 5) grey levels inside the sector
    mean: np.ndarray  # float (T,)
    bright: np.ndarray  # float (T,) fraction of sector pixels above BRIGHT
    contrast: np.ndarray  # float (T,) mean myocardium / mean blood (nan without regions)
    corr_lateral: np.ndarray  # float (T,) speckle FWHM across (x), px
    corr_axial: np.ndarray  # float (T,) speckle FWHM along (y), px
    temporal: np.ndarray  # float (T-1,) correlation of speckle residuals of consecutive frames

    def summary(self) -> dict[str, float]:
        """Clip-level medians keyed by statistic name."""
        out = {f"p{p}": float(np.median(self.percentiles[:, i])) for i, p in enumerate(PERCENTILES)}
        out.update(mean=float(np.median(self.mean)), bright_pct=100 * float(np.median(self.bright)),
                   contrast=float(np.nanmedian(self.contrast)) if np.isfinite(self.contrast).any() else np.nan,
                   corr_lateral=float(np.median(self.corr_lateral)), corr_axial=float(np.median(self.corr_axial)),
                   temporal_corr=float(np.median(self.temporal)) if len(self.temporal) else np.nan)
        return out

    def per_frame(self) -> dict[str, np.ndarray]:
        """Per-frame values keyed like ``summary`` (the real cine's range comes from these)."""
        out = {f"p{p}": self.percentiles[:, i] for i, p in enumerate(PERCENTILES)}
        out.update(mean=self.mean, bright_pct=100 * self.bright, contrast=self.contrast,
                   corr_lateral=self.corr_lateral, corr_axial=self.corr_axial, temporal_corr=self.temporal)
        return out


def sector_mask_112(clip: Clip, erode_px: int = 2) -> np.ndarray:
    """bool (112, 112): the fan in the ingested grid, eroded so resampled edges do not count."""
    plan = CropPlan.build(clip.sector, clip.frames.shape[1], None)
    mask = plan.resize(plan.mask) > 127
    if erode_px:
        mask = cv2.erode(mask.astype(np.uint8), np.ones((2 * erode_px + 1,) * 2, np.uint8)) > 0
    return mask


def labels_to_112(labels: np.ndarray, clip: Clip) -> np.ndarray:
    """uint8 (T, 112, 112): full-size label frames mapped like the pixels were (nearest)."""
    plan = CropPlan.build(clip.sector, clip.frames.shape[1], None)
    x0, y0, x1, y1 = plan.box
    ox, oy = plan.offset
    out = np.zeros((len(labels), plan.size, plan.size), np.uint8)
    for t, lab in enumerate(labels):
        square = np.zeros((plan.side, plan.side), np.uint8)
        square[oy:oy + y1 - y0, ox:ox + x1 - x0] = lab[y0:y1, x0:x1] * (plan.mask > 0)
        out[t] = cv2.resize(square, (plan.size, plan.size), interpolation=cv2.INTER_NEAREST)
    return out


def _fwhm(profile: np.ndarray) -> float:
    """Full width at half maximum (px) of a symmetric autocorrelation profile peaking at index 0."""
    below = np.nonzero(profile < 0.5)[0]
    if len(below) == 0:
        return 2.0 * len(profile)
    k = int(below[0])
    lag = k - 1 + (profile[k - 1] - 0.5) / max(profile[k - 1] - profile[k], 1e-6)
    return 2.0 * float(lag)


def _residual(frame: np.ndarray) -> np.ndarray:
    f = frame.astype(np.float32)
    return f - cv2.GaussianBlur(f, (0, 0), RESIDUAL_SIGMA)


def speckle_widths(frame: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """(lateral, axial) FWHM in px of the speckle residual's autocorrelation inside ``mask``."""
    res = _residual(frame) * mask
    m = mask.astype(np.float32)
    fr, fm = np.fft.rfft2(res, s=(224, 224)), np.fft.rfft2(m, s=(224, 224))
    acf = np.fft.irfft2(fr * np.conj(fr), s=(224, 224))
    overlap = np.fft.irfft2(fm * np.conj(fm), s=(224, 224))
    acf = acf / np.maximum(overlap, 1.0)
    acf /= max(acf[0, 0], 1e-9)
    return _fwhm(acf[0, :12]), _fwhm(acf[:12, 0])


def clip_stats(frames: np.ndarray, mask: np.ndarray, myo: np.ndarray | None = None,
               blood: np.ndarray | None = None) -> ClipStats:
    """Statistics of uint8 ``frames`` (T, 112, 112) inside bool ``mask`` (112, 112).

    ``myo`` / ``blood``: bool (T, 112, 112) or (112, 112) regions for the contrast (optional).
    """
    t_count = len(frames)
    inside = frames[:, mask].astype(np.float32)  # (T, n)
    pct = np.percentile(inside, PERCENTILES, axis=1).T
    contrast = np.full(t_count, np.nan)
    if myo is not None and blood is not None:
        myo_t = np.broadcast_to(myo & mask, frames.shape)
        blood_t = np.broadcast_to(blood & mask, frames.shape)
        for t in range(t_count):
            if myo_t[t].sum() >= 5 and blood_t[t].sum() >= 5:
                contrast[t] = frames[t][myo_t[t]].mean() / max(frames[t][blood_t[t]].mean(), 1.0)
    widths = np.array([speckle_widths(f, mask) for f in frames])
    res = np.stack([_residual(f)[mask] for f in frames])
    res -= res.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(res, axis=1) + 1e-6
    temporal = (res[:-1] * res[1:]).sum(axis=1) / (norms[:-1] * norms[1:])
    return ClipStats(pct, inside.mean(axis=1), (inside > BRIGHT).mean(axis=1), contrast,
                     widths[:, 0], widths[:, 1], temporal)
