"""Is it just function? AUROC within strata and the echo model's value beyond LVEF, WMA, anatomy.

The paper suspected its LGE AUROC came from "reduced ejection fraction or thinned myocardium".
Two answers per binary finding, on the held-out studies of a results bundle:

* **Strata** — the fused model's AUROC (patient-bootstrap interval) in all studies, in
  WMA-negative studies, in studies with LVEF ≥ 50 % and with maximal wall thickness < 12 mm: a
  signal that is only function vanishes where function is normal.
* **Incremental value** — logistic regressions of the finding on the covariates (LVEF + any WMA,
  then + wall thickness) with and without the echo model's logit: the likelihood-ratio test of the
  added term and ΔAUROC (with − without), whose patient-bootstrap interval refits both models on
  every resample. A model that predicts only through anatomy adds nothing once anatomy is in.

Inputs are one row per study: ``study``, ``patient``, ``y`` (finding), ``score`` (fused
probability), ``wma`` (any WMA 0/1), ``lvef_pct``, ``wall_thickness_mm`` (NaN when not measured).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from .. import bootstrap as B
from .. import metrics as M
from ..config import EvalConfig
from .logistic import fit_logistic, likelihood_ratio_test, standardise

LVEF_NORMAL_PCT = 50.0
WALL_NORMAL_BELOW_MM = 12.0
STRATA = ("all studies", "WMA-negative", "LVEF ≥ 50 %", "wall < 12 mm")
COVARIATE_SETS = {"LVEF + WMA": ("lvef_pct", "wma"),
                  "LVEF + WMA + wall thickness": ("lvef_pct", "wma", "wall_thickness_mm")}


@dataclass(frozen=True)
class StratumAuroc:
    target: str
    stratum: str
    n_studies: int
    n_positive: int
    auroc: float
    ci_low: float
    ci_high: float
    note: str = ""


@dataclass(frozen=True)
class IncrementalValue:
    """The echo model's value beyond ``covariates`` for ``target``."""

    target: str
    covariates: str
    n_studies: int
    n_positive: int
    auroc_echo: float
    auroc_covariates: float  # in-sample (fitted on these studies): optimistic, see the _cv columns
    auroc_combined: float
    delta: float
    ci_low: float
    ci_high: float
    lr_statistic: float
    lr_df: int
    lr_p: float
    auroc_covariates_cv: float = math.nan  # 5-fold cross-validated by patient: out-of-sample
    auroc_combined_cv: float = math.nan
    note: str = ""


CV_FOLDS = 5


def cross_validated_scores(x: np.ndarray, y: np.ndarray, patients: np.ndarray, seed: int = 0) -> np.ndarray:
    """Out-of-fold linear predictions of the logistic model, folds drawn by patient."""
    codes = np.unique(patients, return_inverse=True)[1]
    fold_of = np.random.default_rng(seed).permutation(codes.max() + 1) % CV_FOLDS
    out = np.full(len(y), np.nan)
    for fold in range(CV_FOLDS):
        test = fold_of[codes] == fold
        if test.any() and len(np.unique(y[~test])) == 2:
            out[test] = fit_logistic(x[~test], y[~test]).linear(x[test])
    return out


def _stratum_rows(frame: pd.DataFrame, stratum: str) -> pd.DataFrame:
    if stratum == "WMA-negative":
        return frame[frame["wma"] == 0]
    if stratum == "LVEF ≥ 50 %":
        return frame[frame["lvef_pct"] >= LVEF_NORMAL_PCT]
    if stratum == "wall < 12 mm":
        return frame[frame["wall_thickness_mm"] < WALL_NORMAL_BELOW_MM]
    return frame


def _too_few(rows: pd.DataFrame, minimum: int) -> str:
    with_, without = (rows.loc[rows["y"] == v, "patient"].nunique() for v in (1, 0))
    if min(with_, without) < minimum:
        return f"no CI: {with_} patients with and {without} without the finding (fewer than {minimum})"
    return ""


def _counts(rows: pd.DataFrame, n_bootstrap: int, seed: int) -> np.ndarray:
    return B.bootstrap_counts(rows["patient"].to_numpy(), len(rows), n_bootstrap, np.random.default_rng(seed))


def stratum_aurocs(frame: pd.DataFrame, target: str, n_bootstrap: int = 1000, seed: int = 0,
                   level: float = 0.95) -> list[StratumAuroc]:
    """The fused model's AUROC for ``target`` within each stratum (patient-bootstrap CI)."""
    out, minimum = [], EvalConfig().min_class_units
    for stratum in STRATA:
        if stratum == "WMA-negative" and target == "wma":
            continue  # no WMA in the stratum by definition
        rows = _stratum_rows(frame, stratum)
        n_pos = int(rows["y"].sum())
        note = _too_few(rows, minimum)
        if not len(rows) or note:
            value = M.auroc(rows["y"], rows["score"]) if n_pos and n_pos < len(rows) else math.nan
            out.append(StratumAuroc(target, stratum, len(rows), n_pos, value, math.nan, math.nan,
                                    note or "no studies"))
            continue
        est = B.auroc_ci(rows["y"].to_numpy(), rows["score"].to_numpy(), _counts(rows, n_bootstrap, seed), level)
        out.append(StratumAuroc(target, stratum, len(rows), n_pos, est.value, est.low, est.high))
    return out


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
    return np.log(q / (1 - q))


def _weighted_auc(y: np.ndarray, score: np.ndarray, weights: np.ndarray) -> float:
    return float(B.bootstrap_auroc(y, score, weights[None, :].astype(np.int32))[0])


def _delta_auc(x_base: np.ndarray, x_full: np.ndarray, y: np.ndarray, weights: np.ndarray) -> float:
    """ΔAUROC of the two logistic models refitted with ``weights`` (a bootstrap resample)."""
    base = fit_logistic(x_base, y, weights)
    full = fit_logistic(x_full, y, weights)
    return _weighted_auc(y, full.linear(x_full), weights) - _weighted_auc(y, base.linear(x_base), weights)


def incremental_value(frame: pd.DataFrame, target: str, name: str, columns: tuple[str, ...],
                      n_bootstrap: int = 500, seed: int = 0) -> IncrementalValue | None:
    """Likelihood-ratio test and ΔAUROC of adding the echo logit to the ``columns`` model.

    ``None`` when a covariate is missing from every study (e.g. no wall thickness reported).
    Interval at EvalConfig's level (95 %).
    """
    level = EvalConfig().ci_level
    columns = tuple(c for c in columns if not (c == "wma" and target == "wma"))
    rows = frame.dropna(subset=[*columns, "y", "score"])
    if not len(rows) or any(rows[c].nunique() < 2 for c in columns):
        return None
    y = rows["y"].to_numpy(dtype=float)
    x_base = standardise(rows[list(columns)].to_numpy(dtype=float))
    x_full = np.column_stack([x_base, standardise(_logit(rows["score"].to_numpy())[:, None])])
    base, full = fit_logistic(x_base, y), fit_logistic(x_full, y)
    lr = likelihood_ratio_test(base, full)
    auc_base, auc_full = M.auroc(y, base.linear(x_base)), M.auroc(y, full.linear(x_full))
    low = high = math.nan
    note = _too_few(rows, EvalConfig().min_class_units)
    if not note:
        counts = _counts(rows, n_bootstrap, seed)
        deltas = np.array([_delta_auc(x_base, x_full, y, c) for c in counts])
        iv = B.percentile_interval(deltas, level)
        low, high = iv.low, iv.high
    if target == "wma":
        note = "; ".join(filter(None, ["WMA left out of the covariates (it is the finding)", note]))
    patients = rows["patient"].to_numpy()
    cv = [M.auroc(y, cross_validated_scores(x, y, patients, seed)) for x in (x_base, x_full)]
    return IncrementalValue(target, name, len(rows), int(y.sum()), M.auroc(y, rows["score"]), auc_base,
                            auc_full, auc_full - auc_base, low, high, lr.statistic, lr.df, lr.p_value,
                            cv[0], cv[1], note)


def confounder_analysis(frame: pd.DataFrame, targets: list[str], n_bootstrap: int = 500,
                        seed: int = 0) -> tuple[list[StratumAuroc], list[IncrementalValue]]:
    """Intervals at EvalConfig's level (95 %)."""
    level = EvalConfig().ci_level
    """Strata and incremental value for each of ``targets``; ``frame`` has a ``target`` column
    and the per-study columns of the module docstring."""
    strata, increments = [], []
    for target in targets:
        rows = frame[frame["target"] == target]
        if rows.empty:
            continue
        strata += stratum_aurocs(rows, target, n_bootstrap, seed, level)
        for name, columns in COVARIATE_SETS.items():
            inc = incremental_value(rows, target, name, columns, n_bootstrap, seed)
            if inc is not None:
                increments.append(inc)
    return strata, increments


def as_frame(rows) -> pd.DataFrame:
    return pd.DataFrame([asdict(r) for r in rows])
