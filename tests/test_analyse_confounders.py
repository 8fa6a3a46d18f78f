"""Confounder analysis against known truth: the generator's tissue-confounded cohort (labels only,
nothing rendered), a score that reads anatomy only, and one that also sees the tissue."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from echocmr.analyse import AnalysisError
from echocmr.analyse.confounders import confounder_analysis, incremental_value, stratum_aurocs
from echocmr.analyse.covariates import covariates_from_tables, demo_covariates, study_frame
from echocmr.analyse.logistic import fit_logistic, likelihood_ratio_test
from echocmr.cli import main
from echocmr.config import SynthConfig
from echocmr.synth.cohort import generate_patients, max_wall_thickness_mm
from echocmr.synth.generate import CMR_COLUMNS, cmr_rows, study_rows


def _cohort_frame(confounded: bool, n: int = 400) -> pd.DataFrame:
    """One study per patient; ``score`` sees only anatomy and function (what an echo model can
    learn when tissue_signal is 0), ``tissue_score`` also sees the true T1 (a planted signal)."""
    rng = np.random.default_rng(0)
    rows = []
    for p in generate_patients(SynthConfig(n_patients=n, seed=3, tissue_confounded=confounded)):
        cmr = p.cmrs[0]
        anatomy = 0.5 * (max_wall_thickness_mm(p.heart) - 10) - 0.03 * (p.lvef_pct - 55) + 0.8 * p.any_wma
        rows.append({"target": "t1_abnormal", "study": p.patient_id, "patient": p.patient_id,
                     "y": float(cmr.t1_ms > 1060), "score": expit(anatomy + rng.normal(0, 0.5)),
                     "tissue_score": expit(anatomy + (p.heart.t1_ms - 1000) / 40 + rng.normal(0, 0.5)),
                     "wma": float(p.any_wma), "lvef_pct": cmr.lvef_pct, "wall_thickness_mm": cmr.wall_thickness_mm})
    return pd.DataFrame(rows)


def test_generator_writes_lvef_and_wall_thickness():
    patients = generate_patients(SynthConfig(n_patients=60, seed=1))
    reports = pd.DataFrame(cmr_rows(patients))
    assert tuple(reports.columns) == CMR_COLUMNS and {"lvef_pct", "wall_thickness_mm"} <= set(reports.columns)
    wall = {p.patient_id: max_wall_thickness_mm(p.heart) for p in patients}
    measured = reports["wall_thickness_mm"].astype(float)
    assert np.abs(measured - reports["patient_id"].map(wall)).max() < 4.0
    amyloid = [max_wall_thickness_mm(p.heart) for p in patients if p.disease in ("amyloid", "hypertrophic")]
    normal = [max_wall_thickness_mm(p.heart) for p in patients if p.disease == "normal"]
    assert min(amyloid) > max(normal)  # thick walls are what these diseases look like


def test_tissue_signal_of_a_confounded_cohort_is_explained_by_anatomy():
    frame = _cohort_frame(confounded=True)
    strata = {s.stratum: s for s in stratum_aurocs(frame, "t1_abnormal", n_bootstrap=200)}
    assert strata["all studies"].ci_low > 0.5  # an apparent tissue "signal"…
    assert strata["wall < 12 mm"].ci_low < 0.5  # …that is gone where walls are normal
    function = incremental_value(frame, "t1_abnormal", "LVEF + WMA", ("lvef_pct", "wma"), n_bootstrap=100)
    anatomy = incremental_value(frame, "t1_abnormal", "LVEF + WMA + wall thickness",
                                ("lvef_pct", "wma", "wall_thickness_mm"), n_bootstrap=100)
    assert function.lr_p < 0.01  # function alone does not explain it…
    assert anatomy.lr_p > 0.05 and anatomy.ci_low <= 0 <= anatomy.ci_high  # …anatomy does
    # A model that also sees the tissue keeps its value beyond anatomy.
    tissue = incremental_value(frame.assign(score=frame["tissue_score"]), "t1_abnormal", "anatomy",
                               ("lvef_pct", "wma", "wall_thickness_mm"), n_bootstrap=100)
    assert tissue.lr_p < 1e-6 and tissue.ci_low > 0


def test_no_signal_without_confounding():
    frame = _cohort_frame(confounded=False)
    [all_studies, *_] = stratum_aurocs(frame, "t1_abnormal", n_bootstrap=200)
    assert all_studies.ci_low < 0.5 < all_studies.ci_high


def test_likelihood_ratio_matches_a_chi_square_under_the_null():
    rng = np.random.default_rng(0)
    p_values = []
    for _ in range(200):
        x = rng.normal(size=(150, 2))
        y = (rng.random(150) < expit(x[:, 0])).astype(float)
        p_values.append(likelihood_ratio_test(fit_logistic(x[:, :1], y), fit_logistic(x, y)).p_value)
    assert 0.02 <= np.mean(np.array(p_values) < 0.05) <= 0.1
    fit = fit_logistic(x, y)
    assert fit.converged and abs(fit.coef[1] - 1.0) < 0.6


def test_demo_covariates_use_the_prepared_pseudonyms():
    patients = generate_patients(SynthConfig(n_patients=30, seed=0))
    index = pd.DataFrame(study_rows(patients))
    reports = pd.DataFrame(cmr_rows(patients)).replace("", np.nan)
    table = covariates_from_tables(index, reports, b"demo-0")
    assert table["study"].str.match(r"^S[0-9a-f]{10}$").all()
    assert table.equals(demo_covariates(30, 0))
    pred = pd.DataFrame({"study": ["Snope"], "patient": ["P1"], "split": ["test"], "view": ["global"],
                         "target": ["wma"], "y_true": [1.0], "y_pred": [0.5]})
    with pytest.raises(AnalysisError, match="no_matching_studies"):
        study_frame(pred, table)


def test_confounders_cli_on_the_shipped_bundle(tmp_path, capsys):
    out = tmp_path / "analyses"
    assert main(["analyse", "confounders", "--run", "checkpoints/default", "--demo-cohort", "400,0",
                 "--n-bootstrap", "50", "--out", str(out)]) == 0
    assert "WMA-negative" in capsys.readouterr().out
    record = json.loads((out / "confounders.json").read_text())
    wma = [r for r in record["incremental"] if r["target"] == "wma"]
    # The covariates rebuilt from the demo cohort's seed (no rendering) give the shipped analysis,
    # which was run on the prepared cohort itself: the same likelihood-ratio tests.
    shipped = json.loads(Path("checkpoints/default/results/analyses/confounders.json").read_text())
    shipped_wma = [r for r in shipped["incremental"] if r["target"] == "wma"]
    assert record["synthetic"] is True and wma and len(wma) == len(shipped_wma)
    for ours, theirs in zip(wma, shipped_wma):
        assert ours["covariates"] == theirs["covariates"] and ours["lr_p"] == pytest.approx(theirs["lr_p"], rel=1e-6)
    assert {r["stratum"] for r in record["rows"]} >= {"WMA-negative", "LVEF ≥ 50 %"}
    assert not any(r["target"] == "wma" and r["stratum"] == "WMA-negative" for r in record["rows"])
    assert all(math.isfinite(r["auroc"]) for r in record["rows"] if r["target"] == "wma")
    assert main(["analyse", "confounders", "--run", "checkpoints/default"]) == 2


def test_report_labels_carry_optional_covariates():
    from echocmr import labels as lab
    from echocmr.config import LabelConfig

    reports = pd.DataFrame(cmr_rows(generate_patients(SynthConfig(n_patients=5, seed=2)))).replace("", np.nan)
    with_them = lab.report_labels(reports, LabelConfig())
    assert with_them["lvef_pct"].notna().all() and with_them["wall_thickness_mm"].between(5, 30).all()
    without = lab.report_labels(reports.drop(columns=["lvef_pct", "wall_thickness_mm"]), LabelConfig())
    assert without["lvef_pct"].isna().all() and without["wall_thickness_mm"].isna().all()
