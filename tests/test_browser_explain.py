"""Predict page in headless Chromium: the Explain control plays a heat-map overlay beside its curve.

Screenshot: test-artifacts/page_predict_explain.png (look at it). Starts its own Streamlit on a
free 127.0.0.1 port with a private ECHOCMR_HOME; drives the system's Chromium (never downloaded).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
assert CHROMIUM is not None, "Debian chromium is not installed (apt-get install chromium)"
from playwright import sync_api  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("explain-home")
    port = _free_port()
    env = dict(os.environ, ECHOCMR_HOME=str(home))
    env.pop("ECHOCMR_MODEL", None)
    with open(home / "streamlit.log", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "dashboard/Home.py", "--server.port", str(port),
             "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).status == 200:
                    break
            except OSError:
                time.sleep(0.3)
        else:
            pytest.fail("streamlit did not start: " + (home / "streamlit.log").read_text()[-2000:])
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _idle(page, timeout_s: float = 300) -> None:
    page.wait_for_function("!document.querySelector('[data-testid=stStatusWidget]')", timeout=timeout_s * 1000)
    time.sleep(1.0)


def test_explain_overlay_plays_beside_its_curve(server):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        page.goto(f"{server}/predict")
        page.get_by_text("Try the synthetic example study").first.click(timeout=120_000)
        page.get_by_text("Study-level prediction").wait_for(timeout=300_000)
        _idle(page)
        videos_before = page.locator("video").count()
        page.get_by_text("Explain: where did the model look").first.click()
        page.get_by_text("What this is:").wait_for(timeout=300_000)
        _idle(page)
        assert page.locator("video").count() == videos_before + 1
        overlay = page.locator("video").nth(1)  # first clip card: its clip, then its overlay
        overlay.scroll_into_view_if_needed()
        page.wait_for_function("() => document.querySelectorAll('video')[1].readyState >= 2", timeout=60_000)
        assert page.locator(".js-plotly-plot").count() >= 1
        text = page.inner_text("body")
        assert "integrated gradients" in text and "Traceback" not in text
        page.get_by_text("What this is:").scroll_into_view_if_needed()
        time.sleep(1.5)  # the video shows a frame, the chart lays out
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "page_predict_explain.png"))
        browser.close()
