"""The Results page's "Is the signal real?" tab renders the shipped analyses and a live comparison."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
HOME = ROOT / "dashboard" / "Home.py"


@pytest.fixture(autouse=True)
def _env(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "dashboard"))
    monkeypatch.setenv("ECHOCMR_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ECHOCMR_MODEL", raising=False)


@pytest.mark.slow
def test_signal_tab_shows_views_vs_fused_and_the_shipped_confounders():
    assert (ROOT / "checkpoints/default/results/analyses/confounders.json").is_file()
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
