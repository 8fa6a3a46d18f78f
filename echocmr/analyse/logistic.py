"""Weighted logistic regression by Newton–Raphson (IRLS) and the likelihood-ratio test.

Small and dependency-free on purpose: the confounder analysis refits a handful of coefficients on
every bootstrap resample (weights = the resample's counts), which a general GLM library makes slow.
A tiny ridge term (1e-6) keeps a perfectly separated sample finite; its effect on a likelihood
ratio is far below anything reported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import expit
from scipy.stats import chi2

RIDGE = 1e-6


@dataclass(frozen=True)
class LogisticFit:
    coef: np.ndarray  # (k + 1,), intercept first
    log_likelihood: float
    converged: bool

    def linear(self, x: np.ndarray) -> np.ndarray:
        return self.coef[0] + np.asarray(x, dtype=float) @ self.coef[1:]


def standardise(x: np.ndarray) -> np.ndarray:
    """Columns centred and scaled (constant columns left at 0): Newton converges on any units."""
    x = np.asarray(x, dtype=float)
    sd = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0)


def fit_logistic(x, y, weights=None, max_iter: int = 50, tol: float = 1e-9) -> LogisticFit:
    """Maximum-likelihood logistic regression of 0/1 ``y`` on ``x`` ``(n, k)`` with an intercept."""
    y = np.asarray(y, dtype=float)
    design = np.column_stack([np.ones(len(y)), np.asarray(x, dtype=float).reshape(len(y), -1)])
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=float)
    beta = np.zeros(design.shape[1])
    converged = False
    for _ in range(max_iter):
        p = expit(design @ beta)
        grad = design.T @ (w * (y - p)) - RIDGE * beta
        hess = (design * (w * p * (1 - p))[:, None]).T @ design + RIDGE * np.eye(len(beta))
        step = np.linalg.solve(hess, grad)
        beta = beta + step
        if np.max(np.abs(step)) < tol:
            converged = True
            break
    eta = design @ beta
    ll = float(np.sum(w * (y * eta - np.logaddexp(0.0, eta))))
    return LogisticFit(beta, ll, converged)


@dataclass(frozen=True)
class LikelihoodRatio:
    statistic: float
    df: int
    p_value: float


def likelihood_ratio_test(reduced: LogisticFit, full: LogisticFit) -> LikelihoodRatio:
    """Nested models: 2·(ℓ_full − ℓ_reduced) ~ χ²(extra parameters) under the reduced model."""
    df = len(full.coef) - len(reduced.coef)
    stat = max(0.0, 2.0 * (full.log_likelihood - reduced.log_likelihood))
    p = float(chi2.sf(stat, df)) if df > 0 else math.nan
    return LikelihoodRatio(stat, df, p)
