"""Honest numbers (issue 13): BCa against scipy, calls only with signal, rates with intervals."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from echocmr import bootstrap as B
from echocmr import calls as C
from echocmr import metrics as M
from echocmr.bootstrap_ci import (
    IntervalError,
    IntervalSpec,
    bca_bounds,
    describe_intervals,
    estimate,
    format_interval,
    jackknife_counts,
)
from echocmr.metrics import MetricRecord


def _scipy_bca(data, statistic, level, n_resamples, seed):
    from scipy.stats import bootstrap

    res = bootstrap(data, statistic, n_resamples=n_resamples, confidence_level=level, method="BCa",
                    paired=True, vectorized=False, random_state=np.random.default_rng(seed))
    return res.confidence_interval.low, res.confidence_interval.high


@pytest.mark.parametrize("level", [0.95, 0.9])
def test_bca_of_a_skewed_mean_matches_scipy(level):
    rng = np.random.default_rng(0)
    x = rng.exponential(1.0, 60)
    counts = B.bootstrap_counts(None, x.size, 20_000, np.random.default_rng(1))
    units = np.arange(x.size).astype(str)
    spec = IntervalSpec(level=level, method="bca")
    ours = estimate(float(x.mean()), lambda c: B.bootstrap_mean(x, c), counts, spec, units)
    low, high = _scipy_bca((x,), np.mean, level, 20_000, 2)
    assert abs(ours.low - low) < 0.01 and abs(ours.high - high) < 0.01
    pct = estimate(float(x.mean()), lambda c: B.bootstrap_mean(x, c), counts, IntervalSpec(level=level), units)
    assert ours.high > pct.high  # BCa shifts right for a right-skewed mean


def test_bca_of_an_auroc_near_one_matches_scipy():
    rng = np.random.default_rng(3)
    y = np.r_[np.ones(30), np.zeros(40)]
    s = y * 2.5 + rng.normal(0, 1, y.size)
    counts = B.bootstrap_counts(None, y.size, 20_000, np.random.default_rng(4))
    spec = IntervalSpec(method="bca")
    ours = estimate(M.auroc(y, s), lambda c: B.bootstrap_auroc(y, s, c), counts, spec, np.arange(y.size))
    low, high = _scipy_bca((y, s), lambda a, b: M.auroc(a, b) if 0 < a.sum() < a.size else np.nan,
                           0.95, 20_000, 5)
    assert abs(ours.low - low) < 0.01 and abs(ours.high - high) < 0.01


def test_jackknife_leaves_out_one_unit():
    jack = jackknife_counts(np.array(["p1", "p1", "p2", "p3"]))
    assert jack.tolist() == [[0, 0, 1, 1], [1, 1, 0, 1], [1, 1, 1, 0]]
    assert math.isnan(bca_bounds(0.5, np.full(100, 0.6), np.array([0.5, 0.6]), 0.95).low)
    with pytest.raises(IntervalError):
        IntervalSpec(method="studentized")


def test_intervals_are_written_readably_and_labelled_from_the_results():
    assert format_interval(-0.417, -0.021) == "\u22120.417 to \u22120.021"
    assert format_interval(0.816, 0.922) == "0.816 to 0.922"
    text = describe_intervals({"ci_level": 0.9, "ci_method": "bca", "n_bootstrap": 2000, "resample_unit": "patient"})
    assert text == "90 % CIs: BCa bootstrap, 2000 resamples of patients"


def test_one_positive_call_convention():
    from echocmr.metrics import is_positive

    assert bool(is_positive(0.5, 0.5)) is True and bool(is_positive(0.49, 0.5)) is False
    y = np.array([1.0, 0.0, 1.0, 0.0])
    s = np.array([0.5, 0.5, 0.7, 0.2])
    assert M.sensitivity_specificity(y, s, 0.5) == (1.0, 0.5)


def test_no_signal_target_is_never_called():
    noise = MetricRecord("t2_abnormal", "global", "auroc", 0.56, 0.45, 0.68, 100)
    signal = MetricRecord("wma", "global", "auroc", 0.80, 0.71, 0.88, 100)
    withheld = MetricRecord("t2_abnormal", "global", "auroc", 0.70, math.nan, math.nan, 100,
                            note="interval withheld: 2 patients with the finding (minimum 5)")
    r2 = MetricRecord("t2", "global", "r2", -0.03, -0.2, 0.01, 100)
    assert C.signal_evidence(signal)[0] is True
    for record in (noise, withheld, r2, None):
        assert C.signal_evidence(record)[0] is False
    assert "withheld" in C.signal_evidence(withheld)[1]
    assert C.continuous_point("t2", r2)["called"] is False


def test_rates_carry_patient_level_intervals_and_withhold_them_when_few():
    rng = np.random.default_rng(0)
    y = (rng.random(200) < 0.4).astype(float)
    s = y + rng.normal(0, 0.7, y.size)
    units = np.array([f"patient:{i // 2}" for i in range(y.size)])
    counts = B.bootstrap_counts(units, y.size, 2000, np.random.default_rng(1))
    rates = C.rates_with_intervals(y, s, 0.5, counts, units, IntervalSpec(n_bootstrap=2000), 5)
    sens, spec = M.sensitivity_specificity(y, s, 0.5)
    assert rates["sensitivity"]["value"] == sens and rates["specificity"]["value"] == spec
    for name in C.RATES:
        r = rates[name]
        assert r["ci_low"] < r["value"] < r["ci_high"] and r["note"] == ""
    few = C.rates_with_intervals(y[:12], s[:12], 0.5, counts[:, :12], units[:12], IntervalSpec(), 5)
    assert any(math.isnan(r["ci_low"]) and "interval withheld" in r["note"] for r in few.values())


def test_evaluation_calls_only_targets_with_signal():
    from echocmr import evaluate as E
    from echocmr.config import EvalConfig

    clip_preds, labels = E.simulate_predictions(n_patients=160, seed=11, signal=1.5)
    # LGE carries no signal: every view's prediction is replaced by noise.
    clip_preds["lge"] = np.random.default_rng(0).random(len(clip_preds))
    bundle, _ = E.evaluate_predictions(clip_preds, labels, EvalConfig(n_bootstrap=300, ci_method="bca"))
    ops = bundle.operating_points
    assert ops["wma"]["called"] is True and ops["lge"]["called"] is False
    assert "lower bound" in ops["lge"]["evidence"] and ops["t1"]["kind"] == "continuous"
    assert bundle.summary["ci_method"] == "bca" and bundle.summary["ci_level"] == 0.95
    assert isinstance(ops["wma"]["ppv"], dict)
    assert pd.notna(bundle.metric("wma", "global", "auroc").ci_low)


# ----------------------------------------------------------------------------- test-time windows


@pytest.mark.parametrize("n_total", [200, 61, 60, 45, 16, 15, 3, 1])
@pytest.mark.parametrize("windows", [1, 4, "all"])
def test_windows_never_wrap(n_total, windows):
    from echocmr.windows import window_indices

    found = window_indices(n_total, 16, 4, windows)
    idx = found.indices
    assert idx.shape[1] == 16 and idx.min() >= 0 and idx.max() < n_total
    assert (np.diff(idx, axis=1) >= 0).all()  # increasing inside every window: no phase jump
    assert len({tuple(w) for w in idx}) == len(idx)  # distinct windows only
    if n_total >= 61:
        assert found.period == 4
    elif n_total >= 16:
        assert found.period < 4 and (np.diff(idx, axis=1) == found.period).all()


def test_windows_all_averages_every_start():
    from echocmr.windows import window_indices

    found = window_indices(100, 16, 4, "all")
    assert found.starts == list(range(40))
    assert window_indices(100, 16, 4, 4).starts == [0, 13, 26, 39]
    with pytest.raises(ValueError):
        window_indices(100, 16, 4, 0)


def test_predict_clips_averages_distinct_windows():
    """A short video's windows are its distinct ones: asking for 4 or 8 gives the same mean."""
    import torch

    from echocmr.model_runner import LoadedModel, predict_clips

    class MeanFrame(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.zero = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x):  # (B, C, T, H, W) -> (B, 1): mean grey level of the clip
            return x.mean(dim=(1, 2, 3, 4))[:, None] + self.zero

    meta = {"kind": "view_model", "model": {"n_frames": 4, "period": 2},
            "normalisation": {"mean": 0.0, "std": 1.0}, "target_scaling": {"t1": {"mean": 0.0, "std": 1.0}}}
    model = LoadedModel(MeanFrame(), meta, ("t1",))
    video = np.repeat(np.arange(10, dtype=np.uint8)[:, None, None], 112, 1).repeat(112, 2)
    four = predict_clips(model, [video], 4)
    assert np.allclose(four, predict_clips(model, [video], 8))
    # starts 0..3 (span 7 of 10 frames), each mean = start + 3
    assert np.allclose(predict_clips(model, [video], "all"), np.mean([s + 3 for s in range(4)]))


# ----------------------------------------------------------------------------- unit of analysis


def test_patient_unit_gives_one_prediction_per_patient():
    from echocmr import evaluate as E
    from echocmr.config import EvalConfig
    from echocmr.units import to_patient_level

    long = pd.DataFrame({"study": ["s1", "s2", "s3"], "patient": ["p1", "p1", "p2"], "split": "test",
                         "view": "global", "target": "wma", "y_true": [0.0, 1.0, 0.0], "y_pred": [0.2, 0.6, 0.1]})
    out = to_patient_level(long)
    assert out["study"].tolist() == ["patient:p1", "patient:p2"]
    assert out["y_true"].tolist() == [1.0, 0.0] and out["y_pred"].tolist() == pytest.approx([0.4, 0.1])
    clip_preds, labels = E.simulate_predictions(n_patients=120, seed=12)
    bundle, _ = E.evaluate_predictions(clip_preds, labels, EvalConfig(n_bootstrap=100, unit="patient"))
    s = bundle.summary
    assert s["unit"] == "patient" and s["n_test_units"] == s["n_test_patients"] < s["n_test_studies"]
    assert bundle.metric("wma", "global", "auroc").n == s["n_test_patients"]


# ----------------------------------------------------------------------------- stratified split


def test_stratified_split_holds_each_findings_share():
    from echocmr.labels import assign_splits
    from echocmr.splits import split_sizes, stratified_splits

    rng = np.random.default_rng(0)
    n = 400
    findings = pd.DataFrame({"wma": rng.random(n) < 0.45, "t2_abnormal": rng.random(n) < 0.07,
                             "ecv_abnormal": rng.random(n) < 0.12},
                            index=[f"P{i:04d}" for i in range(n)])
    fractions = (0.7, 0.1, 0.2)
    splits = stratified_splits(findings, fractions, seed=0)
    assert splits == stratified_splits(findings, fractions, seed=0)  # deterministic from the seed
    assert splits != stratified_splits(findings, fractions, seed=1)
    split = pd.Series(splits).reindex(findings.index)
    assert split.value_counts().to_dict() == {k: v for k, v in split_sizes(n, fractions).items()}
    random = pd.Series(assign_splits(pd.Series(findings.index), fractions, 0)).reindex(findings.index)
    for finding in findings.columns:
        for name, fraction in zip(("train", "val", "test"), fractions):
            want = fraction * findings[finding].sum()
            assert abs(findings.loc[split == name, finding].sum() - want) < 1.5
        # the random cut of the same cohort misses the shares by more
    worst = max(abs(findings.loc[random == "test", f].sum() - 0.2 * findings[f].sum()) for f in findings)
    assert worst > 1.5


def test_bundle_content_stamp_changes_with_the_bundle(tmp_path):
    from echocmr.bundle import content_stamp

    (tmp_path / "results").mkdir()
    (tmp_path / "bundle.json").write_text('{"name": "a"}')
    (tmp_path / "results" / "operating_points.json").write_text("{}")
    first = content_stamp(tmp_path)
    assert content_stamp(tmp_path) == first
    (tmp_path / "results" / "operating_points.json").write_text('{"wma": {}}')
    assert content_stamp(tmp_path) != first


def test_evaluate_cli_takes_the_new_options():
    from echocmr import cli
    from echocmr.commands.evaluate import config_from_args

    parser = cli.build_parser()
    args = parser.parse_args(["evaluate", "--run", "r", "--data", "d", "--out", "o", "--ci-method", "bca",
                              "--windows", "all", "--unit", "patient", "--ci-level", "0.9"])
    config = config_from_args(args)
    assert (config.ci_method, config.tta_clips, config.unit, config.ci_level) == ("bca", "all", "patient", 0.9)
    with pytest.raises(SystemExit):
        parser.parse_args(["evaluate", "--run", "r", "--data", "d", "--out", "o", "--windows", "0"])


def test_predict_json_calls_only_findings_with_signal():
    import json
    from types import SimpleNamespace

    from echocmr.fusion import FusionModel
    from echocmr.study_prediction import StudyPrediction, _fuse

    rate = {"value": 0.8, "ci_low": 0.7, "ci_high": 0.9, "note": ""}
    points = {"wma": {"kind": "binary", "threshold": 0.5, "called": True, "evidence": "AUROC 0.9 (0.8 to 0.95)",
                      **{r: rate for r in C.RATES}},
              "lge": {"kind": "binary", "threshold": 0.5, "called": False, "evidence": "lower bound not above 0.5",
                      **{r: rate for r in C.RATES}},
              "t1": {"kind": "continuous", "threshold": 1060.0, "called": False, "evidence": "R² −0.1"}}
    bundle = SimpleNamespace(fusion=FusionModel(models={"wma": {}, "lge": {}, "t1": {}}), operating_points=points,
                             results_summary={"ci_level": 0.95, "ci_method": "bca", "n_bootstrap": 100,
                                              "resample_unit": "patient"})
    fused = _fuse({"A4C": {"wma": 0.5, "lge": 0.9, "t1": 1200.0}}, bundle)
    assert fused["wma"].call is True and fused["wma"].status == "positive"  # 0.5 >= 0.5: positive
    assert fused["lge"].call is None and fused["lge"].status == C.NOT_CALLED
    assert fused["t1"].call is None and fused["t1"].status == C.NOT_CALLED
    assert fused["wma"].interval == "95 % CIs: BCa bootstrap, 100 resamples of patients"
    out = StudyPrediction([], [], {}, fused, {}, True).to_json()
    text = json.dumps(out, allow_nan=False)
    assert out["global"]["lge"]["status"] == C.NOT_CALLED and out["global"]["wma"]["rates"]["sensitivity"]["ci_low"] == 0.7
    assert "NaN" not in text


def test_a_rate_of_100_percent_gets_an_exact_bound_not_a_point():
    from scipy.stats import beta

    y = np.r_[np.ones(20), np.zeros(30)]
    s = np.r_[np.full(20, 0.9), np.full(30, 0.1)]  # perfect separation: specificity 100 %
    units = np.array([f"patient:{i}" for i in range(50)])
    counts = B.bootstrap_counts(units, 50, 500, np.random.default_rng(0))
    spec_rate = C.rates_with_intervals(y, s, 0.5, counts, units, IntervalSpec(), 5)["specificity"]
    assert spec_rate["value"] == 1.0 and spec_rate["ci_high"] == 1.0
    assert spec_rate["ci_low"] == pytest.approx(beta.ppf(0.025, 30, 1)) and spec_rate["ci_low"] < 1.0
    assert "exact" in spec_rate["note"]
