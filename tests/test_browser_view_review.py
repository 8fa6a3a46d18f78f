"""View review end to end in headless Chromium: review → save → fine-tune (tiny) → accuracy on the page."""

from __future__ import annotations

import re

import pytest

from dashboard_server import Dashboard
from prepared_factory import make_prepared
from test_browser import CHROMIUM, CHROMIUM_ARGS, screenshot, sync_api, wait_idle

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def app(tmp_path, monkeypatch):
    home = tmp_path / "home"
    make_prepared(home / "prepared" / "review", views={"A4C": 6, "A2C": 6, "PLAX": 6, "PSAX": 4}, n_frames=24)
    dashboard = Dashboard(home)
    dashboard.start()
    yield dashboard
    dashboard.stop()


def test_review_save_fine_tune_accuracy(app):
    from echocmr.view_review import read_labels

    prepared = app.home / "prepared" / "review"
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        page.goto(f"{app.url}/view-review")
        page.get_by_text("Clips confirmed").wait_for(timeout=240_000)
        page.get_by_label("Confirmed by", exact=True).and_(page.locator("input")).fill("J. Smith")
        page.get_by_label("Confirmed by", exact=True).and_(page.locator("input")).press("Enter")
        wait_idle(page)
        for round_ in range(3):  # three pages of eight: every clip gets its true view
            page.locator("video").first.wait_for(timeout=120_000)
            wait_idle(page)
            # A rerun can leave the previous run's elements on screen for a moment: wait for one page.
            page.wait_for_function("document.querySelectorAll('[data-testid=stRadio]').length <= 8", timeout=60_000)
            wait_idle(page)
            radios = page.locator("[data-testid=stRadio]")
            for k in range(radios.count()):
                radio = radios.nth(k)
                clip_id = re.search(r"View of ([a-z0-9]+?\d{3})(?=[A-Z\s])", radio.inner_text()).group(1)
                truth = "Other" if clip_id.startswith("psax") else clip_id[:-3].upper()
                radio.get_by_text(truth, exact=True).click()
            if round_ == 0:
                screenshot(page, "view_review_grid")
                page.set_viewport_size({"width": 1400, "height": 1000})
            page.get_by_role("button", name="Confirm these").click()
            page.get_by_text(f"{min(22, 8 * (round_ + 1))} of 22").wait_for(timeout=60_000)
        page.get_by_text("Every clip of this cohort is confirmed").wait_for(timeout=60_000)
        labels = read_labels(prepared)
        assert len(labels) == 22 and set(labels["confirmed_by"]) == {"J. Smith"}
        assert all(v == ("other" if c.startswith("psax") else c[:-3].upper()) for c, v in zip(labels["clip_id"], labels["view"]))
        page.get_by_label("Epochs", exact=True).and_(page.locator("input")).fill("1")
        page.get_by_label("Epochs", exact=True).and_(page.locator("input")).press("Enter")
        page.wait_for_timeout(1500)
        page.get_by_role("button", name="Fine-tune on confirmed labels").click()
        page.get_by_text("Held-out accuracy").wait_for(timeout=300_000)
        assert "95% Wilson score interval" in page.content()
        assert page.locator("[data-testid=stDataFrame]").count() == 3  # counts, per-view accuracy, confusion
        wait_idle(page)
        screenshot(page, "view_review")
        browser.close()

