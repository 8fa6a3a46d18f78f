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
    fm = FusionModel(models={"wma": fit_fusion_arrays("wma", p, y)})
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
    models = fit_fusion_arrays("wma", p, y, min_studies=10)
    assert models["PLAX"].method == "mean" and models["A4C+PLAX"].method == "mean"
    assert models["A4C"].method == "logistic"
    fm = FusionModel(models={"wma": models})
    got = fm.predict({"A4C": {"wma": 0.8}, "PLAX": {"wma": 0.6}})["wma"]
    lg = np.log([0.8 / 0.2, 0.6 / 0.4]).mean()
    assert got == pytest.approx(1 / (1 + math.exp(-lg)))


def test_continuous_fusion_is_linear_in_units():
    rng = np.random.default_rng(0)
    t1 = rng.normal(1020, 70, 300)
    x = t1[:, None] * 0.5 + 510 + rng.normal(0, 40, (300, 3))
    models = fit_fusion_arrays("t1", x, t1)
    m = models["A2C+A4C+PLAX"]
    assert m.method == "linear" and len(m.coef) == 3
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
