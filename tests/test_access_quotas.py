"""Roles enforced in the core actions (not only by hiding buttons), the audit log, quotas."""

from __future__ import annotations

import json
import tomllib

import pytest

from echocmr import access
from echocmr import run_control as runs
from echocmr.access import AccessDenied, Actor
from echocmr.config import REPO_ROOT, IngestLimits, preset
from echocmr.quotas import MB, QuotaExceeded, Quotas, UploadLedger, check_synthesis, upload_limits_text
from echocmr.trust import redact_paths

VIEWER, RESEARCHER = Actor("view@example.org", "viewer"), Actor("res@example.org", "researcher")


@pytest.fixture()
def oidc(tmp_path, monkeypatch):
    monkeypatch.setenv("ECHOCMR_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ECHOCMR_AUTH", "oidc")
    roles = tmp_path / "roles.toml"
    roles.write_text('researchers = ["Res@example.org"]\nviewers = ["view@example.org"]\n')
    monkeypatch.setenv("ECHOCMR_ROLES", str(roles))
    return tmp_path


def test_roles_come_from_the_roles_file(oidc):
    assert access.role_for("res@example.org") == "researcher"
    assert access.role_for("view@example.org") == "viewer"
    assert access.role_for("stranger@example.org") is None and access.role_for(None) is None
    (oidc / "roles.toml").write_text('viewers = ["*"]\n')
    assert access.role_for("stranger@example.org") == "viewer"
    (oidc / "roles.toml").unlink()
    assert access.role_for("res@example.org") is None  # no roles file: nobody (fail closed)


@pytest.mark.parametrize("call", [
    lambda home, a: runs.start_run(preset("cpu-demo"), home / "data", home / "runs", name="r", actor=a),
    lambda home, a: runs.stop_run(home / "runs" / "r", actor=a),
    lambda home, a: runs.resume_run(home / "runs" / "r", actor=a),
    lambda home, a: runs.start_evaluation(home / "runs" / "r", home / "data", actor=a),
    lambda home, a: runs.make_synthetic_dataset(home, 8, actor=a),
    lambda home, a: runs.make_active_model(home / "runs" / "r", home / "models", actor=a),
])
def test_viewers_and_anonymous_cannot_take_research_actions(oidc, call):
    """What a crafted widget event would reach: the core function itself refuses."""
    home = oidc / "home"
    for actor, code in ((VIEWER, "forbidden"), (None, "sign_in_required")):
        with pytest.raises(AccessDenied) as err:
            call(home, actor)
        assert err.value.code == code
    assert not (home / "runs").exists() and not (home / "jobs").exists()  # nothing was started
    lines = [json.loads(line) for line in (home / "audit.jsonl").read_text().splitlines()]
    assert [(r["user"], r["outcome"]) for r in lines] == [("view@example.org", "refused"), ("anonymous", "refused")]


def test_a_researcher_passes_the_role_check_and_meets_the_run_quota(oidc, monkeypatch):
    monkeypatch.setenv("ECHOCMR_MAX_TRAINING_RUNS", "0")
    home = oidc / "home"
    with pytest.raises(QuotaExceeded) as err:
        runs.start_run(preset("cpu-demo"), home / "data", home / "runs", name="r", actor=RESEARCHER)
    assert err.value.code == "too_many_runs"
    record = json.loads((home / "audit.jsonl").read_text().splitlines()[-1])
    assert record == {**record, "user": "res@example.org", "role": "researcher", "action": "train",
                      "target": "r", "outcome": "allowed"}


def test_a_synthesis_that_does_not_fit_on_disk_is_refused(oidc, monkeypatch):
    monkeypatch.setenv("ECHOCMR_DISK_MARGIN_BYTES", str(10**18))
    with pytest.raises(QuotaExceeded) as err:
        runs.make_synthetic_dataset(oidc / "home", 2000, actor=RESEARCHER)
    assert err.value.code == "disk_full" and "2000 synthetic patients need about" in str(err.value)
    assert not (oidc / "home" / "jobs").exists()


def test_only_one_synthesis_at_a_time():
    q = Quotas()
    check_synthesis(0, 10, 10**15, q)
    with pytest.raises(QuotaExceeded) as err:
        check_synthesis(1, 10, 10**15, q)
    assert err.value.code == "synthesis_running"


def test_local_mode_allows_everything_without_sign_in(monkeypatch):
    monkeypatch.delenv("ECHOCMR_AUTH", raising=False)
    assert access.auth_mode() == "local" and access.allowed(None, "train")


def test_upload_caps_per_session_and_in_total():
    ledger = UploadLedger(Quotas(session_upload_bytes=100 * MB, total_upload_bytes=150 * MB, files_per_study=3))
    ledger.claim("a", [40 * MB, 40 * MB])
    with pytest.raises(QuotaExceeded) as err:
        ledger.claim("b", [10 * MB] * 4)
    assert err.value.code == "too_many_files"
    with pytest.raises(QuotaExceeded) as err:
        ledger.claim("b", [101 * MB])
    assert err.value.code == "session_upload_cap"
    with pytest.raises(QuotaExceeded) as err:
        ledger.claim("b", [80 * MB])  # 80 + 80 held by "a" > 150
    assert err.value.code == "server_upload_cap"
    ledger.claim("a", [])  # "a" cleared its uploads
    ledger.claim("b", [80 * MB])
    assert ledger.held() == 80 * MB


def test_the_uploader_states_the_limit_streamlit_enforces():
    config = tomllib.loads((REPO_ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] * MB == IngestLimits().max_file_bytes
    text = upload_limits_text(Quotas(), IngestLimits().max_file_bytes)
    assert f"{config['server']['maxUploadSize']} MB per file" in text


def test_the_server_listens_on_loopback_with_an_allowed_host_list():
    server = tomllib.loads((REPO_ROOT / ".streamlit" / "config.toml").read_text())["server"]
    assert server["address"] == "127.0.0.1" and server["allowedHosts"] == ["localhost", "127.0.0.1"]
    assert server["enableXsrfProtection"] is True
    assert ".streamlit/secrets.toml" in (REPO_ROOT / ".gitignore").read_text().splitlines()


def test_pages_show_no_absolute_paths():
    text = "Traceback: python -m echocmr train --data /srv/echo/prepared/s1 --out /srv/echo/runs/r1"
    assert redact_paths(text) == "Traceback: python -m echocmr train --data …/s1 --out …/r1"
