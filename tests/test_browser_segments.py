"""Per-segment bullseyes in headless Chromium: Predict (example study) and Results ("Per segment")
with the shipped default, whose view models have segment outputs."""

from __future__ import annotations

import pytest
from test_browser import CHROMIUM, CHROMIUM_ARGS, Dashboard, screenshot, sync_api, wait_idle

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def app(tmp_path):
    """The app on the shipped default, which has per-segment outputs and held-out segment AUROCs.
    (The tiny segment bundle's Predict flow timed out under the two-worker full run; the shipped
    model is what a user sees.)"""
    with Dashboard(tmp_path / "home") as dashboard:
        yield dashboard


def _bullseye_count(page) -> int:
    """Plotly polar subplots drawn in the page (each bullseye is one)."""
    return page.locator(".js-plotly-plot .polarlayer .polar").count()


def test_bullseyes_on_predict_and_results(app):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        page.goto(f"{app.url}/predict")
        # Under load the first script run may still be going: click once it has finished, so the
        # click is not swallowed by a rerun.
        page.get_by_role("button", name="Try the synthetic example study").wait_for(timeout=120_000)
        wait_idle(page, 300)
        page.get_by_role("button", name="Try the synthetic example study").click()
        page.get_by_text("Where: per AHA segment").wait_for(timeout=300_000)
        wait_idle(page)
        page.locator(".js-plotly-plot .polarlayer").first.wait_for(timeout=60_000)
        assert _bullseye_count(page) >= 1
        # Hover a segment: the tooltip names the segment and its predicted probability.
        page.get_by_text("Where: per AHA segment").scroll_into_view_if_needed()
        wait_idle(page)
        screenshot(page, "predict_segments")
        text = page.inner_text("body")
        assert "Traceback" not in text and "mean over the study's used clips" in text

        page.goto(f"{app.url}/results")
        page.get_by_role("tab", name="Per segment").wait_for(timeout=120_000)
        page.get_by_role("tab", name="Per segment").click()
        page.get_by_text("hover a segment for its interval").wait_for(timeout=60_000)
        wait_idle(page)
        assert _bullseye_count(page) >= 3  # AUROC, and a test study's prediction beside its truth
        text = page.inner_text("body")
        assert "synthetic cohort" in text and "CIs:" in text and "Traceback" not in text
        screenshot(page, "results_segments")
        browser.close()
