"""Evaluation pipeline on simulated per-clip predictions (no model): bundle, round trip, Table 2."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from echocmr import evaluate as E
from echocmr.config import EvalConfig
from echocmr.metrics import MetricRecord
from echocmr.targets import BINARY_TARGETS, GLOBAL, GLOBAL_TARGETS, MODEL_VIEWS

CONFIG = EvalConfig(n_bootstrap=400, seed=0)


@pytest.fixture(scope="module")
def simulated():
    return E.simulate_predictions(n_patients=240, seed=7, signal=1.0)


@pytest.fixture(scope="module")
def evaluated(simulated):
    clip_preds, labels = simulated
    return E.evaluate_predictions(clip_preds, labels, CONFIG, synthetic=True)


def test_aggregate_per_study_means_clips(simulated):
    clip_preds, _ = simulated
    per_study = E.aggregate_per_study(clip_preds)
    assert not per_study.duplicated(["study", "view"]).any()
    row = per_study[per_study["n_clips"] == 2].iloc[0]
    clips = clip_preds[(clip_preds["study"] == row["study"]) & (clip_preds["view"] == row["view"])]
    assert row["wma"] == pytest.approx(clips["wma"].mean())
    with pytest.raises(E.EvaluationError, match="clip_id"):
        E.aggregate_per_study(clip_preds.drop(columns=["clip_id"]))


def test_fusion_refuses_non_validation_rows(simulated):
    clip_preds, labels = simulated
    with pytest.raises(E.EvaluationError, match="validation"):
        E.fit_fusion(E.aggregate_per_study(clip_preds), labels)


def test_bundle_cells(evaluated):
    bundle, _ = evaluated
    cells = {(r.target, r.view, r.metric) for r in bundle.metrics}
    for v in MODEL_VIEWS:
        for t in ("wma_view", "lge_view") + tuple(t for t in GLOBAL_TARGETS if t in BINARY_TARGETS):
            assert (t, v, "auroc") in cells
        for t in ("t1", "t2", "ecv"):
            assert {(t, v, "mae"), (t, v, "r2"), (t, v, "bias")} <= cells
    for t in GLOBAL_TARGETS:
        metric = "auroc" if t in BINARY_TARGETS else "mae"
        assert (t, GLOBAL, metric) in cells
    assert ("wma_view", GLOBAL, "auroc") not in cells
    assert set(bundle.predictions["split"]) == {"test"}
    n_test = bundle.predictions["study"].nunique()
    assert bundle.summary["n_test_studies"] == n_test
    assert bundle.metric("wma", GLOBAL, "auroc").n == n_test
    # Views carry independent signal: fusion beats every single view.
    fused = bundle.metric("wma", GLOBAL, "auroc").value
    assert fused > max(bundle.metric("wma", v, "auroc").value for v in MODEL_VIEWS)
    op = bundle.operating_points["wma"]
    assert 0 < op["threshold"] < 1 and 0.5 < op["sensitivity"]["value"] <= 1 and op["n_val"] > 0
    sens = op["sensitivity"]
    assert sens["ci_low"] <= sens["value"] <= sens["ci_high"] and op["called"] is True


def test_write_and_read_round_trip(evaluated, tmp_path):
    bundle, fusion = evaluated
    out = E.write_results(bundle, tmp_path / "results")
    for name in E.BUNDLE_FILES:
        assert (out / name).is_file(), name
    records = json.loads((out / "metrics.json").read_text())
    assert records and all(set(r) == set(E.METRIC_KEYS) for r in records)
    assert set(E.METRIC_KEYS) == {"target", "view", "metric", "value", "ci_low", "ci_high", "n", "n_positive", "note"}
    # Strict JSON everywhere (a browser's JSON.parse rejects NaN/Infinity).
    for name in E.BUNDLE_FILES:
        if name.endswith(".json"):
            json.loads((out / name).read_text(), parse_constant=lambda c: pytest.fail(f"{name}: {c}"))
    roc = json.loads((out / "roc.json").read_text())["wma|global"]
    assert roc["thresholds"][0] is None  # sklearn's +inf first threshold
    assert len(roc["band"]["fpr"]) == 101
    summary = json.loads((out / "summary.json").read_text())
    assert {"synthetic", "n_test_studies", "n_bootstrap", "resample_unit", "created"} <= set(summary)
    assert summary["resample_unit"] == "patient" and summary["n_bootstrap"] == 400

    back = E.read_results(out)
    assert len(back.metrics) == len(bundle.metrics)
    for a, b in zip(bundle.metrics, back.metrics):
        assert _same(a, b)
    pd.testing.assert_frame_equal(back.predictions, bundle.predictions[list(E.PREDICTION_COLUMNS)],
                                  check_dtype=False, rtol=1e-12)
    assert E.jsonable(back.roc) == E.jsonable(_inf_to_nan(bundle.roc))
    assert E.jsonable(back.bland_altman) == E.jsonable(bundle.bland_altman)
    assert E.jsonable(back.calibration) == E.jsonable(bundle.calibration)
    assert E.jsonable(back.operating_points) == E.jsonable(bundle.operating_points)
    assert back.summary == E.jsonable(bundle.summary)
    table = pd.read_csv(out / "table2.csv", keep_default_na=False)
    assert list(table.columns) == ["target", "label", "metric", "unit", *MODEL_VIEWS, GLOBAL]


def _same(a: MetricRecord, b: MetricRecord) -> bool:
    da, db = a.to_dict(), b.to_dict()
    for k in da:
        x, y = da[k], db[k]
        if isinstance(x, float) and math.isnan(x):
            assert isinstance(y, float) and math.isnan(y), k
        else:
            assert x == y, k
    return True


def _inf_to_nan(obj):
    if isinstance(obj, dict):
        return {k: _inf_to_nan(v) for k, v in obj.items()}
    if isinstance(obj, np.ndarray):
        return np.where(np.isfinite(obj), obj, np.nan)
    return obj


def test_pure_noise_ci_covers_half():
    clip_preds, labels = E.simulate_predictions(n_patients=160, seed=11, signal=0.0)
    bundle, _ = E.evaluate_predictions(clip_preds, labels, CONFIG)
    for t in ("wma", "lge"):
        rec = bundle.metric(t, GLOBAL, "auroc")
        assert rec.ci_low < 0.5 < rec.ci_high, rec


def test_auroc_ci_is_withheld_when_too_few_patients_have_the_finding(simulated):
    clip_preds, labels = simulated
    labels = labels.copy()
    test_patients = sorted(labels.loc[labels["split"] == "test", "patient"].unique())
    # T2 abnormal in exactly two test patients (all their studies), normal in everyone else.
    labels["t2_abnormal"] = labels["patient"].isin(test_patients[:2]).astype(float)
    bundle, _ = E.evaluate_predictions(clip_preds, labels, CONFIG)
    few = bundle.metric("t2_abnormal", GLOBAL, "auroc")
    assert math.isfinite(few.value) and math.isnan(few.ci_low) and math.isnan(few.ci_high)
    assert few.note == "interval withheld: 2 patients with the finding (minimum 5)"
    n_studies = labels[labels["patient"].isin(test_patients[:2])]["study"].nunique()
    assert few.n_positive == n_studies >= 2
    assert E.format_cell(few) == f"{few.value:.3f} (interval withheld: 2 patients with the finding (minimum 5))"
    many = bundle.metric("wma", GLOBAL, "auroc")
    assert many.note == "" and many.ci_low < many.value < many.ci_high and many.n_positive > 20
    assert bundle.roc["t2_abnormal|global"]["band"] == {} and len(bundle.roc["t2_abnormal|global"]["fpr"]) > 1
    assert len(bundle.roc["wma|global"]["band"]["tpr_low"]) == 101
    lenient = E.evaluate_predictions(clip_preds, labels, EvalConfig(n_bootstrap=400, min_class_units=2))[0]
    assert math.isfinite(lenient.metric("t2_abnormal", GLOBAL, "auroc").ci_low)


def test_too_few_units_counts_distinct_units_on_the_rarer_side():
    y = np.array([1, 1, 1, 0, 0, 0, 0, 0, 0], float)
    units = np.array(["a", "a", "b", "c", "d", "e", "f", "g", "g"])
    assert E.too_few_units_note(y, units, 5, "patient") == "interval withheld: 2 patients with the finding (minimum 5)"
    assert E.too_few_units_note(1 - y, units, 5, "study") == "interval withheld: 2 studies without the finding (minimum 5)"
    assert E.too_few_units_note(y, units, 2, "patient") == ""


def test_study_resampling_and_level(simulated):
    clip_preds, labels = simulated
    per_study = E.aggregate_per_study(clip_preds)
    fusion = E.fit_fusion(per_study[per_study["split"] == "val"], labels[labels["split"] == "val"])
    b95 = E.evaluate_split(per_study, labels, fusion, EvalConfig(n_bootstrap=400, resample_unit="study"))
    b80 = E.evaluate_split(per_study, labels, fusion,
                           EvalConfig(n_bootstrap=400, resample_unit="study", ci_level=0.8))
    r95, r80 = b95.metric("wma", GLOBAL, "auroc"), b80.metric("wma", GLOBAL, "auroc")
    assert r95.value == r80.value and r95.ci_low < r80.ci_low and r80.ci_high < r95.ci_high
    assert b80.summary["ci_level"] == 0.8 and b95.summary["resample_unit"] == "study"
    with pytest.raises(E.EvaluationError):
        E.evaluate_split(per_study, labels, fusion, EvalConfig(resample_unit="clip"))


def test_table2_text_and_frame(evaluated):
    bundle, _ = evaluated
    text = E.format_table2(bundle.metrics)
    for label in ("Any WMA — AUROC", "Any LGE — AUROC", "WMA in the view's segments — AUROC",
                  "Native T1 — MAE (ms)", "ECV — R²"):
        assert label in text
    wma = bundle.metric("wma", GLOBAL, "auroc")
    assert f"{wma.value:.3f} ({wma.ci_low:.3f} to {wma.ci_high:.3f})" in text
    frame = E.table2_frame(bundle.metrics)
    assert frame.loc[frame["target"] == "wma", GLOBAL].item() == E.format_cell(wma)


def test_paper_results_table():
    frame = E.paper_table2_frame()
    assert frame.loc[frame["target"] == "wma", GLOBAL].item() == "0.873 (0.816 to 0.922)"
    assert frame.loc[frame["target"] == "wma_view", "A4C"].item() == "0.817 (0.791 to 0.843)"
    t1 = frame[(frame["target"] == "t1") & (frame["metric"] == "mae")]
    assert t1[GLOBAL].item() == "49.8 (47.5 to 52.2)"
    assert all(r.n is None for r in E.PAPER_RECORDS)
    pd.testing.assert_frame_equal(E.PAPER_RESULTS, frame)


def test_no_validation_studies_falls_back_to_mean_fusion():
    clip_preds, labels = E.simulate_predictions(n_patients=80, seed=3, split_fractions=(0.5, 0.0, 0.5))
    bundle, fusion = E.evaluate_predictions(clip_preds, labels, EvalConfig(n_bootstrap=100))
    assert all(m.method == "mean" for subsets in fusion.models.values() for m in subsets.values())
    assert math.isfinite(bundle.metric("wma", GLOBAL, "auroc").value)
    assert math.isnan(bundle.operating_points["wma"]["threshold"])


def test_cli_registers_evaluate():
    import argparse

    from echocmr.commands.evaluate import config_from_args, register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["evaluate", "--run", "r", "--data", "d", "--out", "o",
                                      "--n-bootstrap", "500", "--resample", "study", "--seed", "4"])
    assert config_from_args(args) == EvalConfig(n_bootstrap=500, resample_unit="study", seed=4)
