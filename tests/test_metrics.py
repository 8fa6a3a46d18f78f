"""Statistics: AUROC, vectorised bootstrap (vs a slow sklearn loop), CIs, continuous metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import mean_absolute_error, r2_score, roc_auc_score, roc_curve

from echocmr import bootstrap as B
from echocmr import metrics as M


def _data(n=120, seed=0, ties=True):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.4).astype(int)
    s = rng.normal(size=n) + y
    return y, (np.round(s, 1) if ties else s)


@pytest.mark.parametrize("ties", [True, False])
@pytest.mark.parametrize("seed", range(5))
def test_auroc_equals_sklearn(seed, ties):
    y, s = _data(seed=seed, ties=ties)
    assert M.auroc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


def test_auroc_all_tied_scores_is_half():
    assert M.auroc([0, 1, 0, 1], [0.3, 0.3, 0.3, 0.3]) == 0.5


def test_single_class_full_sample_is_nan():
    assert math.isnan(M.auroc([1, 1, 1], [0.1, 0.2, 0.3]))
    counts = B.bootstrap_counts(None, 3, 50, np.random.default_rng(0))
    est = B.auroc_ci([1, 1, 1], [0.1, 0.2, 0.3], counts, 0.95)
    assert math.isnan(est.value) and math.isnan(est.low) and math.isnan(est.high)
    assert est.n_nan == 50


def _slow_bootstrap_auc(y, s, counts):
    out = []
    for row in counts:
        idx = B.counts_to_indices(row)
        yi, si = y[idx], s[idx]
        out.append(roc_auc_score(yi, si) if 0 < yi.sum() < yi.size else np.nan)
    return np.array(out)


@pytest.mark.parametrize("unit", ["study", "patient"])
def test_vectorised_bootstrap_matches_sklearn_loop(unit):
    rng = np.random.default_rng(3)
    y, s = _data(n=40, seed=3)  # small n: some single-class resamples occur with few positives
    groups = rng.integers(0, 25, size=y.size) if unit == "patient" else None
    counts = B.bootstrap_counts(groups, y.size, 400, rng)
    fast = B.bootstrap_auroc(y, s, counts)
    slow = _slow_bootstrap_auc(y, s, counts)
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-12, equal_nan=True)
    a, b = B.percentile_interval(fast, 0.95), B.percentile_interval(slow, 0.95)
    assert (a.low, a.high, a.n_nan) == pytest.approx((b.low, b.high, b.n_nan), abs=1e-12)


def test_single_class_resamples_are_nan_and_counted():
    y = np.array([0] * 9 + [1])
    s = np.linspace(0, 1, 10)
    counts = B.bootstrap_counts(None, 10, 2000, np.random.default_rng(0))
    boot = B.bootstrap_auroc(y, s, counts)
    no_pos = counts[:, 9] == 0
    assert np.isnan(boot[no_pos]).all() and not np.isnan(boot[~no_pos]).any()
    iv = B.percentile_interval(boot, 0.95)
    assert iv.n_nan == no_pos.sum() > 0
    # (9/10)^10 ≈ 35 % of resamples lack the positive: fewer than half, so the CI exists.
    assert math.isfinite(iv.low)


def test_more_than_half_nan_gives_nan_interval():
    samples = np.r_[np.full(51, np.nan), np.linspace(0, 1, 49)]
    iv = B.percentile_interval(samples, 0.95)
    assert math.isnan(iv.low) and math.isnan(iv.high) and iv.n_nan == 51


def test_ci_level_is_honoured():
    y, s = _data(n=200, seed=1)
    counts = B.bootstrap_counts(None, y.size, 2000, np.random.default_rng(1))
    e95 = B.auroc_ci(y, s, counts, 0.95)
    e80 = B.auroc_ci(y, s, counts, 0.80)
    assert e95.low < e80.low < e80.value < e80.high < e95.high
    boot = B.bootstrap_auroc(y, s, counts)
    assert (e95.low, e95.high) == pytest.approx(tuple(np.quantile(boot, [0.025, 0.975])))
    with pytest.raises(ValueError):
        B.percentile_interval(boot, 95)


def test_shape_errors_mention_shapes():
    with pytest.raises(M.MetricInputError, match=r"\(3,\).*\(4,\)"):
        M.auroc([0, 1, 0], [0.1, 0.2, 0.3, 0.4])
    with pytest.raises(ValueError, match=r"\(2, 2\)"):
        M.mae(np.zeros((2, 2)), np.zeros((2, 2)))
    with pytest.raises(M.MetricInputError, match=r"\(5, 7\)"):
        B.bootstrap_auroc([0, 1, 0], [0.1, 0.2, 0.3], np.zeros((5, 7), dtype=int))
    with pytest.raises(M.MetricInputError, match="0 and 1"):
        M.auroc([0, 2, 1], [0.1, 0.2, 0.3])


def test_patient_cluster_bootstrap_keeps_studies_together():
    groups = np.array(["a", "a", "a", "b", "c", "c", "d"])
    counts = B.bootstrap_counts(groups, groups.size, 3000, np.random.default_rng(0))
    assert counts.shape == (3000, 7) and np.issubdtype(counts.dtype, np.integer)
    for members in ([0, 1, 2], [4, 5]):
        assert (counts[:, members] == counts[:, [members[0]]]).all()
    # Patients are drawn 4 at a time: study totals vary with the drawn patients' sizes.
    per_patient = counts[:, [0, 3, 4, 6]]
    assert (per_patient.sum(axis=1) == 4).all()
    assert len(set(counts.sum(axis=1))) > 1
    # Each patient is drawn once per resample on average.
    assert per_patient.mean() == pytest.approx(1.0, abs=0.05)


def test_study_bootstrap_rows_sum_to_n():
    counts = B.bootstrap_counts(None, 9, 100, np.random.default_rng(0))
    assert (counts.sum(axis=1) == 9).all()


def test_mae_r2_bland_altman_match_formulas():
    rng = np.random.default_rng(0)
    y = rng.normal(50, 6, 80)
    p = y + rng.normal(1, 3, 80)
    assert M.mae(y, p) == pytest.approx(mean_absolute_error(y, p))
    assert M.r2(y, p) == pytest.approx(r2_score(y, p))
    ba = M.bland_altman(y, p)
    d = p - y
    assert ba.bias == pytest.approx(d.mean())
    assert ba.loa_low == pytest.approx(d.mean() - 1.96 * d.std(ddof=1))
    assert ba.loa_high == pytest.approx(d.mean() + 1.96 * d.std(ddof=1))
    np.testing.assert_allclose(ba.mean, (p + y) / 2)
    np.testing.assert_allclose(ba.diff, d)
    assert math.isnan(M.r2([3.0, 3.0, 3.0], [1.0, 2.0, 3.0]))


def test_weighted_bootstrap_continuous_matches_loop():
    rng = np.random.default_rng(2)
    y = rng.normal(1000, 70, 60)
    p = y * 0.3 + 700 + rng.normal(0, 50, 60)
    counts = B.bootstrap_counts(rng.integers(0, 40, 60), 60, 200, rng)
    mae_b, r2_b = B.bootstrap_mae(y, p, counts), B.bootstrap_r2(y, p, counts)
    ba_b = B.bootstrap_bland_altman(y, p, counts)
    for b in range(0, 200, 7):
        idx = B.counts_to_indices(counts[b])
        assert mae_b[b] == pytest.approx(mean_absolute_error(y[idx], p[idx]), rel=1e-10)
        assert r2_b[b] == pytest.approx(r2_score(y[idx], p[idx]), rel=1e-9)
        d = p[idx] - y[idx]
        assert ba_b["loa_high"][b] == pytest.approx(d.mean() + 1.96 * d.std(ddof=1), rel=1e-9)


def test_brier_and_calibration():
    rng = np.random.default_rng(0)
    p = rng.random(500)
    y = (rng.random(500) < p).astype(int)
    assert M.brier(y, p) == pytest.approx(np.mean((p - y) ** 2))
    cal = M.calibration_curve(y, p, n_bins=10)
    assert cal["count"].sum() == 500 and len(cal["count"]) == 10
    assert np.all(np.diff(cal["prob_pred"]) > 0)
    np.testing.assert_allclose(cal["prob_true"], cal["prob_pred"], atol=0.15)


def _curve_at(fpr, tpr, grid):
    """Reference: the piecewise-linear curve, vertical segments counted at their top."""
    out = []
    for g in grid:
        j = np.flatnonzero(fpr <= g)[-1]
        out.append(tpr[j] if j == len(fpr) - 1 else
                   tpr[j] + (g - fpr[j]) / (fpr[j + 1] - fpr[j]) * (tpr[j + 1] - tpr[j]))
    return np.array(out)


@pytest.mark.parametrize("ties", [True, False])
def test_roc_band_curves_match_sklearn_curves(ties):
    y, s = _data(n=30, seed=5, ties=ties)
    counts = B.bootstrap_counts(None, y.size, 300, np.random.default_rng(5))
    grid, curves, n_nan = B.bootstrap_roc_curves(y, s, counts, n_grid=21)
    ok = [b for b in range(300) if 0 < y[B.counts_to_indices(counts[b])].sum() < counts[b].sum()]
    assert curves.shape == (len(ok), 21) and n_nan == 300 - len(ok)
    for k, b in enumerate(ok[:60]):
        idx = B.counts_to_indices(counts[b])
        fpr, tpr, _ = roc_curve(y[idx], s[idx])
        np.testing.assert_allclose(curves[k], _curve_at(fpr, tpr, grid), atol=1e-12)
    band = B.bootstrap_roc_band(y, s, counts, 0.95, n_grid=21)
    assert np.all(band["tpr_low"] <= band["tpr_high"])
    assert band["tpr_high"][-1] == 1.0


def test_roc_curve_sensitivity_specificity_youden():
    y = np.array([0, 0, 0, 1, 0, 1, 1, 1])
    s = np.array([0.1, 0.2, 0.3, 0.35, 0.4, 0.6, 0.7, 0.8])
    roc = M.roc_curve(y, s)
    fpr, tpr, thr = roc_curve(y, s)
    np.testing.assert_allclose(roc["tpr"], tpr)
    # J = 0.75 at both 0.6 (sens 3/4, spec 1) and 0.35 (sens 1, spec 3/4): the higher wins.
    thr_j = M.youden_threshold(y, s)
    assert thr_j == 0.6
    assert M.sensitivity_specificity(y, s, thr_j) == (0.75, 1.0)
    assert M.sensitivity_specificity(y, s, 0.35) == (1.0, 0.75)
    assert math.isnan(M.youden_threshold([1, 1], [0.2, 0.3]))


def test_metric_record_to_dict_keys():
    rec = M.MetricRecord("wma", "global", "auroc", 0.8, 0.7, 0.9, 100)
    assert set(rec.to_dict()) == {"target", "view", "metric", "value", "ci_low", "ci_high", "n", "n_positive", "note"}
    assert M.MetricRecord.from_dict(rec.to_dict()) == rec
    older = {k: v for k, v in rec.to_dict().items() if k not in ("n_positive", "note")}  # bundles before them
    assert M.MetricRecord.from_dict(older) == rec
