"""Evaluation statistics on one sample: AUROC, MAE, R², Bland–Altman, Brier, calibration, ROC.

Small functions on 1-D numpy arrays, in the spirit of MONAI's metric helpers:

* inputs are validated and a bad shape raises :class:`MetricInputError` naming the shapes it got;
* a statistic that is undefined on its sample (AUROC with one class, R² with constant truth)
  is ``NaN``, never an exception, so one degenerate bootstrap resample cannot crash a table.

Their bootstrap versions (every resample at once) are in :mod:`echocmr.bootstrap`. A binary
call is positive when ``score >= threshold`` (:func:`is_positive`), everywhere in the project.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import ArrayLike

from .errors import EchoCMRError


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


def as_vector(name: str, x: ArrayLike, dtype=np.float64) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise MetricInputError(f"{name} must be a 1-D array; got shape {arr.shape}")
    return arr.astype(dtype, copy=False)


def as_pair(y_true: ArrayLike, y_pred: ArrayLike, names=("y_true", "y_score")) -> tuple[np.ndarray, np.ndarray]:
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


def as_binary(y: np.ndarray) -> np.ndarray:
    bad = (y != 0) & (y != 1)
    if bad.any():
        raise MetricInputError(
            f"y_true must contain only 0 and 1; got {int(bad.sum())} other values "
            f"in an array of shape {y.shape}"
        )
    return y.astype(bool)


# --------------------------------------------------------------------------------------------
# AUROC


def auroc(y_true: ArrayLike, y_score: ArrayLike) -> float:
    """Area under the ROC curve by the Mann–Whitney rank statistic (average ranks for ties).

    y_true: ``(n,)`` 0/1; y_score: ``(n,)`` float. Equal to ``sklearn.metrics.roc_auc_score``;
    NaN (not an error) when only one class is present.
    """
    from scipy.stats import rankdata

    y, s = as_pair(y_true, y_score)
    pos = as_binary(y)
    n_pos = int(pos.sum())
    n_neg = pos.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = rankdata(s)  # average ranks for ties = ties count one half
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


# --------------------------------------------------------------------------------------------
# Continuous metrics (sklearn definitions) and their weighted bootstrap versions


def mae(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Mean absolute error, ``(n,)`` × ``(n,)`` → float (NaN when n = 0)."""
    y, p = as_pair(y_true, y_pred, ("y_true", "y_pred"))
    return float(np.mean(np.abs(p - y))) if y.size else math.nan


def r2(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Coefficient of determination ``1 − SS_res / SS_tot`` (``sklearn.metrics.r2_score``).

    NaN when ``y_true`` is constant (sklearn's ``force_finite`` would report 0 or 1 instead; an
    undefined value must not be shown as a number).
    """
    y, p = as_pair(y_true, y_pred, ("y_true", "y_pred"))
    if y.size < 2:
        return math.nan
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    if ss_tot == 0.0:
        return math.nan
    return 1.0 - float(np.sum((y - p) ** 2)) / ss_tot


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


def bland_altman(y_true: ArrayLike, y_pred: ArrayLike) -> BlandAltman:
    y, p = as_pair(y_true, y_pred, ("y_true", "y_pred"))
    diff = p - y
    mean = (p + y) / 2.0
    bias = float(diff.mean()) if diff.size else math.nan
    sd = float(diff.std(ddof=1)) if diff.size > 1 else math.nan
    return BlandAltman(mean, diff, bias, sd, bias - LOA_Z * sd, bias + LOA_Z * sd)


# --------------------------------------------------------------------------------------------
# Probabilistic predictions: Brier, calibration


def brier(y_true: ArrayLike, y_prob: ArrayLike) -> float:
    """Brier score: mean squared difference between probability and 0/1 outcome."""
    y, p = as_pair(y_true, y_prob, ("y_true", "y_prob"))
    as_binary(y)
    return float(np.mean((p - y) ** 2)) if y.size else math.nan


def calibration_curve(y_true: ArrayLike, y_prob: ArrayLike, n_bins: int = 10) -> dict[str, np.ndarray]:
    """Reliability curve on quantile bins of the predicted probability.

    Returns ``{"prob_pred", "prob_true", "count"}``, one entry per non-empty bin (bins whose
    quantile edges coincide are merged): mean predicted probability, observed fraction positive
    and number of items.
    """
    y, p = as_pair(y_true, y_prob, ("y_true", "y_prob"))
    as_binary(y)
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


def roc_curve(y_true: ArrayLike, y_score: ArrayLike) -> dict[str, np.ndarray]:
    """``sklearn.metrics.roc_curve`` (``drop_intermediate=True``): ``{"fpr", "tpr", "thresholds"}``.

    The first threshold is ``+inf`` (no item called positive). Empty arrays for a single class.
    """
    from sklearn.metrics import roc_curve as _sk_roc_curve

    y, s = as_pair(y_true, y_score)
    pos = as_binary(y)
    if pos.all() or not pos.any():
        empty = np.array([], dtype=np.float64)
        return {"fpr": empty, "tpr": empty, "thresholds": empty}
    fpr, tpr, thr = _sk_roc_curve(pos.astype(int), s)
    return {"fpr": fpr, "tpr": tpr, "thresholds": thr}


def sensitivity_specificity(y_true: ArrayLike, y_score: ArrayLike, threshold: float) -> tuple[float, float]:
    """Sensitivity and specificity calling ``score >= threshold`` positive (sklearn's convention);
    NaN for a class that is absent."""
    y, s = as_pair(y_true, y_score)
    pos = as_binary(y)
    called = is_positive(s, threshold)
    sens = float(called[pos].mean()) if pos.any() else math.nan
    spec = float((~called[~pos]).mean()) if (~pos).any() else math.nan
    return sens, spec


def youden_threshold(y_true: ArrayLike, y_score: ArrayLike) -> float:
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


def is_positive(score: ArrayLike, threshold: float) -> np.ndarray:
    """The project's one positive-call rule: ``score >= threshold`` (sklearn's ROC convention)."""
    return np.asarray(score, dtype=np.float64) >= threshold
