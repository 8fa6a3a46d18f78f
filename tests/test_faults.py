"""Faults during training: kill -9, kills inside checkpoint writes, SIGTERM, full or read-only
disks, divergence, concurrent runs, recycled pids, and a DDP rank killed under torchrun.

The pass condition everywhere: the process stays up or fails loudly with a clear message,
nothing is left corrupted or half-written, the previous checkpoint still loads, and a resume
ends where an uninterrupted run ends (the CPU path is deterministic).

``ECHOCMR_FAULT_KILLS=N`` sets the number of kill -9s in the random kill loop (default 6).
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest
import torch

import fault_helpers as fh
from echocmr import atomic, run_control
from echocmr import train as train_module
from echocmr.atomic import atomic_write_json, read_json_lines
from echocmr.checkpoint import load_checkpoint, load_training_state, save_checkpoint
from echocmr.commands.train import config_from_args
from echocmr.config import preset
from echocmr.errors import CheckpointError, ConfigError, TrainingDiverged
from echocmr.models import build_model
from echocmr.run_record import read_run_config
from echocmr.train import train_model

KILLS = int(os.environ.get("ECHOCMR_FAULT_KILLS", "6"))
EPOCHS = 2 * KILLS + 2  # enough that the random kills rarely let the run finish first
SEED = int(os.environ.get("ECHOCMR_FAULT_SEED", "0"))


@pytest.fixture(scope="module")
def prepared(tiny_prepared):
    return tiny_prepared  # tests/conftest.py: built once per session


@pytest.fixture(scope="module")
def one_thread():
    """In-process training like the children's (OMP_NUM_THREADS=1): bit-identical results, and
    no thread contention on a small shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny(epochs: int):
    """The TrainConfig the CLI builds from TINY_ARGS (what the subprocesses train)."""
    from echocmr.commands.train import register
    import argparse

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["train", "--epochs", str(epochs), *fh.TINY_ARGS])
    config = config_from_args(args, preset("cpu-demo"))
    assert config == fh.tiny_config(epochs)  # run_control.start_run gets the same settings
    return config


@pytest.fixture(scope="module")
def reference(prepared, tmp_path_factory, one_thread):
    """An uninterrupted EPOCHS-epoch run (in-process, like a child on one thread): what every
    faulted run must reproduce."""
    return train_model(tiny(EPOCHS), prepared, tmp_path_factory.mktemp("reference") / "ref")


@pytest.fixture(scope="module")
def one_epoch(prepared, tmp_path_factory, one_thread):
    """A run that finished epoch 1 (so it has last and best); tests copy it."""
    return train_model(tiny(1), prepared, tmp_path_factory.mktemp("one_epoch") / "run")


@pytest.fixture
def launcher_env(monkeypatch):
    """echocmr.run_control starts children with this process's environment: make it fh.child_env's, so
    those runs compute bit for bit like the reference (same thread count)."""
    for key, value in fh.child_env().items():
        monkeypatch.setenv(key, value)


@pytest.fixture
def copy_of_one_epoch(one_epoch, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(one_epoch, run)
    return run


def _snapshot(run: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (run / "A4C").iterdir() if p.is_file()}


def _assert_matches_reference(run: Path, reference: Path, epochs: int = EPOCHS) -> None:
    """Every epoch once, with the uninterrupted run's losses (bit for bit), and its final weights
    when it ran as long; nothing left unloadable or half-written."""
    assert fh.metric_epochs(run) == list(range(1, epochs + 1))
    key = [(r["epoch"], r["train_loss"], r["val_loss"], r["score"]) for r in read_json_lines(run / "metrics.jsonl")]
    assert key == [(r["epoch"], r["train_loss"], r["val_loss"], r["score"])
                   for r in read_json_lines(reference / "metrics.jsonl")][:epochs]
    if epochs == EPOCHS:
        assert fh.same_weights(run / "A4C" / "last.safetensors", reference / "A4C" / "last.safetensors")
        assert fh.same_weights(run / "A4C" / "best.safetensors", reference / "A4C" / "best.safetensors")
    assert fh.checkpoint_problems(run) == [] and fh.temp_files(run) == []
    assert fh.read_status(run)["state"] == "finished"


# ----------------------------------------------------------------------------- 1. kill -9 at random moments

@pytest.mark.slow  # trains in child processes against a many-epoch reference run
@pytest.mark.timeout(1800)  # shares 2 cores with the other xdist worker in CI
def test_random_kill9_loop_resumes_to_the_uninterrupted_result(prepared, reference, tmp_path):
    epoch_s = max(r["seconds"] for r in read_json_lines(reference / "metrics.jsonl"))
    stats = fh.kill_loop(prepared, tmp_path, "killed", KILLS, EPOCHS, max_delay=1.5 * epoch_s + 0.3,
                         rng=random.Random(SEED), timeout=180)
    assert stats.kills >= min(KILLS, 3), stats  # the run may outpace the last few kills, rarely
    assert stats.corrupted == [], stats
    assert max(stats.lost) <= 1, stats  # at most the epoch in progress
    _assert_matches_reference(tmp_path / "killed", reference)


# ----------------------------------------------------------------------------- 2. kill inside a checkpoint write

# Each session kills itself at one point of the per-epoch write sequence (train.py's docstring).
WRITE_KILLS = [
    ("after_replace", "best.next.safetensors", 1),  # epoch 1: best's new weights staged, JSON old
    ("after_replace", "best.json", 1),  # best's JSON committed, its weights still in .next
    ("before_replace", "last.state.pt", 1),  # the commit point fully written, not renamed
    ("after_replace", "last.json", 1),  # committed; last's JSON new, its weights still in .next
    ("append", "metrics.jsonl", 1),  # everything saved but the metrics line
]


@pytest.mark.slow  # trains in child processes against a many-epoch reference run
@pytest.mark.timeout(1800)  # shares 2 cores with the other xdist worker in CI
def test_kill_inside_checkpoint_writes_keeps_the_previous_checkpoint(prepared, reference, tmp_path):
    run, log, epochs = tmp_path / "run", tmp_path / "run.out", len(WRITE_KILLS)
    for i, (point, name, nth) in enumerate(WRITE_KILLS):
        before = committed_epoch_or_none(run)
        args = fh.resume_args(run, epochs) if i else fh.fresh_args(prepared, tmp_path, "run", epochs)
        rc = fh.run(args, log, fault={"kill": {"point": point, "name": name, "nth": nth}})
        assert rc == -signal.SIGKILL, (point, name, log.read_text()[-2000:])
        after = fh.committed_epoch(run)  # the commit point always loads
        assert after in ((before or 0), (before or 0) + 1), (point, name, before, after)
        assert fh.checkpoint_problems(run) == [], (point, name)  # every checkpoint loads, at every point
    assert fh.run(fh.resume_args(run, epochs), log) == 0, log.read_text()[-2000:]
    _assert_matches_reference(run, reference, epochs)


def committed_epoch_or_none(run: Path) -> int | None:
    try:
        return fh.committed_epoch(run)
    except CheckpointError:
        return None


@pytest.mark.parametrize("crash_at, survivor", [("atomic_write_json", "old"), ("promote", "new")])
def test_checkpoint_pair_survives_a_crash_between_its_two_files(tmp_path, monkeypatch, crash_at, survivor):
    """Killed before the JSON commits, the old pair loads; after it, the new weights (still in
    .next) load. Either way the checkpoint loads and its weights match its JSON."""
    from echocmr import checkpoint
    from echocmr.config import ModelConfig

    config = ModelConfig(arch="compact", width=2, n_frames=4)
    meta = {"kind": "view_model", "model": dataclasses.asdict(config), "outputs": ["wma"]}
    torch.manual_seed(0)
    models = {"old": build_model(config, 1), "new": build_model(config, 1)}
    save_checkpoint(tmp_path / "last", models["old"], meta)

    def killed(*args, **kwargs):
        raise SystemExit("killed between the two files")

    monkeypatch.setattr(checkpoint, crash_at, killed)
    with pytest.raises(SystemExit):
        save_checkpoint(tmp_path / "last", models["new"], meta)
    monkeypatch.undo()
    loaded, _ = load_checkpoint(tmp_path / "last")
    expected = models[survivor].state_dict()
    assert all(torch.equal(v, expected[k]) for k, v in loaded.state_dict().items())
    other = "new" if survivor == "old" else "old"
    assert not all(torch.equal(v, models[other].state_dict()[k]) for k, v in loaded.state_dict().items())
    save_checkpoint(tmp_path / "last", models["new"], meta)  # the next save completes normally
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.json", "last.safetensors"]


# ----------------------------------------------------------------------------- 3. SIGTERM (the Stop button)

@pytest.mark.slow  # trains in child processes against a many-epoch reference run
def test_stop_button_saves_a_final_checkpoint_and_the_run_resumes(prepared, reference, tmp_path, launcher_env):
    epochs = 3
    info = run_control.start_run(fh.tiny_config(epochs), prepared, tmp_path, name="stop")
    run = info.path
    try:
        # Mid-training: at least one batch done, so there is something to save.
        assert fh.wait_until(lambda: fh.read_status(run).get("batch", 0) >= 1 or fh.read_status(run).get("epoch", 0) >= 1,
                             180), run_control.read_progress(run).log_tail
        assert run_control.stop_run(run, grace_s=60) == "stopped"
    finally:
        run_control.stop_run(run, grace_s=5)  # no-op unless the assertion above failed
    status = fh.read_status(run)
    assert status["state"] == "stopped" and "--resume" in status["message"], status
    assert run_control.run_info(run).state == "stopped"
    last = load_checkpoint(run / "A4C" / "last")[1]
    state = load_training_state(run / "A4C" / "last")
    assert (last["epoch"], last["step"]) == (state["counters"]["epoch"], state["counters"]["step"])
    assert state["counters"]["epoch"] == status["epoch"]
    run_control.resume_run(run)
    assert fh.wait_until(lambda: run_control.run_info(run).state == "finished", 240, step=0.2), run_control.read_progress(run).log_tail
    _assert_matches_reference(run, reference, epochs)


# ----------------------------------------------------------------------------- 4. disk full, read-only folder

@pytest.mark.slow  # in `make test`, not the quick run (> 5 s)
def test_disk_full_fails_loudly_and_keeps_the_checkpoints(prepared, copy_of_one_epoch, tmp_path):
    run, log = copy_of_one_epoch, tmp_path / "full.out"
    before = _snapshot(run)
    limit = (run / "A4C" / "last.state.pt").stat().st_size - 1  # the next commit point cannot fit
    rc = fh.run(fh.resume_args(run, 3), log, fault={"fsize": limit})
    out = log.read_text()
    assert rc == 2, out[-3000:]
    assert "error: cannot write run/A4C/last.state.pt: File too large" in out and "--resume" in out
    assert "Traceback" not in out
    status = fh.read_status(run)
    assert status["state"] == "failed" and "File too large" in status["message"]
    assert _snapshot(run) == before and fh.temp_files(run) == [] and fh.checkpoint_problems(run) == []
    # (that a resume continues once space is back: the next test)


def test_no_space_after_the_commit_point_is_repaired_on_resume(prepared, copy_of_one_epoch, monkeypatch, one_thread):
    """ENOSPC on last's weights, after the state of epoch 2 was committed (in-process)."""
    from echocmr import checkpoint

    run = copy_of_one_epoch
    best = {k: v for k, v in _snapshot(run).items() if k.startswith("best")}
    real = checkpoint.atomic_write_bytes

    def full(path, data):
        if Path(path).name == "last.next.safetensors":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real(path, data)

    monkeypatch.setattr(checkpoint, "atomic_write_bytes", full)
    config = dataclasses.replace(read_run_config(run)[0], epochs=2)
    with pytest.raises(ConfigError, match="cannot write run/A4C/last.next.safetensors: No space left on device"):
        train_model(config, prepared, run, resume=True)
    assert fh.read_status(run)["state"] == "failed"
    assert fh.committed_epoch(run) == 2 and fh.checkpoint_problems(run) == [] and fh.temp_files(run) == []
    assert load_checkpoint(run / "A4C" / "last")[1]["epoch"] == 1  # the previous last, intact
    assert {k: v for k, v in _snapshot(run).items() if k.startswith("best")} == best
    monkeypatch.undo()
    train_model(config, prepared, run, resume=True)  # repairs last and the metrics line, then stops
    assert load_checkpoint(run / "A4C" / "last")[1]["epoch"] == 2 and fh.metric_epochs(run) == [1, 2]


def _chmod_stops_writes() -> bool:
    """False as root (or with CAP_DAC_OVERRIDE), where a read-only mode does not stop writes."""
    with tempfile.TemporaryDirectory() as folder:
        os.chmod(folder, 0o555)
        try:
            Path(folder, "probe").write_text("x")
        except PermissionError:
            return True
        finally:
            os.chmod(folder, 0o755)
    return False


def _make_read_only(run: Path, monkeypatch) -> None:
    """chmod a-w where that works; as root, make echocmr.atomic's file creation in ``run`` fail
    with EACCES as the kernel would (all of training's writes go through echocmr.atomic)."""
    if _chmod_stops_writes():
        for folder in (run, *[p for p in run.rglob("*") if p.is_dir()]):
            folder.chmod(0o555)
        return
    real_mkstemp = atomic.tempfile.mkstemp

    def mkstemp(*args, dir=None, **kwargs):
        if dir is not None and Path(dir).resolve().is_relative_to(run.resolve()):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
        return real_mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(atomic, "tempfile", type("ReadOnly", (), {"mkstemp": staticmethod(mkstemp)}))
    monkeypatch.setattr(atomic, "open", _refuse_in(run, open), raising=False)


def _refuse_in(run: Path, real_open):
    def guarded(path, *args, **kwargs):
        if Path(path).resolve().is_relative_to(run.resolve()):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
        return real_open(path, *args, **kwargs)
    return guarded


def test_read_only_run_folder_fails_loudly_and_keeps_the_checkpoints(prepared, copy_of_one_epoch, monkeypatch):
    run = copy_of_one_epoch
    before, status = _snapshot(run), fh.read_status(run)
    _make_read_only(run, monkeypatch)
    try:
        config = dataclasses.replace(read_run_config(run)[0], epochs=2)
        with pytest.raises(ConfigError, match=r"cannot write run/config.json: Permission denied.*--resume"):
            train_model(config, prepared, run, resume=True)
    finally:
        for folder in (run, *[p for p in run.rglob("*") if p.is_dir()]):
            folder.chmod(0o755)
        monkeypatch.undo()
    assert _snapshot(run) == before and fh.read_status(run) == status  # nothing could be (or was) written
    assert fh.temp_files(run) == [] and fh.checkpoint_problems(run) == []


# ----------------------------------------------------------------------------- 5. divergence

@pytest.mark.slow  # in `make test`, not the quick run (> 5 s)
def test_forced_nan_is_diverged_and_best_is_untouched(prepared, copy_of_one_epoch, tmp_path):
    run, log = copy_of_one_epoch, tmp_path / "nan.out"
    before = _snapshot(run)
    rc = fh.run(fh.resume_args(run, 3), log, fault={"nan_after_steps": 1})
    out = log.read_text()
    assert rc == 2 and "error: non-finite training loss at step 2" in out, out[-3000:]
    status = fh.read_status(run)
    assert status["state"] == "diverged" and "lower learning rate" in status["message"]
    assert _snapshot(run) == before  # best (and last, and the state) byte-identical
    assert fh.metric_epochs(run) == [1] and fh.checkpoint_problems(run) == []


def test_weights_blown_up_by_the_last_step_are_never_saved(prepared, copy_of_one_epoch, monkeypatch, one_thread):
    """A finite loss can still leave inf weights after the epoch's last step (in-process)."""
    run = copy_of_one_epoch
    before = _snapshot(run)
    real = train_module.train_one_epoch

    def blow_up(model, *args, **kwargs):
        result = real(model, *args, **kwargs)
        with torch.no_grad():
            next(iter(model.parameters())).fill_(float("inf"))
        return result

    monkeypatch.setattr(train_module, "train_one_epoch", blow_up)
    with pytest.raises(TrainingDiverged, match="non-finite weights at the end of epoch 2"):
        train_model(dataclasses.replace(read_run_config(run)[0], epochs=2), prepared, run, resume=True)
    assert fh.read_status(run)["state"] == "diverged" and _snapshot(run) == before


# ----------------------------------------------------------------------------- 6. several runs at once

@pytest.mark.slow  # trains in child processes against a many-epoch reference run
def test_two_runs_at_once_in_one_data_home(prepared, reference, tmp_path, launcher_env, monkeypatch):
    monkeypatch.setenv("ECHOCMR_MAX_TRAINING_RUNS", "2")  # the default quota allows one at a time
    epochs = 3
    a, b = (run_control.start_run(fh.tiny_config(epochs), prepared, tmp_path, name=n).path for n in ("a", "b"))
    try:
        assert fh.wait_until(lambda: all(run_control.run_info(r).state in ("finished", "failed", run_control.INTERRUPTED)
                                         for r in (a, b)), 240, step=0.2)
    finally:
        for r in (a, b):
            run_control.stop_run(r, grace_s=5)
    infos = {i.name: i for i in run_control.list_runs(tmp_path)}
    assert set(infos) == {"a", "b"} and {i.state for i in infos.values()} == {"finished"}, infos
    launchers = {n: json.loads((tmp_path / n / run_control.LAUNCHER).read_text())["pid"] for n in ("a", "b")}
    assert {n: infos[n].pid for n in ("a", "b")} == launchers and launchers["a"] != launchers["b"]
    expected = [(r["epoch"], r["train_loss"]) for r in read_json_lines(reference / "metrics.jsonl")][:epochs]
    for r in (a, b):
        assert [(x["epoch"], x["train_loss"]) for x in read_json_lines(r / "metrics.jsonl")] == expected
        assert fh.checkpoint_problems(r) == [] and fh.temp_files(r) == []
    assert fh.same_weights(a / "A4C" / "last.safetensors", b / "A4C" / "last.safetensors")


# ----------------------------------------------------------------------------- 7. recycled pids

def test_a_recycled_pid_is_never_signalled(tmp_path):
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        proc = psutil.Process(sleeper.pid)
        for state in ("finished", "failed", "running"):
            run = tmp_path / state
            run.mkdir()
            atomic_write_json(run / "config.json", {"train": {"views": ["A4C"]}, "data": "/x"})
            atomic_write_json(run / "status.json", {"state": state, "pid": sleeper.pid, "epoch": 1, "epochs": 2,
                                                    "started": "2024-01-01T10:00:00+00:00",
                                                    "updated": "2024-01-01T10:00:00+00:00", "message": ""})
            assert run_control.stop_run(run, grace_s=0.5) == "not running"  # no launcher.json at all
            # A launcher.json naming the pid: its old start time, then even the right one.
            for create_time in (proc.create_time() - 3600, proc.create_time()):
                atomic_write_json(run / run_control.LAUNCHER, {"pid": sleeper.pid, "create_time": create_time,
                                                        "cmd": ["python", "-m", "echocmr.cli", "train"]})
                assert run_control.stop_run(run, grace_s=0.5) == "not running"
                assert not run_control.run_info(run).active
        assert run_control.run_info(tmp_path / "running").state == run_control.INTERRUPTED
        time.sleep(0.2)
        assert sleeper.poll() is None and proc.status() != psutil.STATUS_ZOMBIE  # never signalled
    finally:
        sleeper.kill()
        sleeper.wait()


# ----------------------------------------------------------------------------- 8. DDP rank killed under torchrun

@pytest.mark.slow  # trains in child processes against a many-epoch reference run
def test_ddp_rank_killed_under_torchrun_restarts_and_completes(prepared, tmp_path):
    epochs, out = 3, tmp_path / "runs"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "--max-restarts=1",
           "--monitor-interval=0.5", "-m", "echocmr.cli", "train", "--data", str(prepared), "--out", str(out),
           "--epochs", str(epochs), *fh.TINY_ARGS]  # no --run-name: the restart must find the folder
    log = tmp_path / "torchrun.out"
    with open(log, "wb") as handle:
        agent = subprocess.Popen(cmd, env=fh.child_env(), cwd=fh.REPO, stdout=handle, stderr=subprocess.STDOUT)
    try:
        assert fh.wait_until(lambda: any(fh.read_status(r).get("epoch", 0) >= 1 for r in _runs(out)), 240, agent), \
            log.read_text()[-3000:]
        victim = _rank_process(agent, rank=0)  # the writer: the harder case
        victim.kill()  # SIGKILL a worker of our own torchrun
        assert agent.wait(timeout=300) == 0, log.read_text()[-4000:]
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
    assert len(_runs(out)) == 1, _runs(out)
    run = _runs(out)[0]
    assert fh.read_status(run)["state"] == "finished"
    assert fh.metric_epochs(run) == list(range(1, epochs + 1))
    assert "resumes after epoch" in (run / "train.log").read_text()  # it did restart and resume
    assert sorted(p.name for p in (run / "A4C").iterdir()) == [
        "best.json", "best.safetensors", "last.json", "last.safetensors", "last.state.pt"]
    assert fh.checkpoint_problems(run) == [] and fh.committed_epoch(run) == epochs


def _runs(out: Path) -> list[Path]:
    return sorted(p for p in out.iterdir() if p.is_dir()) if out.is_dir() else []


def _rank_process(agent: subprocess.Popen, rank: int) -> psutil.Process:
    for child in psutil.Process(agent.pid).children(recursive=True):
        try:
            if child.environ().get("RANK") == str(rank) and "echocmr.cli" in " ".join(child.cmdline()):
                return child
        except psutil.Error:
            continue
    raise AssertionError(f"no rank {rank} worker under torchrun")


# ----------------------------------------------------------------------------- small pieces

def test_append_after_a_torn_line_keeps_the_new_line(tmp_path):
    """A full disk (or a crash) mid-append leaves a torn line; the next append must not glue to it."""
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"epoch": 1}\n{"epo')
    atomic.append_line(path, '{"epoch": 2}')
    assert path.read_text() == '{"epoch": 1}\n{"epoch": 2}\n'
    path.write_text('{"torn, no newline at all')
    atomic.append_line(path, '{"epoch": 1}')
    assert read_json_lines(path) == [{"epoch": 1}]


def test_a_failed_atomic_write_names_the_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "best.safetensors"
    target.write_bytes(b"old")

    def full(handle):
        handle.write(b"new, partly")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(OSError) as caught:
        atomic.atomic_write(target, full)
    assert caught.value.filename == str(target) and caught.value.errno == errno.ENOSPC
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["best.safetensors"]


def test_torchrun_restart_resumes_only_its_own_run(tmp_path, monkeypatch):
    from echocmr.run_record import default_run_name, elastic_restart_of

    run = tmp_path / "run"
    run.mkdir()
    atomic_write_json(run / "config.json", {"train": {}, "data": "/x", "elastic_run_id": "job-1"})
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "job-1")
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "0")
    assert not elastic_restart_of(run)  # the first attempt is not a restart
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "1")
    assert elastic_restart_of(run)
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "job-2")  # another job: never resume its run
    assert not elastic_restart_of(run)
    # The default name comes from torchrun's start time (the parent), the same for every restart.
    names = {default_run_name(fh.tiny_config(1)) for _ in range(2)}
    parent = psutil.Process(os.getppid()).create_time()
    assert names == {time.strftime("%Y%m%d-%H%M%S", time.localtime(parent)) + "-cpu-demo"}
