"""View fusion: subset models for missing views, JSON round trip, fused ≥ single views."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from echocmr import metrics as M
from echocmr.errors import CheckpointError
from echocmr.fusion import FusionModel, all_subsets, fit_fusion_arrays, fit_fusion_frame, subset_key
from echocmr.fusion_cv import FusionFitConfig, grouped_folds
from echocmr.targets import MODEL_VIEWS


def _views_data(n=600, seed=0, missing=0.15):
    """Three views, each an independent noisy readout of the same binary label."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.5).astype(float)
    z = (2 * y - 1)[:, None] * np.array([0.8, 0.6, 0.7]) + rng.normal(0, 1.2, (n, 3))
    p = 1 / (1 + np.exp(-z))
    p[rng.random((n, 3)) < missing] = np.nan
    p[np.isnan(p).all(axis=1), 0] = 0.5
    return y, p


def _frame(p, studies):
    rows = [
        {"study": s, "view": v, "wma": p[i, j]}
        for i, s in enumerate(studies) for j, v in enumerate(MODEL_VIEWS) if not np.isnan(p[i, j])
    ]
    return pd.DataFrame(rows)


def test_subset_keys():
    assert subset_key(["A4C", "A2C"]) == "A2C+A4C"
    assert len(all_subsets()) == 7


def test_missing_view_uses_the_right_subset_model():
    y, p = _views_data()
    # min_gain -1: fit every subset (this test is about which subset model a study gets)
    fm = FusionModel(models={"wma": fit_fusion_arrays("wma", p, y, config=FusionFitConfig(min_gain=-1.0))})
    assert set(fm.models["wma"]) == {subset_key(s) for s in all_subsets()}
    a4c_a2c = fm.models["wma"]["A2C+A4C"]
    assert a4c_a2c.method == "logistic" and a4c_a2c.features == ("A2C", "A4C")
    study = {"A4C": {"wma": 0.7}, "A2C": {"wma": 0.4}}
    got = fm.predict(study)["wma"]
    logits = np.log(np.array([0.4, 0.7]) / (1 - np.array([0.4, 0.7])))
    expected = 1 / (1 + math.exp(-(a4c_a2c.intercept + logits @ np.array(a4c_a2c.coef))))
    assert got == pytest.approx(expected, rel=1e-12)
    # A study with no view predictions has no fused prediction.
    assert math.isnan(fm.predict({})["wma"])


def test_small_subset_falls_back_to_mean_logit():
    y, p = _views_data(n=60, missing=0.0)
    p[:, 2] = np.nan
    p[:4, 2] = 0.6  # only 4 studies have PLAX: too few to fit any subset containing it
    models = fit_fusion_arrays("wma", p, y, config=FusionFitConfig(min_per_class=5, min_gain=-1.0))
    assert models["PLAX"].method == "mean" and models["A4C+PLAX"].method == "mean"
    assert models["PLAX"].reason.startswith("too few") and models["PLAX"].cv_fused is None
    assert models["A4C"].method == "logistic"
    fm = FusionModel(models={"wma": models})
    got = fm.predict({"A4C": {"wma": 0.8}, "PLAX": {"wma": 0.6}})["wma"]
    lg = np.log([0.8 / 0.2, 0.6 / 0.4]).mean()
    assert got == pytest.approx(1 / (1 + math.exp(-lg)))


def test_continuous_fusion_is_ridge_in_units():
    rng = np.random.default_rng(0)
    t1 = rng.normal(1020, 70, 300)
    # Biased, shrunken readouts: the mean of the views is a poor predictor, a linear map a good one.
    x = t1[:, None] * 0.5 + 510 + rng.normal(0, 40, (300, 3))
    models = fit_fusion_arrays("t1", x, t1)
    m = models["A2C+A4C+PLAX"]
    assert m.method == "ridge" and len(m.coef) == 3
    assert m.cv_fused > m.cv_mean + 0.01 and m.strength is not None
    fm = FusionModel(models={"t1": models})
    pred = fm.predict_array("t1", x)
    assert np.abs(pred - t1).mean() < np.abs(x[:, 0] - t1).mean()


def test_json_round_trip_is_identical():
    y, p = _views_data(seed=1)
    studies = [f"s{i}" for i in range(y.size)]
    frame = _frame(p, studies)
    labels = pd.DataFrame({"study": studies, "wma": y})
    fm = fit_fusion_frame(frame, labels, targets=("wma",))
    text = json.dumps(fm.to_json(), allow_nan=False)
    again = FusionModel.from_json(json.loads(text))
    pd.testing.assert_frame_equal(fm.predict_frame(frame), again.predict_frame(frame))
    assert again.to_json() == fm.to_json()
    one = {"A4C": {"wma": 0.3}, "PLAX": {"wma": 0.9}}
    assert fm.predict(one) == again.predict(one)


def test_predict_frame_matches_single_study_predict():
    y, p = _views_data(seed=2)
    studies = [f"s{i}" for i in range(y.size)]
    frame = _frame(p, studies)
    fm = fit_fusion_frame(frame, pd.DataFrame({"study": studies, "wma": y}), targets=("wma",))
    fused = fm.predict_frame(frame)
    for i in range(0, y.size, 37):
        per_view = {v: {"wma": p[i, j]} for j, v in enumerate(MODEL_VIEWS) if not np.isnan(p[i, j])}
        assert fused.loc[studies[i], "wma"] == pytest.approx(fm.predict(per_view)["wma"], rel=1e-12)


def test_fused_auroc_beats_best_single_view():
    y_val, p_val = _views_data(n=600, seed=3, missing=0.0)
    y_test, p_test = _views_data(n=600, seed=4, missing=0.0)
    fm = FusionModel(models={"wma": fit_fusion_arrays("wma", p_val, y_val)})
    fused = fm.predict_array("wma", p_test)
    best_single = max(M.auroc(y_test, p_test[:, j]) for j in range(3))
    assert M.auroc(y_test, fused) > best_single + 0.02


def test_from_json_rejects_malformed():
    with pytest.raises(CheckpointError):
        FusionModel.from_json({"kind": "something"})
    with pytest.raises(CheckpointError):
        FusionModel.from_json({"kind": "fusion", "format_version": 1, "views": ["A4C"],
                               "targets": {"wma": {"subsets": {"A4C": {"features": ["A4C"],
                                                                        "method": "logistic",
                                                                        "coef": [1.0, 2.0]}}}}})


def test_binary_fusion_falls_back_to_mean_with_few_positives():
    """The issue's case: 6 validation positives must not be fitted (minimum per class)."""
    y, p = _views_data(n=60, seed=5, missing=0.0)
    y[:] = 0.0
    y[:6] = 1.0
    models = fit_fusion_arrays("wma", p, y)
    assert all(m.method == "mean" for m in models.values())
    assert "6 studies in the smaller class" in models["A2C+A4C+PLAX"].reason


def test_continuous_fusion_falls_back_to_mean_on_noisy_validation():
    """Views that are noisy but unbiased readouts: a fit cannot beat their mean, so the mean stays.
    (OLS on these nearly constant features gave the issue's −50 coefficients.)"""
    rng = np.random.default_rng(1)
    t2 = rng.normal(48.7, 5.5, 50)
    x = t2[:, None] + rng.normal(0, 4.0, (50, 3))
    models = fit_fusion_arrays("t2", x, t2, groups=np.repeat(np.arange(25), 2))
    m = models["A2C+A4C+PLAX"]
    assert m.method == "mean" and m.coef == ()
    assert m.cv_mean is not None and m.cv_fused is not None and m.cv_fused <= m.cv_mean + 0.01
    fm = FusionModel(models={"t2": models})
    assert np.allclose(fm.predict_array("t2", x), x.mean(axis=1))


def test_binary_fusion_falls_back_to_mean_on_pure_noise():
    rng = np.random.default_rng(2)
    y = (rng.random(80) < 0.5).astype(float)
    p = rng.random((80, 3))
    models = fit_fusion_arrays("lge", p, y)
    assert models["A2C+A4C+PLAX"].method == "mean"


def test_folds_group_patients_and_hold_both_classes():
    groups = np.repeat(np.arange(30), 2).astype(str)
    y = np.r_[np.ones(20), np.zeros(40)]
    folds = grouped_folds(groups, y, True, 5, seed=0)
    assert all(len(set(folds[groups == g])) == 1 for g in np.unique(groups))
    assert all(y[folds == k].min() == 0 and y[folds == k].max() == 1 for k in range(5))
    assert (grouped_folds(groups, y, True, 5, seed=0) == folds).all()


def test_fusion_record_says_what_was_chosen():
    y, p = _views_data(n=300, seed=6, missing=0.0)
    studies = [f"s{i}" for i in range(y.size)]
    frame = _frame(p, studies).assign(patient=lambda f: f["study"].str[:-1])
    fm = fit_fusion_frame(frame, pd.DataFrame({"study": studies, "wma": y}), targets=("wma",))
    record = fm.to_json()["targets"]["wma"]["subsets"]["A2C+A4C+PLAX"]
    assert record["method"] in ("logistic", "mean") and record["features"] == ["A2C", "A4C", "PLAX"]
    assert record["cv_fused"] is not None and record["cv_mean"] is not None and record["reason"]
    assert fm.to_json()["fit"]["min_per_class"] == FusionFitConfig().min_per_class
    assert fm.choice("wma").features == ("A2C", "A4C", "PLAX")


def test_logistic_fit_matches_sklearn():
    from sklearn.linear_model import LogisticRegression

    from echocmr.fusion_cv import fit_penalised

    y, p = _views_data(n=200, seed=7, missing=0.0)
    x = np.log(p / (1 - p))
    coef, _ = fit_penalised(x, y, True, 0.03)
    z = (x - x.mean(0)) / x.std(0)
    ref = LogisticRegression(C=1 / (0.03 * y.size), tol=1e-10, max_iter=10000).fit(z, y)
    assert np.allclose(coef * x.std(0), ref.coef_[0], atol=1e-5)
