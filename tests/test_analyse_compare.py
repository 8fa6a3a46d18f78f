"""Paired model comparison: DeLong against an independent O(n²) reference, calibration under the
null, the patient bootstrap, and ``echocmr compare`` on results bundles."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

from echocmr.analyse import AnalysisError
from echocmr.analyse import compare as C
from echocmr.analyse.delong import delong_single, delong_test
from echocmr.cli import main


def _psi(x: float, y: float) -> float:
    return 1.0 if x > y else 0.5 if x == y else 0.0


def reference_delong(y, a, b):
    """DeLong et al. (1988) written out directly: the Heaviside kernel over every
    (positive, negative) pair, structural components V10/V01, then S10/m + S01/n."""
    pos = [i for i in range(len(y)) if y[i] == 1]
    neg = [i for i in range(len(y)) if y[i] == 0]
    m, n = len(pos), len(neg)
    v10 = np.array([[np.mean([_psi(s[i], s[j]) for j in neg]) for i in pos] for s in (a, b)])
    v01 = np.array([[np.mean([_psi(s[i], s[j]) for i in pos]) for j in neg] for s in (a, b)])
    auc = v10.mean(axis=1)
    s10 = np.array([[np.sum((v10[r] - auc[r]) * (v10[c] - auc[c])) / (m - 1) for c in range(2)] for r in range(2)])
    s01 = np.array([[np.sum((v01[r] - auc[r]) * (v01[c] - auc[c])) / (n - 1) for c in range(2)] for r in range(2)])
    cov = s10 / m + s01 / n
    var = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    z = (auc[0] - auc[1]) / math.sqrt(var)
    return auc, cov, z, 2 * norm.sf(abs(z))


@pytest.mark.parametrize("seed,ties", [(0, False), (1, True), (2, True)])
def test_delong_matches_the_direct_quadratic_reference(seed, ties):
    rng = np.random.default_rng(seed)
    y = (rng.random(70) < 0.4).astype(int)
    a = y * 0.8 + rng.normal(size=70)
    b = 0.5 * a + y * 0.3 + rng.normal(size=70)
    if ties:  # rounded scores: many ties, counted one half
        a, b = np.round(a), np.round(b * 2) / 2
    result = delong_test(y, a, b)
    auc, cov, z, p = reference_delong(y, a, b)
    assert result.auc_a == pytest.approx(roc_auc_score(y, a), abs=1e-12)
    assert (result.auc_a, result.auc_b) == pytest.approx(tuple(auc), abs=1e-12)
    assert result.z == pytest.approx(z, rel=1e-9)
    assert result.p_value == pytest.approx(p, rel=1e-9)
    assert delong_single(y, a)[1] == pytest.approx(math.sqrt(cov[0, 0]), rel=1e-9)


def test_delong_is_calibrated_under_the_null():
    # Two equally good, correlated scores: the test must reject about 5 % of the time, and its
    # standard error must match the spread of ΔAUROC over repeated samples.
    rng = np.random.default_rng(7)
    deltas, ses, rejections = [], [], 0
    for _ in range(400):
        y = (rng.random(80) < 0.5).astype(int)
        shared = rng.normal(size=80)
        a = y + shared + rng.normal(size=80)
        b = y + shared + rng.normal(size=80)
        r = delong_test(y, a, b)
        deltas.append(r.delta)
        ses.append(r.se)
        rejections += r.p_value < 0.05
    assert 0.02 <= rejections / 400 <= 0.09
    assert np.mean(ses) == pytest.approx(np.std(deltas), rel=0.15)


def test_delong_detects_a_real_difference():
    rng = np.random.default_rng(3)
    y = (rng.random(300) < 0.5).astype(int)
    r = delong_test(y, 2 * y + rng.normal(size=300), 0.3 * y + rng.normal(size=300))
    assert r.delta > 0.2 and r.p_value < 1e-6


def _bundle_predictions(rng, patients: int, better: float, view_noise: float = 1.0) -> pd.DataFrame:
    rows = []
    for p in range(patients):
        for s in range(1 + p % 2):  # some patients have two studies
            y = float(rng.random() < 0.5)
            study = f"S{p:03d}{s}"
            fused = y * better + rng.normal()
            for view, score in [("global", fused), ("A4C", fused + rng.normal(scale=view_noise))]:
                rows.append({"study": study, "patient": f"P{p:03d}", "split": "test", "view": view,
                             "target": "wma", "y_true": y, "y_pred": score})
    return pd.DataFrame(rows)


def test_paired_bootstrap_uses_the_same_patients_for_both_models():
    rng = np.random.default_rng(0)
    pred = _bundle_predictions(rng, 120, better=1.5)
    rows = C._paired_rows(pred, pred, "wma", "global", "global", "test")
    same = C.paired_comparison(rows, "wma", ("A", "A"), n_bootstrap=300)
    # Identical models: every paired resample gives exactly 0 (an unpaired bootstrap would not).
    assert same.delta == 0 and same.ci_low == 0 and same.ci_high == 0
    views = C.compare_views(pred, n_bootstrap=500)
    assert [(r.model_a, r.model_b) for r in views] == [("A4C", "fused")]
    assert views[0].delta < 0 and views[0].ci_high < 0  # the noisier view is worse, and it shows
    assert views[0].n_patients == 120 and views[0].n_studies == len(rows)


def test_few_positive_patients_give_no_interval():
    rng = np.random.default_rng(1)
    pred = _bundle_predictions(rng, 40, better=1.0)
    pred.loc[pred["patient"] > "P003", "y_true"] = 0.0
    pred.loc[pred["patient"] <= "P003", "y_true"] = 1.0
    [row] = C.compare_views(pred, n_bootstrap=100)
    assert math.isnan(row.ci_low) and "fewer than 5 patients" in row.note and not math.isnan(row.delong_p)
    text = C.format_comparisons([row])
    assert "(no interval)" in text and "nan" not in text


def _write_bundle(folder, pred: pd.DataFrame):
    folder.mkdir(parents=True)
    pred.to_csv(folder / "predictions.csv", index=False)
    (folder / "summary.json").write_text(json.dumps({"synthetic": True}))
    return folder


def test_compare_cli_on_two_bundles_and_refusal_on_other_patients(tmp_path, capsys):
    rng = np.random.default_rng(5)
    a = _bundle_predictions(rng, 60, better=2.0)
    b = a.copy()
    b["y_pred"] = b["y_true"] * 0.2 + rng.normal(size=len(b))
    run_a, run_b = _write_bundle(tmp_path / "a" / "results", a), _write_bundle(tmp_path / "b", b)
    out = tmp_path / "cmp"
    assert main(["compare", str(tmp_path / "a"), str(run_b), "--n-bootstrap", "300", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "patient-bootstrap" in text and "synthetic" in text
    record = json.loads((out / "compare_runs.json").read_text())
    [row] = record["rows"]
    assert row["target"] == "wma" and row["delta"] > 0.2 and row["ci_low"] > 0 and row["delong_p"] < 0.01
    other = _write_bundle(tmp_path / "c", a[a["patient"] != "P000"])
    assert main(["compare", str(run_a), str(other)]) == 2
    assert "different_patients" in capsys.readouterr().err
    with pytest.raises(AnalysisError, match="no_predictions"):
        C.results_dir(tmp_path)


def test_compare_views_on_the_shipped_bundle(capsys):
    assert main(["compare", "checkpoints/default", "--views", "--n-bootstrap", "200"]) == 0
    text = capsys.readouterr().out
    assert "A4C" in text and "fused" in text and "wma" in text
