"""Fitting one fusion subset so that it cannot overfit: regularised, cross-validated, or the mean.

For one target and one subset of views, on validation studies only:

1. **Too few studies** (binary: fewer than ``min_per_class`` studies in either class; continuous:
   fewer than ``min_studies``) → nothing is fitted: the fused prediction is the plain mean of the
   views (mean logit → sigmoid for binary targets).
2. Otherwise the patients are dealt into ``n_folds`` folds (grouped: all of a patient's studies in
   one fold; binary targets: patients with and without the finding dealt separately so every fold
   holds both). **Nested** cross-validation scores the whole procedure: in each outer fold the
   regularisation strength is chosen by an inner cross-validation over the other folds, the model
   is refitted on them and predicts the held-out fold. The same out-of-fold rows score the plain
   mean of the views.
3. The fitted model is kept only when its cross-validated score beats the mean's by more than
   ``min_gain``; otherwise the simpler mean is kept. Both scores are recorded.

Models: binary — L2 logistic regression on the views' logits; continuous — ridge regression on
the views' values. Features are standardised inside the fit so the strength grid is scale-free
(per-view predictions can vary by 0.1 ms where the truth varies by 5 ms); the stored coefficients
are on the original scale. Scores: AUROC for binary targets (what Table 2 reports), out-of-fold
R² (``1 − MSE / variance``) for continuous ones; higher is better for both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Strengths λ of the penalty λ/2·‖w‖² per study, on standardised features.
DEFAULT_STRENGTHS = (0.003, 0.03, 0.3, 3.0, 30.0)


@dataclass(frozen=True)
class FusionFitConfig:
    """How fusion is fitted (the minimums are the stated floor below which nothing is fitted)."""

    min_per_class: int = 10  # binary: validation studies with, and without, the finding
    min_studies: int = 20  # continuous: labelled validation studies
    n_folds: int = 5
    strengths: tuple[float, ...] = DEFAULT_STRENGTHS
    min_gain: float = 0.01  # AUROC or R² the fitted model must gain over the mean to be kept
    seed: int = 0

    def to_json(self) -> dict:
        return {"min_per_class": self.min_per_class, "min_studies": self.min_studies,
                "n_folds": self.n_folds, "strengths": list(self.strengths), "min_gain": self.min_gain,
                "seed": self.seed, "cv": "nested, folds grouped by patient"}


@dataclass(frozen=True)
class SubsetFit:
    """Outcome for one subset: ``method`` is "logistic", "ridge" or "mean"; ``reason`` says why."""

    method: str
    coef: tuple[float, ...]
    intercept: float
    strength: float | None
    cv_fused: float | None
    cv_mean: float | None
    reason: str


def enough_data(y: np.ndarray, binary: bool, config: FusionFitConfig) -> str:
    """"" when there is enough to fit; otherwise why not (counts of studies, not patients)."""
    if binary:
        n_pos = int((y == 1).sum())
        fewest = min(n_pos, y.size - n_pos)
        if fewest < config.min_per_class:
            return f"too few: {fewest} studies in the smaller class (minimum {config.min_per_class})"
        return ""
    if y.size < config.min_studies:
        return f"too few: {y.size} studies (minimum {config.min_studies})"
    return ""


def grouped_folds(groups: np.ndarray, y: np.ndarray, binary: bool, n_folds: int, seed: int) -> np.ndarray:
    """Fold number of each row: patients shuffled by ``seed`` and dealt round-robin into
    ``n_folds`` folds, patients with a positive study dealt separately (binary) so every fold
    holds both classes where it can."""
    rng = np.random.default_rng(seed)
    unique, codes = np.unique(groups.astype(str), return_inverse=True)
    positive = np.zeros(unique.size, dtype=bool)
    if binary:
        np.logical_or.at(positive, codes, y == 1)
    fold_of = np.empty(unique.size, dtype=int)
    offset = 0
    for members in (np.flatnonzero(positive), np.flatnonzero(~positive)):
        members = rng.permutation(members)
        fold_of[members] = (offset + np.arange(members.size)) % n_folds
        offset += members.size
    return fold_of[codes]


def _standardise(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mean = x.mean(axis=0)
    sd = x.std(axis=0)
    sd = np.where(sd > 1e-12, sd, np.inf)  # a constant view carries nothing: its weight is 0
    return (x - mean) / sd, mean, sd


def fit_penalised(x: np.ndarray, y: np.ndarray, binary: bool, strength: float) -> tuple[np.ndarray, float]:
    """Coefficients (original scale) and intercept of the L2-penalised fit at ``strength``."""
    z, mean, sd = _standardise(x)
    n = y.size
    if binary:
        w, b = _logistic_newton(z, y, strength * n)
    else:
        yc = y - y.mean()
        w = np.linalg.solve(z.T @ z + strength * n * np.eye(x.shape[1]), z.T @ yc)
        b = float(y.mean())
    coef = w / sd
    return coef, float(b - mean @ coef)


def _logistic_newton(z: np.ndarray, y: np.ndarray, penalty: float, iters: int = 50) -> tuple[np.ndarray, float]:
    """L2 logistic regression (intercept unpenalised) by Newton's method: minimises
    ``Σ log-loss + penalty/2·‖w‖²`` — sklearn's objective with ``C = 1/penalty``. A few features
    and at most a few hundred studies: Newton converges in a handful of steps, where a generic
    solver would dominate the nested cross-validation's run time."""
    n, k = z.shape
    design = np.hstack([np.ones((n, 1)), z])
    ridge = np.diag([0.0] + [penalty] * k) + 1e-9 * np.eye(k + 1)  # tiny jitter: separable data
    beta = np.zeros(k + 1)
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-(design @ beta)))
        grad = design.T @ (p - y) + ridge @ beta
        hess = (design * (p * (1 - p))[:, None]).T @ design + ridge
        step = np.linalg.solve(hess, grad)
        beta -= step
        if np.abs(step).max() < 1e-10:
            break
    return beta[1:], float(beta[0])


def cv_score(y: np.ndarray, pred: np.ndarray, binary: bool) -> float:
    """AUROC (binary) or R² = 1 − MSE / variance (continuous); NaN when undefined."""
    from .metrics import auroc, r2

    if binary:
        return auroc(y, pred) if 0 < (y == 1).sum() < y.size else math.nan
    return r2(y, pred)


def _out_of_fold(x, y, folds, binary, strength, use) -> np.ndarray:
    """Out-of-fold predictions (linear predictor) for the rows in ``use``, refitting without each fold."""
    pred = np.full(y.size, np.nan)
    for k in np.unique(folds[use]):
        train, held = use & (folds != k), use & (folds == k)
        if train.sum() < 2:
            continue
        coef, b = fit_penalised(x[train], y[train], binary, strength)
        pred[held] = b + x[held] @ coef
    return pred


def choose_strength(x, y, folds, binary, config: FusionFitConfig, use) -> float:
    """The grid strength with the best cross-validated score over the folds in ``use``."""
    best, best_score = config.strengths[-1], -math.inf
    for strength in config.strengths:
        pred = _out_of_fold(x, y, folds, binary, strength, use)
        ok = use & ~np.isnan(pred)
        score = cv_score(y[ok], pred[ok], binary) if ok.any() else math.nan
        if math.isfinite(score) and score > best_score + 1e-12:
            best, best_score = strength, score
    return best


def fit_subset_cv(x: np.ndarray, y: np.ndarray, groups: np.ndarray, binary: bool,
                  config: FusionFitConfig) -> SubsetFit:
    """Fit one subset: x ``(n, k)`` model-space features (logits or values), y ``(n,)``, groups
    ``(n,)`` patient ids. Returns the fitted model, or the mean, with both CV scores."""
    why = enough_data(y, binary, config)
    if why:
        return SubsetFit("mean", (), 0.0, None, None, None, why)
    folds = grouped_folds(groups, y, binary, config.n_folds, config.seed)
    oof = np.full(y.size, np.nan)
    for k in np.unique(folds):
        train = folds != k
        strength = choose_strength(x, y, folds, binary, config, train)
        coef, b = fit_penalised(x[train], y[train], binary, strength)
        oof[folds == k] = b + x[folds == k] @ coef
    cv_fused = cv_score(y, oof, binary)
    cv_mean = cv_score(y, x.mean(axis=1), binary)
    method = "logistic" if binary else "ridge"
    if not (math.isfinite(cv_fused) and (not math.isfinite(cv_mean) or cv_fused > cv_mean + config.min_gain)):
        return SubsetFit("mean", (), 0.0, None, _num(cv_fused), _num(cv_mean),
                         f"cross-validated {method} did not beat the mean by more than {config.min_gain}")
    strength = choose_strength(x, y, folds, binary, config, np.ones(y.size, dtype=bool))
    coef, b = fit_penalised(x, y, binary, strength)
    return SubsetFit(method, tuple(float(c) for c in coef), b, strength, _num(cv_fused), _num(cv_mean),
                     f"cross-validated {method} beat the mean by more than {config.min_gain}")


def _num(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None
