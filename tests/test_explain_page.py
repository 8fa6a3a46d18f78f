"""Predict page: the on-demand "Explain" control (the shipped model's own WMA score map) in AppTest."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
HOME = ROOT / "dashboard" / "Home.py"
BUNDLE = ROOT / "checkpoints" / "default"


@pytest.fixture(autouse=True)
def _env(app_home):
    assert (BUNDLE / "bundle.json").is_file(), "checkpoints/default is missing: run `make demo-assets`"


def _texts(at: AppTest) -> str:
    return "\n".join(str(e.value) for kind in ("markdown", "caption", "warning", "info", "error")
                     for e in getattr(at, kind))


@pytest.mark.slow  # in `make test`, not the quick run (> 5 s)
def test_explain_toggle_shows_overlay_video_and_curve():
    at = AppTest.from_file(str(HOME), default_timeout=600)
    at.run()
    at.switch_page("app_pages/predict.py")
    at.run()
    at.button[0].click().run()  # the synthetic example study
    assert not at.exception, at.exception
    toggles = [t for t in at.toggle if str(t.key).startswith("explain-")]
    assert toggles, "no Explain control under the clips that feed a view model"
    videos_before = len(at.get("video"))
    charts_before = len(at.get("plotly_chart"))
    toggles[0].set_value(True).run()
    assert not at.exception, at.exception
    assert len(at.get("video")) == videos_before + 1  # the overlay plays beside the clip
    assert len(at.get("plotly_chart")) == charts_before + 1  # the per-frame importance curve
    text = _texts(at)
    assert "score map" in text and "wma_view" in text and "synthetic" in text  # the shipped model has one
    # Off again: the overlay goes away (computed once, cached by bundle + clip).
    [t for t in at.toggle if t.key == toggles[0].key][0].set_value(False).run()
    assert len(at.get("video")) == videos_before
