"""The Results page's "Is the signal real?" tab renders the shipped analyses and a live comparison."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
HOME = ROOT / "dashboard" / "Home.py"


pytestmark = pytest.mark.usefixtures("app_home")


@pytest.mark.slow
def test_signal_tab_shows_views_vs_fused_and_the_shipped_analyses():
    analyses = ROOT / "checkpoints/default/results/analyses"
    assert all((analyses / f"{name}.json").is_file() for name in ("confounders", "learning_curve", "power"))
    at = AppTest.from_file(str(HOME), default_timeout=300)
    at.run()
    at.switch_page("app_pages/results.py")
    at.run()
    assert not at.exception, at.exception
    subheaders = [s.value for s in at.subheader]
    assert "Compare models on the same test patients" in subheaders
    captions = "\n".join(c.value for c in at.caption)
    assert "patient-bootstrap" in captions and "synthetic" in captions and "likelihood-ratio" in captions
    frames = [d.value for d in at.dataframe]
    comparison = next(f for f in frames if "ΔAUROC" in f.columns)
    assert set(comparison["B"]) == {"fused"} and {"A4C", "A2C", "PLAX"} <= set(comparison["A"])
    assert any("lr_p" in f.columns for f in frames)
    # The shipped learning curve (the default's own data) and power grid, each with its figure.
    assert {"Learning curve", "Power"} <= {e.label for e in at.expander}
    assert "Learning curve: held-out test AUROC" in captions and "AUROC interval lies above 0.5" in captions
    assert len(at.get("plotly_chart")) >= 5  # views vs fused, two confounder figures, learning curve, power


@pytest.mark.slow
def test_confounders_launched_in_the_background_for_a_run(tmp_path):
    import json
    import shutil
    import time

    from echocmr import processes
    from echocmr.analyse.covariates import demo_covariates
    from echocmr.analyse.launch import analysis_log, start_analysis

    # A run evaluated on the demo cohort: its results, and a manifest carrying the covariates.
    run, prepared = tmp_path / "run", tmp_path / "prepared"
    shutil.copytree(ROOT / "checkpoints/default/results", run / "results", ignore=shutil.ignore_patterns("analyses"))
    prepared.mkdir()
    covariates = demo_covariates(400, 0).assign(clip_id="c", patient="P", view="A4C", split="test", status="ok")
    covariates.to_csv(prepared / "manifest.csv", index=False)
    (run / "config.json").write_text(json.dumps({"data": str(prepared)}))
    start_analysis(run, "confounders")
    deadline = time.time() + 240
    while processes.job_status(analysis_log(run, "confounders")).state == "running" and time.time() < deadline:
        time.sleep(1)
    status = processes.job_status(analysis_log(run, "confounders"))
    assert status.state == "finished", status.log_tail
    record = json.loads((run / "results" / "analyses" / "confounders.json").read_text())
    assert record["inputs"]["covariates"] == "prepared manifest" and record["incremental"]


@pytest.mark.slow
def test_train_page_offers_the_analyses_of_an_evaluated_run(tmp_path):
    import json
    import os
    import shutil

    run = Path(os.environ["ECHOCMR_HOME"]) / "runs" / "run1"
    shutil.copytree(ROOT / "checkpoints/default/results", run / "results")
    (run / "config.json").write_text(json.dumps({"data": str(tmp_path / "prepared")}))
    (run / "status.json").write_text(json.dumps({"state": "finished", "started": "2026-01-01T00:00:00+00:00"}))
    at = AppTest.from_file(str(HOME), default_timeout=300)
    at.run()
    at.switch_page("app_pages/train.py")
    at.run()
    assert not at.exception, at.exception
    labels = [b.label for b in at.button]
    assert "Run confounders" in labels and "Run learning curve" in labels
    assert not next(b for b in at.button if b.label == "Run confounders").disabled
    assert any("Is the signal real?" in e.label for e in at.expander)
