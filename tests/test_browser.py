"""End to end in headless Chromium: upload a study, open every page, train and stop a tiny run.

Screenshots go to test-artifacts/ (git-ignored); `ECHOCMR_UPDATE_SCREENSHOTS=1` also copies them
to docs/img/page_<name>.png for the README. Playwright never downloads a browser here: it drives
the system's Chromium.
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = ROOT / "checkpoints" / "default"
ARTIFACTS = ROOT / "test-artifacts"
DOCS_IMG = ROOT / "docs" / "img"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
MAX_SCREENSHOT_BYTES = 400_000

# `make test` installs playwright and .ci/run installs Debian's chromium: missing pieces are a
# broken set-up and fail loudly rather than skip the only real-browser coverage.
assert CHROMIUM is not None, "Debian chromium is not installed (apt-get install chromium)"
assert (BUNDLE / "bundle.json").is_file(), "checkpoints/default is missing: run `make demo-assets`"
from playwright import sync_api  # noqa: E402


def _cli(*args: str, env: dict) -> None:
    subprocess.run([sys.executable, "-m", "echocmr.cli", *args], env=env, check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=600)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A private ECHOCMR_HOME holding a small prepared synthetic data set."""
    home = tmp_path_factory.mktemp("echocmr-home")
    env = dict(os.environ, ECHOCMR_HOME=str(home))
    env.pop("ECHOCMR_MODEL", None)
    _cli("synth", "--small", "--out", str(home / "cohorts" / "small"), env=env)
    _cli("prepare", "--cohort", str(home / "cohorts" / "small"), "--out", str(home / "prepared" / "small"),
         "--use-known-views", env=env)
    return home


@pytest.fixture(scope="module")
def server(home):
    port = _free_port()
    env = dict(os.environ, ECHOCMR_HOME=str(home))
    env.pop("ECHOCMR_MODEL", None)
    log = open(home / "streamlit.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "dashboard/Home.py", "--server.port", str(port),
                             "--server.headless", "true", "--browser.gatherUsageStats", "false"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).status == 200:
                break
        except OSError:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail("streamlit did not start: " + (home / "streamlit.log").read_text()[-2000:])
    yield url
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="module")
def page(server):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        yield context.new_page()
        browser.close()


def open_page(page, url: str, text: str, timeout_s: float = 120) -> None:
    page.goto(url)
    page.get_by_text(text, exact=False).first.wait_for(timeout=timeout_s * 1000)
    wait_idle(page)


def wait_idle(page, timeout_s: float = 120) -> None:
    """Until Streamlit has finished the script run (no 'Running…' status widget)."""
    page.wait_for_function("!document.querySelector('[data-testid=stStatusWidget]')", timeout=timeout_s * 1000)
    time.sleep(1.0)  # charts and videos lay out after the run ends


def screenshot(page, name: str) -> Path:
    """Whole page (Streamlit scrolls inside its main block, so grow the viewport to fit it)."""
    height = page.evaluate("Math.max(...[...document.querySelectorAll("
                           "'[data-testid=stMain], [data-testid=stMainBlockContainer]')].map(e => e.scrollHeight))")
    page.set_viewport_size({"width": 1280, "height": min(int(height) + 40, 4000)})
    time.sleep(1.0)
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"page_{name}.png"
    page.screenshot(path=str(path))
    page.set_viewport_size({"width": 1280, "height": 900})
    _shrink(path)
    if os.environ.get("ECHOCMR_UPDATE_SCREENSHOTS"):
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, DOCS_IMG / path.name)
    return path


def _shrink(path: Path) -> None:
    """Downscale until the PNG is under the README size budget."""
    import cv2

    image = cv2.imread(str(path))
    scale = 1.0
    while path.stat().st_size > MAX_SCREENSHOT_BYTES and scale > 0.3:
        scale *= 0.85
        small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(path), small, [cv2.IMWRITE_PNG_COMPRESSION, 9])


def body(page) -> str:
    return page.inner_text("body")


def test_home(page, server):
    open_page(page, server, "Active model")
    text = body(page)
    assert "Synthetic cohort" in text and "AUROC" in text
    assert "Traceback" not in text
    screenshot(page, "home")


def test_predict_upload_plays_video(page, server, home):
    open_page(page, f"{server}/predict", "Clips of one echo study")
    study = sorted(p for p in (BUNDLE / "examples").iterdir() if p.is_dir())[0]
    files = sorted(study.glob("*.dcm"))
    page.locator("input[type=file]").set_input_files([str(f) for f in files])
    page.get_by_text("Study-level prediction").wait_for(timeout=300_000)
    wait_idle(page)
    screenshot(page, "predict")
    text = body(page)
    # Tables are drawn on a canvas (no text in the DOM): the fused and the per-view table exist.
    assert "Per-view predictions" in text and page.locator("[data-testid=stDataFrame]").count() == 2
    assert "Traceback" not in text
    # The first clip plays: decodable data (readyState >= 2) and its clock advances.
    page.wait_for_function("document.querySelector('video') && document.querySelector('video').readyState >= 2",
                           timeout=60_000)
    t0 = page.evaluate("document.querySelector('video').currentTime")
    time.sleep(1.5)
    t1 = page.evaluate("document.querySelector('video').currentTime")
    assert t1 != t0, "the clip does not play"
    assert page.locator("video").count() == len(files) - body(page).count("was not used")
    screenshot(page, "predict")
    _assert_no_phi_left(page, files, home)


def _canaries(files: list[Path]) -> set[str]:
    """The fake PHI the example study carries in its headers (it also has it burned in)."""
    import pydicom

    found = set()
    for f in files:
        ds = pydicom.dcmread(f, stop_before_pixels=True)
        for keyword in ("PatientName", "PatientID", "AccessionNumber", "InstitutionName", "ReferringPhysicianName"):
            value = str(ds.get(keyword, "") or "").strip()
            if len(value) >= 4:
                found.update({value, *value.split("^")} - {""})
    return {c for c in found if len(c) >= 4}


def _assert_no_phi_left(page, files: list[Path], home: Path) -> None:
    """Canary sweep: what the browser received, the data home, the server log, temp folders."""
    canaries = _canaries(files)
    assert canaries, "the example study should carry fake PHI to sweep for"
    html = page.content()
    for canary in canaries:
        assert canary not in html, "PHI reached the browser"
    since = time.time() - 600
    roots = [home, Path(tempfile.gettempdir())]
    for root in roots:
        for path in root.rglob("*"):
            try:
                if not path.is_file() or path.stat().st_mtime < since or path.stat().st_size > 50 * 2**20:
                    continue
                data = path.read_bytes()
            except OSError:
                continue
            # Synthetic cohorts (this test's and other tests' under pytest's tmp) and checkouts
            # under /tmp carry fake PHI on purpose; the sweep is for what the app left behind.
            outside_home = home not in path.parents
            if ROOT in path.parents or (home / "cohorts") in path.parents or (
                    outside_home and any(part.startswith("pytest-of-") for part in path.parts)):
                continue
            for canary in canaries:
                assert canary.encode() not in data, f"PHI found in {path.name}"


def test_results_page(page, server):
    open_page(page, f"{server}/results", "published (Sahashi et al. 2024, real patients)")
    assert "Traceback" not in body(page)
    screenshot(page, "results")
    page.get_by_role("tab", name="ROC curves").click()
    wait_idle(page)
    screenshot(page, "results_roc")
    page.get_by_role("tab", name="T1 · T2 · ECV").click()
    wait_idle(page)
    screenshot(page, "results_continuous")


def test_data_page(page, server):
    open_page(page, f"{server}/data", "Label prevalence")
    assert "Traceback" not in body(page)
    screenshot(page, "data")


def test_train_start_watch_stop(page, server, home):
    open_page(page, f"{server}/train", "Start a new run")
    page.get_by_label("Epochs (max., early stopping)").fill("30")
    page.get_by_role("button", name="Start training").click()
    runs_dir = home / "runs"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(runs_dir.glob("*/status.json")):
        time.sleep(0.5)
    assert list(runs_dir.glob("*/status.json")), "training did not start"
    # Progress advances on screen (the live view re-reads the run files every 2 s).
    page.get_by_text("running").first.wait_for(timeout=120_000)
    page.wait_for_function("document.body.innerText.includes('Batch') || /Epoch\\s*[1-9]/.test(document.body.innerText)",
                           timeout=240_000)
    page.get_by_text("Log (last lines)").first.wait_for()
    screenshot(page, "train")
    page.get_by_role("button", name="Stop").click()
    page.get_by_text("stopped").first.wait_for(timeout=90_000)
    from echocmr import runs
    (run,) = runs.list_runs(runs_dir)
    assert run.state == "stopped"
