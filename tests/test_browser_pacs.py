"""The Predict page's "From PACS" source in headless Chromium against a real Orthanc: search by
patient id, pick the study, see its predictions; a search that finds nothing says so; the PACS
password never appears on the page."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from dashboard_server import Dashboard
from orthanc_server import PASSWORD, USER, needs_orthanc, start_orthanc
from test_browser import CHROMIUM, CHROMIUM_ARGS, screenshot, wait_idle

pytestmark = [pytest.mark.browser, pytest.mark.slow, needs_orthanc]


@pytest.fixture(scope="module")
def pacs(tmp_path_factory):
    """Orthanc holding one synthetic patient's echo studies."""
    import csv

    from echocmr.config import SynthConfig
    from echocmr.synth import generate_cohort

    root = tmp_path_factory.mktemp("pacs_browser")
    generate_cohort(dataclasses.replace(SynthConfig.small(seed=5), n_patients=1), root / "c")
    rows = list(csv.DictReader(open(root / "c" / "echo_index.csv")))
    server = start_orthanc(root / "orthanc")
    try:
        for row in rows:
            server.upload((root / "c" / row["file"]).read_bytes())
        yield server, rows[0]["patient_id"]
    finally:
        server.stop()


@pytest.fixture(scope="module")
def app(pacs, tmp_path_factory):
    server, _ = pacs
    home = tmp_path_factory.mktemp("pacs_home")
    secrets = home / "secrets.toml"
    secrets.write_text(f'[pacs]\nurl = "{server.dicomweb}"\nauth = "basic"\nusername = "{USER}"\n'
                       f'password = "{PASSWORD}"\n')
    with Dashboard(home, args=["--secrets.files", str(secrets)]) as dashboard:
        yield dashboard.url


@pytest.fixture(scope="module")
def page(app):
    from playwright import sync_api

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        yield page
        browser.close()


def _search(page, patient: str) -> None:
    page.get_by_text("From PACS").click()
    field = page.get_by_role("textbox", name="Patient ID")
    field.wait_for(timeout=60_000)
    field.fill(patient)
    field.press("Enter")
    wait_idle(page)
    page.get_by_role("button", name="Search the PACS").click()
    wait_idle(page)


def test_pacs_search_that_finds_nothing(page, app):
    page.goto(f"{app}/predict")
    page.get_by_text("Source").first.wait_for(timeout=120_000)
    wait_idle(page)
    _search(page, "NOBODY-123")
    page.get_by_text("No study with ultrasound matches").wait_for(timeout=60_000)


def test_pacs_study_predicts_in_the_page(page, app, pacs):
    _, patient = pacs
    page.goto(f"{app}/predict")
    page.get_by_text("Source").first.wait_for(timeout=120_000)
    wait_idle(page)
    _search(page, patient)
    page.get_by_text("ultrasound files").first.wait_for(timeout=60_000)
    page.get_by_role("button", name="Predict this study").click()
    page.get_by_text("Study-level prediction").wait_for(timeout=300_000)
    wait_idle(page)
    text = page.inner_text("body")
    assert "the A4C model" in text and "ultrasound files" in text and "Traceback" not in text
    assert PASSWORD not in text and PASSWORD not in page.content()
    path = screenshot(page, "predict_pacs")
    assert Path(path).stat().st_size > 0
