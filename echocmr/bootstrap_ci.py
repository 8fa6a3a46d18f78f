"""Bootstrap confidence intervals: percentile or BCa, and how an interval is written and labelled.

The resamples are the count matrices of :mod:`echocmr.metrics` (``(B, n)``: how often each study
is in each resample; patient-level resampling keeps a patient's studies together). Two methods:

* ``"percentile"`` — the ``(1 − level)/2`` and ``(1 + level)/2`` quantiles of the resampled
  statistic.
* ``"bca"`` — bias-corrected and accelerated (Efron 1987), as ``scipy.stats.bootstrap`` computes
  it: the bias correction ``z0 = Φ⁻¹(share of resamples below the estimate)``, the acceleration
  from a jackknife that leaves out one *resampling unit* (patient or study) at a time, and the
  percentile levels ``Φ(z0 + (z0 + z_α) / (1 − a (z0 + z_α)))``. BCa corrects the percentile
  interval's under-coverage where the statistic is skewed, e.g. an AUROC near 1.

A jackknife is itself a count matrix (all ones, one unit's studies zeroed), so every vectorised
``bootstrap_*`` statistic computes the jackknife values too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import EchoCMRError

CI_METHODS = ("percentile", "bca")
MINUS = "\u2212"


class IntervalError(EchoCMRError, ValueError):
    """A confidence-interval setting is out of range."""


@dataclass(frozen=True)
class IntervalSpec:
    """How the intervals of one evaluation are computed (recorded in the results summary)."""

    level: float = 0.95
    method: str = "percentile"
    n_bootstrap: int = 10_000
    unit: str = "patient"  # resampling unit

    def __post_init__(self) -> None:
        if self.method not in CI_METHODS:
            raise IntervalError(f"ci method must be one of {CI_METHODS}; got {self.method!r}")
        if not 0.0 < self.level < 1.0:
            raise IntervalError(f"ci level must be in (0, 1); got {self.level!r}")


@dataclass(frozen=True)
class Bounds:
    low: float
    high: float
    n_nan: int


def jackknife_counts(units: np.ndarray) -> np.ndarray:
    """``(n_units, n)`` int32 count matrix: row ``j`` holds every item except unit ``j``'s."""
    _, codes = np.unique(np.asarray(units).astype(str), return_inverse=True)
    n_units = int(codes.max()) + 1 if codes.size else 0
    return (codes[None, :] != np.arange(n_units)[:, None]).astype(np.int32)


def percentile_bounds(samples: np.ndarray, level: float) -> Bounds:
    s = np.asarray(samples, dtype=np.float64)
    nan = np.isnan(s)
    if s.size == 0 or nan.sum() * 2 > s.size:
        return Bounds(math.nan, math.nan, int(nan.sum()))
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(s[~nan], [alpha, 1.0 - alpha])
    return Bounds(float(low), float(high), int(nan.sum()))


def bca_bounds(value: float, samples: np.ndarray, jack: np.ndarray, level: float) -> Bounds:
    """BCa interval from the resampled statistic ``samples`` ``(B,)`` and jackknife values
    ``jack`` ``(n_units,)``; NaN resamples are dropped (NaN interval when over half are)."""
    from scipy.stats import norm

    s = np.asarray(samples, dtype=np.float64)
    nan = np.isnan(s)
    s = s[~nan]
    jack = np.asarray(jack, dtype=np.float64)
    jack = jack[~np.isnan(jack)]
    if s.size == 0 or nan.sum() * 2 > nan.size or not math.isfinite(value) or jack.size < 2:
        return Bounds(math.nan, math.nan, int(nan.sum()))
    share_below = float(np.mean(s < value))
    if share_below in (0.0, 1.0):  # z0 infinite: the estimate is outside every resample
        return Bounds(math.nan, math.nan, int(nan.sum()))
    z0 = norm.ppf(share_below)
    dev = jack.mean() - jack
    denom = 6.0 * float(np.sum(dev ** 2)) ** 1.5
    accel = float(np.sum(dev ** 3)) / denom if denom > 0 else 0.0
    alpha = (1.0 - level) / 2.0
    levels = []
    for z_alpha in (norm.ppf(alpha), norm.ppf(1.0 - alpha)):
        shifted = z0 + z_alpha
        levels.append(float(norm.cdf(z0 + shifted / (1.0 - accel * shifted))))
    low, high = np.percentile(s, [100.0 * levels[0], 100.0 * levels[1]])
    return Bounds(float(low), float(high), int(nan.sum()))


def bounds(value: float, samples: np.ndarray, spec: IntervalSpec, jack: np.ndarray | None = None) -> Bounds:
    """The interval of ``spec.method`` (``jack`` needed for BCa)."""
    if spec.method == "bca":
        if jack is None:
            raise IntervalError("a BCa interval needs the jackknife values")
        return bca_bounds(value, samples, jack, spec.level)
    return percentile_bounds(samples, spec.level)


def estimate(value: float, boot_stat, counts: np.ndarray, spec: IntervalSpec, units: np.ndarray):
    """Point estimate with its interval. ``boot_stat(counts) → (B,)`` computes the statistic on
    any count matrix (resamples, or the jackknife for BCa); units ``(n,)`` the resampling unit of
    each item. Returns :class:`echocmr.metrics.Estimate`."""
    from .metrics import Estimate

    jack = boot_stat(jackknife_counts(units)) if spec.method == "bca" else None
    b = bounds(value, boot_stat(counts), spec, jack)
    return Estimate(float(value), b.low, b.high, int(np.asarray(units).size), b.n_nan)


# ----------------------------------------------------------------------------- writing them


def signed(text: str) -> str:
    """A typographic minus for negative numbers ("−0.417")."""
    return MINUS + text[1:] if text.startswith("-") else text


def format_interval(low: float, high: float, fmt=lambda x: f"{x:.3f}") -> str:
    """"0.816 to 0.922", "−0.417 to −0.021": no dash that reads as a minus sign."""
    return f"{signed(fmt(low))} to {signed(fmt(high))}"


def describe_intervals(summary: dict) -> str:
    """What the intervals of a results summary are, e.g. "95 % CIs: BCa bootstrap, 10000
    resamples of patients" (read from the summary, never assumed)."""
    level = summary.get("ci_level")
    method = {"bca": "BCa", "percentile": "percentile"}.get(summary.get("ci_method", "percentile"), "?")
    unit = {"patient": "patients", "study": "studies"}.get(summary.get("resample_unit", "patient"), "units")
    level_text = f"{100 * float(level):g} %" if isinstance(level, (int, float)) else "?"
    return (f"{level_text} CIs: {method} bootstrap, {summary.get('n_bootstrap', '?')} resamples of "
            f"{unit}")


def level_text(summary: dict) -> str:
    """"95 % CI" (from the summary's level)."""
    level = summary.get("ci_level")
    return f"{100 * float(level):g} % CI" if isinstance(level, (int, float)) else "CI"
