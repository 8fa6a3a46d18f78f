"""The dashboard as the browser tests run it: ``streamlit run dashboard/Home.py`` on a free port
of 127.0.0.1 (the repository's ``.streamlit/config.toml`` binds loopback), with a private
``ECHOCMR_HOME`` and a private temp folder under it.

One starter for every browser test module. Tests that need more give it: extra environment
(network mode's fake ``HOME`` with its own ``~/.streamlit/secrets.toml``, ``ECHOCMR_AUTH``),
extra Streamlit flags (``--secrets.files`` for the PACS settings) or the host name the browser
must use (``localhost`` where the sign-in redirect URI names it).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Dashboard:
    """`streamlit run dashboard/Home.py` on a free port chosen once, so it can be restarted
    mid-test (and so a test can write the URL into a settings file before the first start)."""

    def __init__(self, home: Path, env: Mapping[str, str] | None = None, args: Sequence[str] = (),
                 host: str = "127.0.0.1", startup_timeout_s: float = 90):
        self.home, self.port = Path(home), free_port()
        self.url = f"http://{host}:{self.port}"
        self.extra_env, self.extra_args = dict(env or {}), list(args)
        self.startup_timeout_s = startup_timeout_s
        self.log = self.home / "streamlit.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        # The app's own temp folder: the PHI sweep reads what this app wrote, not the machine's /tmp.
        self.tmp = self.home / "app-tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, ECHOCMR_HOME=str(self.home), TMPDIR=str(self.tmp), TEMP=str(self.tmp),
                   TMP=str(self.tmp))
        env.pop("ECHOCMR_MODEL", None)
        env.update(self.extra_env)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "streamlit", "run", "dashboard/Home.py", "--server.port", str(self.port),
                 "--server.headless", "true", "--browser.gatherUsageStats", "false", *self.extra_args],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            try:
                if urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2).status == 200:
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        pytest.fail("streamlit did not start: " + self.log.read_text()[-2000:])

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> Dashboard:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
