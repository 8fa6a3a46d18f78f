"""Evaluation statistics: AUROC, MAE, R², Bland–Altman, calibration, ROC, bootstrap CIs.

Small functions on 1-D numpy arrays, in the spirit of MONAI's metric helpers:

* inputs are validated and a bad shape raises :class:`MetricInputError` naming the shapes it got;
* a statistic that is undefined on its sample (AUROC with one class, R² with constant truth)
  is ``NaN``, never an exception, so one degenerate bootstrap resample cannot crash a table.

Bootstrap representation
------------------------
A set of ``B`` bootstrap resamples of ``n`` items is a **count matrix** ``counts`` of shape
``(B, n)`` (int32): ``counts[b, i]`` is how many times item ``i`` appears in resample ``b``.
This represents both resampling units exactly:

* ``resample_unit="study"`` — ``n`` studies drawn with replacement (every row sums to ``n``);
* ``resample_unit="patient"`` (default, :class:`echocmr.config.EvalConfig`) — the cluster
  bootstrap: patients are drawn with replacement and each draw brings *all* of that patient's
  studies, so a patient's studies are always in or out together. Row sums then vary around
  ``n``, which is why a fixed ``(B, n)`` *index* matrix cannot represent it;
  :func:`counts_to_indices` expands one row into the equivalent index vector.

Every bootstrap statistic is then a weighted statistic with weights ``counts[b]``, computed for
all ``B`` resamples at once. For AUROC the scores are sorted once; per resample, the positive and
negative weights at each distinct score are summed and

    AUC_b = Σ_k P_bk · (N_b,<k + ½ N_bk) / (ΣP_b · ΣN_b),

i.e. the Mann–Whitney statistic with ties counted one half, identical to
``sklearn.metrics.roc_auc_score`` on the expanded resample.

Confidence intervals are percentile intervals at exactly the requested level. Resamples whose
statistic is NaN (e.g. a single class) are dropped and counted; when more than half are NaN the
interval itself is NaN.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from .errors import EchoCMRError

# Points of the fixed false-positive-rate grid on which bootstrap ROC bands are computed.
ROC_GRID_POINTS = 101


class MetricInputError(EchoCMRError, ValueError):
    """Arrays given to a metric have the wrong shape, length or values."""


# --------------------------------------------------------------------------------------------
# Records and small containers


@dataclass(frozen=True)
class MetricRecord:
    """One cell of the results: a metric of one target in one view (or ``"global"``).

    ``ci_low``/``ci_high`` are NaN when no interval was computed or it is undefined; ``n`` is the
    number of studies the value was computed on (``None`` for the paper's published values);
    ``n_positive`` the studies with the finding (binary targets); ``note`` why a CI is missing.
    """

    target: str
    view: str
    metric: str
    value: float
    ci_low: float = math.nan
    ci_high: float = math.nan
    n: int | None = None
    n_positive: int | None = None
    note: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(data: dict) -> "MetricRecord":
        def num(x):
            return math.nan if x is None else float(x)

        return MetricRecord(
            target=str(data["target"]),
            view=str(data["view"]),
            metric=str(data["metric"]),
            value=num(data["value"]),
            ci_low=num(data["ci_low"]),
            ci_high=num(data["ci_high"]),
            n=None if data.get("n") is None else int(data["n"]),
            n_positive=None if data.get("n_positive") is None else int(data["n_positive"]),
            note=str(data.get("note") or ""),
        )


@dataclass(frozen=True)
class Interval:
    """A percentile bootstrap interval; ``n_nan`` resamples were undefined and dropped."""

    low: float
    high: float
    n_nan: int
    n_boot: int


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its bootstrap interval (``n`` items in the full sample)."""

    value: float
    low: float
    high: float
    n: int
    n_nan: int = 0


# --------------------------------------------------------------------------------------------
# Input validation


def _vector(name: str, x, dtype=np.float64) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise MetricInputError(f"{name} must be a 1-D array; got shape {arr.shape}")
    return arr.astype(dtype, copy=False)


def _pair(y_true, y_pred, names=("y_true", "y_score")) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(y_true)
    b = np.asarray(y_pred)
    if a.ndim != 1 or b.ndim != 1 or a.shape != b.shape:
        raise MetricInputError(
            f"{names[0]} and {names[1]} must be 1-D arrays of the same length; "
            f"got shapes {a.shape} and {b.shape}"
        )
    a = a.astype(np.float64, copy=False)
    b = b.astype(np.float64, copy=False)
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise MetricInputError(
            f"{names[0]} and {names[1]} must be finite (drop missing values first); "
            f"got {int((~np.isfinite(a)).sum())} and {int((~np.isfinite(b)).sum())} non-finite "
            f"of shape {a.shape}"
        )
    return a, b


def _binary(y: np.ndarray) -> np.ndarray:
    bad = (y != 0) & (y != 1)
    if bad.any():
        raise MetricInputError(
            f"y_true must contain only 0 and 1; got {int(bad.sum())} other values "
            f"in an array of shape {y.shape}"
        )
    return y.astype(bool)


def _items_by_boot(counts, n: int, integer: bool = False) -> np.ndarray:
    """Validate a ``(B, n)`` count matrix and return it as ``(n, B)``.

    Item-major is the fast layout here: gathering items copies whole rows and cumulative sums
    over items add rows. :func:`bootstrap_counts` returns a column-major matrix so this is free.
    """
    c = np.asarray(counts)
    if c.ndim != 2 or c.shape[1] != n:
        raise MetricInputError(f"counts must have shape (n_boot, {n}); got shape {c.shape}")
    if integer and not np.issubdtype(c.dtype, np.integer):
        raise MetricInputError(f"counts must be an integer matrix; got dtype {c.dtype}")
    return np.ascontiguousarray(c.T)


def _weighted_sums(values: np.ndarray, ct: np.ndarray) -> np.ndarray:
    """``values`` ``(k, n)`` times counts ``(n, B)`` → ``(k, B)`` in float64 (one cast, one matmul)."""
    return values @ ct.astype(np.float64)


def _cumsum_items(ct: np.ndarray, dtype=np.int64) -> np.ndarray:
    """Cumulative sums over items ``(n, B)`` → ``(n + 1, B)`` with a leading zero row.

    A row-by-row add is several times faster than ``np.cumsum(axis=0)`` for B ≫ n here.
    """
    out = np.empty((ct.shape[0] + 1, ct.shape[1]), dtype=dtype)
    out[0] = 0
    for i in range(ct.shape[0]):
        np.add(out[i], ct[i], out=out[i + 1])
    return out


# --------------------------------------------------------------------------------------------
# Resampling


def bootstrap_counts(groups: np.ndarray | None, n: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Multiplicity matrix of ``n_boot`` bootstrap resamples of ``n`` items.

    groups: ``None`` to resample items (studies) independently, or an ``(n,)`` array of cluster
        labels (patient ids, any hashable dtype) for the cluster bootstrap: clusters are drawn with
        replacement and every draw includes all the cluster's items.
    Returns ``(n_boot, n)`` int32 (column-major); row ``b`` gives how many times each item is in
    resample ``b``.
    """
    if n_boot < 1 or n < 1:
        raise MetricInputError(f"need n >= 1 and n_boot >= 1; got n={n}, n_boot={n_boot}")
    if groups is None:
        draws = rng.integers(0, n, size=(n_boot, n))
        n_units, codes = n, None
    else:
        g = np.asarray(groups)
        if g.shape != (n,):
            raise MetricInputError(f"groups must have shape ({n},); got shape {g.shape}")
        _, codes = np.unique(g, return_inverse=True)
        n_units = int(codes.max()) + 1
        draws = rng.integers(0, n_units, size=(n_boot, n_units))
    # One bincount over row-offset draws counts every row at once.
    offsets = (np.arange(n_boot, dtype=np.int64) * n_units)[:, None]
    unit_counts = np.bincount((draws + offsets).ravel(), minlength=n_boot * n_units)
    unit_counts = unit_counts.reshape(n_boot, n_units).astype(np.int32)
    item_major = unit_counts.T if codes is None else unit_counts.T[codes]
    # Column-major (B, n): each item's column is contiguous, the layout the statistics want.
    return np.ascontiguousarray(item_major).T


def counts_to_indices(counts_row: np.ndarray) -> np.ndarray:
    """Expand one row of a count matrix into item indices (length = row sum), e.g. for a slow
    reference computation with ``sklearn`` on ``y[idx]``."""
    row = np.asarray(counts_row)
    return np.repeat(np.arange(row.shape[0]), row)


def percentile_interval(samples: np.ndarray, level: float) -> Interval:
    """Percentile interval of bootstrap ``samples`` ``(B,)`` at ``level`` (e.g. 0.95).

    NaN samples are dropped and counted; if more than half are NaN the interval is NaN.
    """
    s = _vector("samples", samples)
    if not 0.0 < level < 1.0:
        raise MetricInputError(f"ci level must be in (0, 1); got {level!r}")
    nan = np.isnan(s)
    n_nan = int(nan.sum())
    if s.size == 0 or n_nan * 2 > s.size:
        return Interval(math.nan, math.nan, n_nan, int(s.size))
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(s[~nan], [alpha, 1.0 - alpha])
    return Interval(float(low), float(high), n_nan, int(s.size))


# --------------------------------------------------------------------------------------------
# AUROC


def auroc(y_true, y_score) -> float:
    """Area under the ROC curve by the Mann–Whitney rank statistic (average ranks for ties).

    y_true: ``(n,)`` 0/1; y_score: ``(n,)`` float. Equal to ``sklearn.metrics.roc_auc_score``;
    NaN (not an error) when only one class is present.
    """
    from scipy.stats import rankdata

    y, s = _pair(y_true, y_score)
    pos = _binary(y)
    n_pos = int(pos.sum())
    n_neg = pos.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = rankdata(s)  # average ranks for ties = ties count one half
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def bootstrap_auroc(y_true, y_score, counts) -> np.ndarray:
    """AUROC of every resample of a count matrix at once.

    y_true ``(n,)`` 0/1, y_score ``(n,)``, counts ``(B, n)`` integer → ``(B,)`` float64, NaN where a
    resample has a single class. Cost O(n log n + B·n), all in exact integer arithmetic.
    """
    y, s = _pair(y_true, y_score)
    pos = _binary(y)
    ct = _items_by_boot(counts, y.size, integer=True)
    neg_idx = np.flatnonzero(~pos)
    neg_idx = neg_idx[np.argsort(s[neg_idx], kind="stable")]
    s_neg = s[neg_idx]
    # For each positive: negatives strictly below it (lo) and at or below it (hi), in sorted order.
    lo = np.searchsorted(s_neg, s[pos], side="left")
    hi = np.searchsorted(s_neg, s[pos], side="right")
    wp = ct[pos]
    cum = _cumsum_items(ct[neg_idx])
    # 2·U = Σ_pos w_i (2·N_below + N_tied) = Σ_pos w_i (cum[lo] + cum[hi]): exact integers.
    u2 = np.einsum("ib,ib->b", wp, cum[lo] + cum[hi])
    den = 2 * wp.sum(axis=0, dtype=np.int64) * cum[-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, u2 / np.where(den > 0, den, 1), np.nan)


def auroc_ci(y_true, y_score, counts, level: float) -> Estimate:
    """AUROC with a percentile bootstrap interval over the resamples in ``counts`` ``(B, n)``."""
    value = auroc(y_true, y_score)
    iv = percentile_interval(bootstrap_auroc(y_true, y_score, counts), level)
    return Estimate(value, iv.low, iv.high, int(np.asarray(y_true).shape[0]), iv.n_nan)


# --------------------------------------------------------------------------------------------
# Continuous metrics (sklearn definitions) and their weighted bootstrap versions


def mae(y_true, y_pred) -> float:
    """Mean absolute error, ``(n,)`` × ``(n,)`` → float (NaN when n = 0)."""
    y, p = _pair(y_true, y_pred, ("y_true", "y_pred"))
    return float(np.mean(np.abs(p - y))) if y.size else math.nan


def r2(y_true, y_pred) -> float:
    """Coefficient of determination ``1 − SS_res / SS_tot`` (``sklearn.metrics.r2_score``).

    NaN when ``y_true`` is constant (sklearn's ``force_finite`` would report 0 or 1 instead; an
    undefined value must not be shown as a number).
    """
    y, p = _pair(y_true, y_pred, ("y_true", "y_pred"))
    if y.size < 2:
        return math.nan
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    if ss_tot == 0.0:
        return math.nan
    return 1.0 - float(np.sum((y - p) ** 2)) / ss_tot


def bootstrap_mean(x, counts) -> np.ndarray:
    """Weighted mean of ``x`` ``(n,)`` under each resample ``counts`` ``(B, n)`` → ``(B,)``."""
    v = _vector("x", x)
    tot, s = _weighted_sums(np.stack([np.ones_like(v), v]), _items_by_boot(counts, v.size))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(tot > 0, s / np.where(tot > 0, tot, 1.0), np.nan)


def bootstrap_mae(y_true, y_pred, counts) -> np.ndarray:
    """MAE of every resample: ``(n,)``, ``(n,)``, ``(B, n)`` → ``(B,)``."""
    y, p = _pair(y_true, y_pred, ("y_true", "y_pred"))
    return bootstrap_mean(np.abs(p - y), counts)


def bootstrap_r2(y_true, y_pred, counts) -> np.ndarray:
    """R² of every resample: ``(n,)``, ``(n,)``, ``(B, n)`` → ``(B,)`` (NaN where truth is constant)."""
    y, p = _pair(y_true, y_pred, ("y_true", "y_pred"))
    # Centre first so the weighted sum-of-squares identity does not lose precision.
    yc = y - y.mean()
    rows = np.stack([np.ones_like(y), yc, yc * yc, (y - p) ** 2])
    w, s1, s2, ss_res = _weighted_sums(rows, _items_by_boot(counts, y.size))
    with np.errstate(invalid="ignore", divide="ignore"):
        ss_tot = s2 - s1 * s1 / np.where(w > 0, w, 1.0)
        # Relative tolerance: a constant resample leaves only rounding error in ss_tot.
        ok = (w > 1) & (ss_tot > 1e-12 * np.maximum(s2, 1e-300))
        return np.where(ok, 1.0 - ss_res / np.where(ok, ss_tot, 1.0), np.nan)


def bootstrap_sd(x, counts, ddof: int = 1) -> np.ndarray:
    """Weighted standard deviation (frequency weights) of ``x`` per resample → ``(B,)``."""
    v = _vector("x", x)
    vc = v - v.mean()
    w, s1, s2 = _weighted_sums(np.stack([np.ones_like(v), vc, vc * vc]), _items_by_boot(counts, v.size))
    with np.errstate(invalid="ignore", divide="ignore"):
        var = (s2 - s1 * s1 / np.where(w > 0, w, 1.0)) / np.where(w > ddof, w - ddof, 1.0)
        return np.where(w > ddof, np.sqrt(np.maximum(var, 0.0)), np.nan)


def with_ci(value: float, samples: np.ndarray, level: float, n: int) -> Estimate:
    iv = percentile_interval(samples, level)
    return Estimate(float(value), iv.low, iv.high, int(n), iv.n_nan)


def mae_ci(y_true, y_pred, counts, level: float) -> Estimate:
    return with_ci(mae(y_true, y_pred), bootstrap_mae(y_true, y_pred, counts), level, len(y_true))


def r2_ci(y_true, y_pred, counts, level: float) -> Estimate:
    return with_ci(r2(y_true, y_pred), bootstrap_r2(y_true, y_pred, counts), level, len(y_true))


# --------------------------------------------------------------------------------------------
# Bland–Altman


@dataclass(frozen=True)
class BlandAltman:
    """Per-point ``mean`` = (pred + true)/2 and ``diff`` = pred − true ``(n,)``; ``bias`` is the
    mean difference and the limits of agreement are ``bias ± 1.96 · SD(diff)`` (ddof = 1)."""

    mean: np.ndarray
    diff: np.ndarray
    bias: float
    sd: float
    loa_low: float
    loa_high: float

    def to_dict(self) -> dict:
        return {
            "mean": self.mean.tolist(),
            "diff": self.diff.tolist(),
            "bias": self.bias,
            "loa_low": self.loa_low,
            "loa_high": self.loa_high,
        }


LOA_Z = 1.96


def bland_altman(y_true, y_pred) -> BlandAltman:
    y, p = _pair(y_true, y_pred, ("y_true", "y_pred"))
    diff = p - y
    mean = (p + y) / 2.0
    bias = float(diff.mean()) if diff.size else math.nan
    sd = float(diff.std(ddof=1)) if diff.size > 1 else math.nan
    return BlandAltman(mean, diff, bias, sd, bias - LOA_Z * sd, bias + LOA_Z * sd)


def bootstrap_bland_altman(y_true, y_pred, counts) -> dict[str, np.ndarray]:
    """Bias and limits of agreement per resample: ``{"bias", "loa_low", "loa_high"}`` each ``(B,)``."""
    y, p = _pair(y_true, y_pred, ("y_true", "y_pred"))
    diff = p - y
    bias = bootstrap_mean(diff, counts)
    sd = bootstrap_sd(diff, counts)
    return {"bias": bias, "loa_low": bias - LOA_Z * sd, "loa_high": bias + LOA_Z * sd}


# --------------------------------------------------------------------------------------------
# Probabilistic predictions: Brier, calibration


def brier(y_true, y_prob) -> float:
    """Brier score: mean squared difference between probability and 0/1 outcome."""
    y, p = _pair(y_true, y_prob, ("y_true", "y_prob"))
    _binary(y)
    return float(np.mean((p - y) ** 2)) if y.size else math.nan


def bootstrap_brier(y_true, y_prob, counts) -> np.ndarray:
    y, p = _pair(y_true, y_prob, ("y_true", "y_prob"))
    _binary(y)
    return bootstrap_mean((p - y) ** 2, counts)


def calibration_curve(y_true, y_prob, n_bins: int = 10) -> dict[str, np.ndarray]:
    """Reliability curve on quantile bins of the predicted probability.

    Returns ``{"prob_pred", "prob_true", "count"}``, one entry per non-empty bin (bins whose
    quantile edges coincide are merged): mean predicted probability, observed fraction positive
    and number of items.
    """
    y, p = _pair(y_true, y_prob, ("y_true", "y_prob"))
    _binary(y)
    if y.size == 0:
        return {"prob_pred": np.array([]), "prob_true": np.array([]), "count": np.array([], dtype=int)}
    edges = np.unique(np.quantile(p, np.linspace(0.0, 1.0, n_bins + 1)))
    # Inner edges only; right-closed bins so the maximum lands in the last bin.
    bins = np.searchsorted(edges[1:-1], p, side="left")
    count = np.bincount(bins, minlength=edges.size - 1)
    keep = count > 0
    sum_p = np.bincount(bins, weights=p, minlength=edges.size - 1)
    sum_y = np.bincount(bins, weights=y, minlength=edges.size - 1)
    return {
        "prob_pred": sum_p[keep] / count[keep],
        "prob_true": sum_y[keep] / count[keep],
        "count": count[keep].astype(int),
    }


# --------------------------------------------------------------------------------------------
# ROC curve, band, operating points


def roc_curve(y_true, y_score) -> dict[str, np.ndarray]:
    """``sklearn.metrics.roc_curve`` (``drop_intermediate=True``): ``{"fpr", "tpr", "thresholds"}``.

    The first threshold is ``+inf`` (no item called positive). Empty arrays for a single class.
    """
    from sklearn.metrics import roc_curve as _sk_roc_curve

    y, s = _pair(y_true, y_score)
    pos = _binary(y)
    if pos.all() or not pos.any():
        empty = np.array([], dtype=np.float64)
        return {"fpr": empty, "tpr": empty, "thresholds": empty}
    fpr, tpr, thr = _sk_roc_curve(pos.astype(int), s)
    return {"fpr": fpr, "tpr": tpr, "thresholds": thr}


def _roc_on_grid(pos: np.ndarray, s: np.ndarray, ct: np.ndarray, n_grid: int) -> np.ndarray:
    """TPR of each resample's ROC curve at FPR = i / (n_grid − 1), i = 0 … n_grid − 1.

    pos ``(n,)`` bool, s ``(n,)``, ct ``(n, B)`` integer counts, every resample with both classes.
    Returns ``(B, n_grid)`` float64.

    The curve is the piecewise-linear ROC through the vertices after each run of tied scores
    (what sklearn's ``roc_curve`` points draw). For grid value ``g`` we interpolate between the
    last vertex with FPR <= g and the next, so a vertical segment at exactly ``g`` counts at its
    top. Vertex FPRs are kept as integer negative counts so "FPR <= g" is decided exactly.
    """
    order = np.argsort(-s, kind="stable")
    s_o = s[order]
    w = ct[order]
    # int32 is ample for cumulative counts (≤ a resample's size) and halves memory traffic.
    cp = _cumsum_items(np.where(pos[order][:, None], w, 0), np.int32)
    cq = _cumsum_items(w, np.int32)
    cq -= cp
    # One vertex after each run of tied scores, plus the origin (row 0).
    tie = s_o[1:] == s_o[:-1]
    if tie.any():
        ends = np.r_[0, 1 + np.flatnonzero(np.r_[~tie, True])]
        cp, cq = cp[ends], cq[ends]
    m, b = cq.shape
    steps = n_grid - 1
    n_pos, n_neg = cp[-1].astype(np.float64), cq[-1].astype(np.float64)
    # First grid index at or above each vertex: exact, since (cq·steps)/N is integral or at least
    # 1/N away from an integer, far beyond rounding error.
    first = np.ceil((cq * steps) / n_neg).astype(np.int64)
    # Vertices at or below grid point i, per resample: cumulative histogram of ``first``.
    hist = np.bincount((first + (np.arange(b) * n_grid)).ravel(), minlength=b * n_grid)
    j = np.cumsum(hist.reshape(b, n_grid), axis=1) - 1
    j1 = np.minimum(j + 1, m - 1)
    col = np.arange(b)[:, None]
    at0, at1 = j * b + col, j1 * b + col
    cq_flat, cp_flat = cq.ravel(), cp.ravel()
    x0 = cq_flat[at0] / n_neg[:, None]
    x1 = cq_flat[at1] / n_neg[:, None]
    y0 = cp_flat[at0] / n_pos[:, None]
    y1 = cp_flat[at1] / n_pos[:, None]
    grid = np.arange(n_grid) / steps
    dx = x1 - x0
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.where(dx > 0, (grid[None, :] - x0) / np.where(dx > 0, dx, 1.0), 0.0)
    return y0 + np.clip(t, 0.0, 1.0) * (y1 - y0)


def roc_grid(n_grid: int = ROC_GRID_POINTS) -> np.ndarray:
    """The fixed FPR grid of bootstrap ROC bands: ``i / (n_grid − 1)``."""
    return np.arange(n_grid) / (n_grid - 1)


def bootstrap_roc_curves(y_true, y_score, counts, n_grid: int = ROC_GRID_POINTS):
    """TPR of every resample on the fixed FPR grid :func:`roc_grid`.

    y_true ``(n,)`` 0/1, y_score ``(n,)``, counts ``(B, n)`` integer. Returns
    ``(grid (G,), tpr (B_ok, G), n_nan)``: resamples with a single class are dropped (``n_nan``).
    """
    y, s = _pair(y_true, y_score)
    pos = _binary(y)
    if n_grid < 2:
        raise MetricInputError(f"n_grid must be >= 2; got {n_grid}")
    ct = _items_by_boot(counts, y.size, integer=True)
    ok = (ct[pos].sum(axis=0) > 0) & (ct[~pos].sum(axis=0) > 0)
    if not ok.all():
        ct = ct[:, ok]
    grid = roc_grid(n_grid)
    if ct.shape[1] == 0:
        return grid, np.empty((0, n_grid)), int((~ok).sum())
    return grid, _roc_on_grid(pos, s, ct, n_grid), int((~ok).sum())


def bootstrap_roc_band(y_true, y_score, counts, level: float, n_grid: int = ROC_GRID_POINTS) -> dict:
    """Pointwise percentile band of the ROC curve over bootstrap resamples.

    Returns ``{"fpr": grid (G,), "tpr_low": (G,), "tpr_high": (G,), "n_nan": int}``; the band is
    NaN when more than half the resamples have a single class.
    """
    if not 0.0 < level < 1.0:
        raise MetricInputError(f"ci level must be in (0, 1); got {level!r}")
    grid, curves, n_nan = bootstrap_roc_curves(y_true, y_score, counts, n_grid)
    if n_nan * 2 > n_nan + curves.shape[0]:
        nan = np.full(n_grid, np.nan)
        return {"fpr": grid, "tpr_low": nan, "tpr_high": nan.copy(), "n_nan": n_nan}
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(curves, [alpha, 1.0 - alpha], axis=0)
    return {"fpr": grid, "tpr_low": low, "tpr_high": high, "n_nan": n_nan}


def sensitivity_specificity(y_true, y_score, threshold: float) -> tuple[float, float]:
    """Sensitivity and specificity calling ``score >= threshold`` positive (the one convention,
    :func:`echocmr.calls.called_positive`); NaN for a class that is absent."""
    from .calls import called_positive

    y, s = _pair(y_true, y_score)
    pos = _binary(y)
    called = called_positive(s, threshold)
    sens = float(called[pos].mean()) if pos.any() else math.nan
    spec = float((~called[~pos]).mean()) if (~pos).any() else math.nan
    return sens, spec


def youden_threshold(y_true, y_score) -> float:
    """Threshold maximising Youden's J = sensitivity + specificity − 1 (NaN for a single class).

    Ties in J go to the highest threshold (the first on sklearn's curve).
    """
    roc = roc_curve(y_true, y_score)
    if roc["fpr"].size == 0:
        return math.nan
    j = roc["tpr"] - roc["fpr"]
    # Index 0 is the +inf threshold (nothing positive, J = 0); never report it.
    k = 1 + int(np.argmax(j[1:]))
    return float(roc["thresholds"][k])
