"""Predict: a clip whose view the classifier is unsure of stays out of fusion until a user confirms it."""

from pathlib import Path

import pytest

from echocmr import clip_selection
from echocmr.bundle import load_bundle
from echocmr.study_prediction import ingest_study, predict_study

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = ROOT / "checkpoints" / "default"


@pytest.fixture(scope="module")
def study():
    folder = sorted(p for p in (BUNDLE / "examples").iterdir() if p.is_dir())[0]
    return ingest_study([(f.name, f.read_bytes()) for f in sorted(folder.glob("*.dcm"))]), load_bundle(str(BUNDLE))


def test_uncertain_clips_wait_for_confirmation(study, monkeypatch):
    items, bundle = study
    monkeypatch.setattr(clip_selection, "MIN_VIEW_CONFIDENCE", 0.0)  # no clip waits
    ungated = predict_study(items, bundle)
    monkeypatch.setattr(clip_selection, "MIN_VIEW_CONFIDENCE", 1.01)  # every call is now "unsure"
    waiting = predict_study(items, bundle)
    assert waiting.clips and all(c.awaiting_confirmation for c in waiting.clips)
    assert waiting.per_view == {} and waiting.fused == {} and all(not c.predictions for c in waiting.clips)
    # Confirming each clip's view (the classifier's own call) brings it back, with the same numbers.
    confirmed = predict_study(items, bundle, {c.index: c.view for c in waiting.clips})
    assert not any(c.awaiting_confirmation for c in confirmed.clips) and ungated.per_view
    assert set(confirmed.per_view) == set(ungated.per_view)
    for view, values in ungated.per_view.items():
        assert confirmed.per_view[view] == pytest.approx(values)
    assert set(confirmed.fused) == set(ungated.fused)


@pytest.fixture
def fresh_streamlit_caches():
    """Predictions are cached per process: one made at this test's patched threshold must not serve
    a later test of the same worker (nor an earlier one's serve this test)."""
    import streamlit as st

    st.cache_resource.clear()
    yield
    st.cache_resource.clear()


@pytest.mark.usefixtures("fresh_streamlit_caches", "app_home")
def test_predict_page_says_so(monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setattr(clip_selection, "MIN_VIEW_CONFIDENCE", 1.01)
    at = AppTest.from_file(str(ROOT / "dashboard" / "Home.py"), default_timeout=300)
    at.run()
    at.switch_page("app_pages/predict.py").run()
    at.button[0].click().run()
    assert not at.exception, at.exception
    assert any("left out of the study prediction" in str(w.value) for w in at.warning)
    assert any("Confirm or correct it above" in str(i.value) for i in at.info)
    assert not at.dataframe  # no study-level table while every clip waits
    boxes = [c for c in at.checkbox if str(c.key).startswith("confirm-")]
    for box in boxes:
        box.check()
    at.run()
    assert not at.exception, at.exception
    assert len(at.dataframe) == 2  # fused and per-view tables are back
