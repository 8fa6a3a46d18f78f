"""DeLong's test for the difference of two correlated AUROCs on the same items.

DeLong, DeLong & Clarke-Pearson (1988), with the O(n log n) midrank computation of Sun & Xu (2014,
IEEE Signal Processing Letters 21:1389). Each item (study) is one independent unit here; the
patient-clustered uncertainty is in :mod:`.compare`'s paired bootstrap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm, rankdata

from . import AnalysisError


@dataclass(frozen=True)
class DeLongResult:
    """AUROCs of two scores, their difference ``auc_a - auc_b``, its DeLong standard error,
    z statistic and two-sided p-value (NaN when the variance is zero or a class is empty)."""

    auc_a: float
    auc_b: float
    delta: float
    se: float
    z: float
    p_value: float
    n_positive: int
    n_negative: int


def _structural_components(pos: np.ndarray, neg: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """AUROC and the placement values V10 (per positive) and V01 (per negative) by midranks."""
    m, n = pos.size, neg.size
    rank_pos = rankdata(pos)
    rank_neg = rankdata(neg)
    rank_all = rankdata(np.concatenate([pos, neg]))
    v10 = (rank_all[:m] - rank_pos) / n  # share of negatives below each positive (ties ½)
    v01 = 1.0 - (rank_all[m:] - rank_neg) / m  # share of positives above each negative
    auc = float(v10.mean())
    return auc, v10, v01


def delong_covariance(y_true, scores) -> tuple[np.ndarray, np.ndarray, int, int]:
    """AUROCs ``(k,)`` and their DeLong covariance ``(k, k)`` for ``scores`` ``(k, n)``."""
    y = np.asarray(y_true, dtype=float)
    s = np.atleast_2d(np.asarray(scores, dtype=float))
    if y.ndim != 1 or s.shape[1] != y.size:
        raise AnalysisError("bad_shape", f"scores must be (k, {y.size}); got {s.shape}")
    if not np.isin(y, (0.0, 1.0)).all() or not np.isfinite(s).all():
        raise AnalysisError("bad_values", "y_true must be 0/1 and scores finite")
    pos, neg = y == 1, y == 0
    m, n = int(pos.sum()), int(neg.sum())
    if m < 2 or n < 2:
        return np.full(s.shape[0], math.nan), np.full((s.shape[0],) * 2, math.nan), m, n
    parts = [_structural_components(row[pos], row[neg]) for row in s]
    aucs = np.array([p[0] for p in parts])
    v10 = np.array([p[1] for p in parts])
    v01 = np.array([p[2] for p in parts])
    cov = np.atleast_2d(np.cov(v10)) / m + np.atleast_2d(np.cov(v01)) / n
    return aucs, cov, m, n


def delong_test(y_true, score_a, score_b) -> DeLongResult:
    """Two-sided DeLong test of AUROC(score_a) = AUROC(score_b) on the same items."""
    aucs, cov, m, n = delong_covariance(y_true, np.vstack([score_a, score_b]))
    delta = float(aucs[0] - aucs[1])
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]) if np.isfinite(cov).all() else math.nan
    se = math.sqrt(var) if var > 0 else math.nan
    z = delta / se if se > 0 else math.nan
    p = float(2 * norm.sf(abs(z))) if math.isfinite(z) else math.nan
    return DeLongResult(float(aucs[0]), float(aucs[1]), delta, se, z, p, m, n)


def delong_single(y_true, score) -> tuple[float, float]:
    """AUROC and its DeLong standard error for one score."""
    aucs, cov, _, _ = delong_covariance(y_true, np.atleast_2d(score))
    return float(aucs[0]), math.sqrt(cov[0, 0]) if cov[0, 0] > 0 else math.nan
