"""Network mode end to end: a real OpenID Connect provider (oidc-provider-mock) on 127.0.0.1,
the dashboard with ECHOCMR_AUTH=oidc and Streamlit's st.login, driven in headless Chromium.

Anonymous sees only the sign-in; a viewer gets no Train page (not by URL either); a researcher
reaches the training actions, and the action (a synthesis the disk quota refuses) is audited.
"""

import json
import os

import pytest

from dashboard_server import Dashboard
from test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, ROOT, wait_idle

import oidc_provider_mock  # the `test` extra installs it: missing is a broken set-up, not a skip
from playwright import sync_api

pytestmark = [pytest.mark.browser, pytest.mark.slow]

RESEARCHER, VIEWER = "res@example.org", "view@example.org"


@pytest.fixture(scope="module")
def provider():
    with oidc_provider_mock.run_server_in_thread(port=0) as server:
        yield f"http://localhost:{server.server_port}"


@pytest.fixture(scope="module")
def app(provider, tmp_path_factory):
    root = tmp_path_factory.mktemp("auth")
    home, fake_home = root / "echocmr-home", root / "user-home"
    (fake_home / ".streamlit").mkdir(parents=True)
    roles = root / "roles.toml"
    roles.write_text(f'researchers = ["{RESEARCHER}"]\nviewers = ["{VIEWER}"]\n')
    # localhost, as the provider's redirect URI names it: the sign-in cookie is set for that host.
    dashboard = Dashboard(home, host="localhost", env={
        "HOME": str(fake_home), "ECHOCMR_AUTH": "oidc", "ECHOCMR_ROLES": str(roles),
        "ECHOCMR_DISK_MARGIN_BYTES": str(10**18)})
    # Streamlit reads ~/.streamlit/secrets.toml: the test's own, never the repository's.
    (fake_home / ".streamlit" / "secrets.toml").write_text(
        f'[auth]\nredirect_uri = "{dashboard.url}/oauth2callback"\ncookie_secret = "{os.urandom(16).hex()}"\n'
        f'client_id = "echocmr"\nclient_secret = "not-a-secret"\n'
        f'server_metadata_url = "{provider}/.well-known/openid-configuration"\n')
    with dashboard:
        yield dashboard.url, home


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"auth_{name}.png"))


def _sign_in(browser, url: str, user: str):
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(url)
    page.get_by_role("button", name="Sign in").wait_for(timeout=120_000)
    page.get_by_role("button", name="Sign in").click()
    page.locator("input[name=sub]").wait_for(timeout=60_000)  # the provider's own page
    page.locator("input[name=sub]").fill(user)
    page.get_by_role("button", name="Authorize").click()
    page.get_by_text(f"Signed in as {user}").wait_for(timeout=120_000)
    wait_idle(page)
    return page


def test_anonymous_sees_only_the_sign_in(app, browser):
    url, _ = app
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    for path in ("", "/train", "/predict"):
        page.goto(url + path)
        page.get_by_role("button", name="Sign in").wait_for(timeout=120_000)
        wait_idle(page)
        body = page.inner_text("body")
        assert "requires sign-in" in body and "Train a model" not in body and "Predict a study" not in body
    _shot(page, "anonymous")
    page.context.close()


def test_a_viewer_cannot_reach_the_training_actions(app, browser):
    url, _ = app
    page = _sign_in(browser, url, VIEWER)
    body = page.inner_text("body")
    assert "Predict a study" in body and "Train" not in page.inner_text("[data-testid=stSidebarNav]")
    page.goto(url + "/train")
    page.get_by_text(f"Signed in as {VIEWER}").wait_for(timeout=120_000)
    wait_idle(page)
    body = page.inner_text("body")
    assert "Start training" not in body and "Generate and prepare" not in body and "Train a model" not in body
    _shot(page, "viewer")
    page.context.close()


def test_a_researcher_reaches_the_training_actions_and_is_audited(app, browser):
    url, home = app
    page = _sign_in(browser, url, RESEARCHER)
    assert "Train" in page.inner_text("[data-testid=stSidebarNav]")
    page.goto(url + "/train")
    page.get_by_text("Train a model").first.wait_for(timeout=120_000)
    wait_idle(page)
    page.get_by_role("button", name="Generate and prepare").click()  # open: no data set yet
    page.get_by_text("synthetic patients need about").wait_for(timeout=60_000)  # the disk quota
    _shot(page, "researcher")
    body = page.inner_text("body")
    assert str(home) not in body and str(ROOT) not in body  # no absolute paths on the page
    records = [json.loads(line) for line in (home / "audit.jsonl").read_text().splitlines()]
    assert {"user": RESEARCHER, "role": "researcher", "action": "synthesise", "outcome": "allowed"}.items() \
        <= records[-1].items()
    page.context.close()
