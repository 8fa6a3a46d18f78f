"""Run management: background processes, graceful/hard stop, recycled-pid guard, run listing."""

import json
import os
import subprocess
import sys
import time

import psutil
import pytest

from echocmr import processes, run_control
from echocmr.atomic import atomic_write_json

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]
# Ignores SIGTERM, so only the hard stop (SIGKILL) can end it.
STUBBORN = [sys.executable, "-c",
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('re' + 'ady', flush=True); time.sleep(60)"]


def _wait_for(predicate, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_launch_job_then_graceful_stop(tmp_path):
    log = tmp_path / "sleep.log"
    job = processes.launch_job(SLEEPER, log, kind="test")
    assert processes.job_status(log).state == "running"
    record = json.loads((tmp_path / "sleep.job.json").read_text())
    assert record["pid"] == job.pid and record["create_time"] == pytest.approx(job.create_time)
    assert record["cmd"][:3] == [sys.executable, "-m", "echocmr.processes"] and record["started"]
    assert processes.stop_job(log, grace_s=10) == "stopped"
    assert not psutil.pid_exists(job.pid) or psutil.Process(job.pid).status() == psutil.STATUS_ZOMBIE
    assert processes.job_status(log).state in ("stopped", "interrupted")
    assert processes.stop_job(log) == "not running"


def test_hard_stop_after_grace_period(tmp_path):
    log = tmp_path / "stubborn.log"
    job = processes.launch_job(STUBBORN, log)
    assert _wait_for(lambda: "ready" in log.read_text().splitlines())  # the child's own line
    # The wrapper obeys SIGTERM but waits for its child, which ignores it: SIGKILL is needed.
    started = time.monotonic()
    assert processes.stop_job(log, grace_s=1.0) == "killed"
    assert time.monotonic() - started < 15
    assert processes.verified_process(json.loads((tmp_path / "stubborn.job.json").read_text())) is None
    assert not any(p.pid == job.pid for p in psutil.process_iter() if p.status() != psutil.STATUS_ZOMBIE)


def test_job_sequence_and_exit_status(tmp_path):
    ok = [sys.executable, "-c", "print('first')"]
    bad = [sys.executable, "-c", "import sys; print('second'); sys.exit(3)"]
    never = [sys.executable, "-c", "print('never')"]
    log = tmp_path / "seq.log"
    processes.launch_job([ok, bad, never], log, kind="seq")
    assert _wait_for(lambda: processes.job_status(log).state != "running", 20)
    status = processes.job_status(log)
    assert status.state == "failed" and status.rc == 3 and status.kind == "seq"
    assert "first" in status.log_tail and "second" in status.log_tail and "never" not in status.log_tail
    assert processes.latest_job(tmp_path, "seq") == log
    log2 = tmp_path / "ok.log"
    processes.launch_job(ok, log2)
    assert _wait_for(lambda: processes.job_status(log2).state == "finished", 20)


def test_recycled_pid_is_never_signalled(tmp_path):
    # A live process (this test) with the wrong start time: the record is stale.
    record = tmp_path / "launcher.json"
    me = psutil.Process(os.getpid())
    atomic_write_json(record, {"pid": os.getpid(), "create_time": me.create_time() - 1234.5, "cmd": ["x"]})
    assert processes.verified_process(json.loads(record.read_text())) is None
    assert processes.stop_process(record, grace_s=0.1) == "not running"
    # Right pid and start time but not an echocmr process: still never signalled.
    other = subprocess.Popen(SLEEPER)
    try:
        ct = psutil.Process(other.pid).create_time()
        atomic_write_json(record, {"pid": other.pid, "create_time": ct, "cmd": SLEEPER})
        assert processes.stop_process(record, grace_s=0.1) == "not running"
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


def _fake_run(runs_dir, name, state, started, pid=None, epoch=1, epochs=3):
    run = runs_dir / name
    run.mkdir(parents=True)
    atomic_write_json(run / "config.json", {"train": {"views": ["A4C", "A2C"]}, "data": "/x"})
    atomic_write_json(run / "status.json", {"state": state, "pid": pid, "view": "A4C", "epoch": epoch,
                                            "epochs": epochs, "started": started, "updated": started,
                                            "message": ""})
    return run


def test_list_runs_and_dead_running_is_interrupted(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _fake_run(tmp_path, "a", "finished", "2024-01-01T10:00:00+00:00")
    _fake_run(tmp_path, "b", "running", "2024-01-02T10:00:00+00:00", pid=dead.pid)
    _fake_run(tmp_path, "c", "stopped", "2024-01-03T10:00:00+00:00")
    (tmp_path / "not-a-run").mkdir()
    found = run_control.list_runs(tmp_path)
    assert [r.name for r in found] == ["c", "b", "a"]
    states = {r.name: r.state for r in found}
    assert states == {"a": "finished", "b": run_control.INTERRUPTED, "c": "stopped"}
    assert run_control.list_runs(tmp_path / "missing") == []


def test_running_with_recycled_launcher_pid_is_interrupted(tmp_path):
    run = _fake_run(tmp_path, "r", "running", "2024-01-02T10:00:00+00:00", pid=os.getpid())
    atomic_write_json(run / run_control.LAUNCHER, {"pid": os.getpid(), "create_time": 1.0, "cmd": []})
    assert run_control.run_info(run).state == run_control.INTERRUPTED


def test_read_progress_tolerates_torn_metrics_line(tmp_path):
    run = _fake_run(tmp_path, "p", "finished", "2024-01-02T10:00:00+00:00", epoch=2, epochs=3)
    lines = [json.dumps({"view": "A4C", "epoch": e, "train_loss": 1.0 / e, "val_loss": 1.1 / e,
                         "val": {"wma": 0.6 + 0.05 * e, "t1": 40.0}, "lr": 1e-3, "seconds": 2.0})
             for e in (1, 2)]
    (run / "metrics.jsonl").write_text("\n".join(lines) + '\n{"view": "A4C", "epo')
    (run / "train.log").write_text("".join(f"line {i}\n" for i in range(100)))
    progress = run_control.read_progress(run)
    assert len(progress.metrics) == 2
    assert list(progress.metrics["val_wma"]) == pytest.approx([0.65, 0.70])
    assert progress.log_tail.splitlines()[-1] == "line 99"
    assert len(progress.log_tail.splitlines()) == processes.LOG_TAIL_LINES
    assert progress.views == ["A4C", "A2C"]  # config.json without a view classifier
    assert progress.eta_s is None  # not running


def test_eta_counts_remaining_views():
    import pandas as pd
    info = run_control.RunInfo("r", None, "running", view="A4C", epoch=1, epochs=3)
    metrics = pd.DataFrame({"seconds": [2.0, 4.0]})
    assert run_control._eta(info, metrics, ["A4C", "A2C"]) == pytest.approx(3.0 * (2 + 3))


def test_run_names_are_unique_and_start_run_refuses_clash(tmp_path):
    names = {run_control.new_run_name("cpu-demo") for _ in range(50)}
    assert len(names) == 50
    (tmp_path / "taken").mkdir()
    from echocmr.config import preset
    with pytest.raises(FileExistsError):
        run_control.start_run(preset("cpu-demo"), tmp_path / "data", tmp_path, name="taken")


def test_list_prepared(tmp_path):
    for name in ("b", "a"):
        (tmp_path / "prepared" / name).mkdir(parents=True)
        (tmp_path / "prepared" / name / "prepare.json").write_text("{}")
    (tmp_path / "prepared" / "half").mkdir()
    assert [p.name for p in run_control.list_prepared(tmp_path)] == ["a", "b"]


def test_train_config_file_reproduces_every_setting(tmp_path):
    """The app hands training its settings as one JSON file: nothing is rebuilt flag by flag."""
    import argparse
    import dataclasses

    from echocmr.commands.train import base_config, config_from_args, register
    from echocmr.config import preset
    from echocmr.errors import ConfigError
    from echocmr.run_record import read_train_config, write_train_config

    base = preset("cpu-demo")
    # weight_decay and model.period have no command-line flag: the file still carries them.
    config = dataclasses.replace(base, views=("A4C",), view_classifier=False, lr=3e-4, classifier_lr=2e-4,
                                 patience=9, seed=5, weight_decay=0.5, max_train_clips=7,
                                 model=dataclasses.replace(base.model, width=4, n_frames=8, period=3))
    config_file = write_train_config(config, tmp_path / "r" / run_control.TRAIN_CONFIG)
    cmd = run_control.train_command(config_file, tmp_path / "data", tmp_path, "r")
    assert cmd[:4] == [sys.executable, "-m", "echocmr.cli", "train"] and "--lr" not in cmd
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(cmd[3:])
    assert config_from_args(args, base_config(args)) == config  # nothing silently dropped
    # Flags given beside --config apply on top of it.
    args = parser.parse_args([*cmd[3:], "--epochs", "2"])
    assert config_from_args(args, base_config(args)) == dataclasses.replace(config, epochs=2)
    (tmp_path / "bad.json").write_text(json.dumps({"train": {"not_a_setting": 1}}))
    with pytest.raises(ConfigError, match="not_a_setting"):
        read_train_config(tmp_path / "bad.json")
    (tmp_path / "torn.json").write_text('{"train": {')
    with pytest.raises(ConfigError, match="torn.json"):
        read_train_config(tmp_path / "torn.json")
