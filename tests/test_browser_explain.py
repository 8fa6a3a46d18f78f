"""Predict page in headless Chromium: the Explain control plays a heat-map overlay beside its curve.

Screenshot: test-artifacts/page_predict_explain.png (look at it). Starts its own Streamlit on a
free 127.0.0.1 port with a private ECHOCMR_HOME; drives the system's Chromium (never downloaded).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from dashboard_server import Dashboard
from test_browser import CHROMIUM, CHROMIUM_ARGS, sync_api, wait_idle

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with Dashboard(tmp_path_factory.mktemp("explain-home")) as dashboard:
        yield dashboard.url


def test_explain_overlay_plays_beside_its_curve(server):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        page.goto(f"{server}/predict")
        page.get_by_text("Try the synthetic example study").first.click(timeout=120_000)
        page.get_by_text("Study-level prediction").wait_for(timeout=300_000)
        wait_idle(page, 300)
        videos_before = page.locator("video").count()
        page.get_by_text("Explain: where did the model look").first.click()
        page.get_by_text("What this is:").wait_for(timeout=300_000)
        wait_idle(page, 300)
        assert page.locator("video").count() == videos_before + 1
        overlay = page.locator("video").nth(1)  # first clip card: its clip, then its overlay
        overlay.scroll_into_view_if_needed()
        page.wait_for_function("() => document.querySelectorAll('video')[1].readyState >= 2", timeout=60_000)
        assert page.locator(".js-plotly-plot").count() >= 1
        text = page.inner_text("body")
        assert "score map" in text and "Traceback" not in text  # the shipped model's own map
        page.get_by_text("What this is:").scroll_into_view_if_needed()
        time.sleep(1.5)  # the video shows a frame, the chart lays out
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "page_predict_explain.png"))
        browser.close()
