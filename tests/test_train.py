"""Training runs: run directory, resume == uninterrupted, divergence, SIGTERM, DDP, the CLI."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from echocmr import cli
from echocmr import train as train_module
from echocmr.atomic import read_json_lines
from echocmr.config import ModelConfig, TrainConfig
from echocmr.errors import ConfigError, TrainingDiverged
from echocmr.model_runner import load_view_classifier, load_view_model, predict_prepared
from echocmr.train import train_model


REPO = Path(__file__).resolve().parent.parent
TINY = TrainConfig(preset="test", model=ModelConfig(arch="compact", width=4, n_frames=8, period=2),
                   views=("A4C",), batch_size=4, epochs=2, patience=5, num_workers=0, device="cpu",
                   view_classifier=False, classifier_width=4)
TINY_ARGS = ["--preset", "cpu-demo", "--views", "A4C", "--no-view-classifier", "--width", "4", "--frames", "8",
             "--batch-size", "4", "--num-workers", "0", "--device", "cpu"]


@pytest.fixture(scope="module")
def prepared(tiny_prepared):
    return tiny_prepared  # tests/conftest.py: built once per session


@pytest.fixture(scope="module")
def straight(prepared, tmp_path_factory):
    """An uninterrupted TINY run: what every interrupted-and-resumed run must reproduce."""
    return train_model(TINY, prepared, tmp_path_factory.mktemp("straight") / "run")


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    env.pop("WORLD_SIZE", None)
    return env


def _status(run: Path) -> dict:
    return json.loads((run / "status.json").read_text())


def test_a_run_trains_classifier_and_view_model(prepared, tmp_path):
    config = dataclasses.replace(TINY, view_classifier=True, epochs=2, classifier_epochs=1, lr=2e-3,
                                 classifier_lr=5e-4)
    run = train_model(config, prepared, tmp_path / "run")
    status = _status(run)
    assert status["state"] == "finished" and status["pid"] == os.getpid()
    assert json.loads((run / "config.json").read_text())["data"] == str(prepared)
    records = read_json_lines(run / "metrics.jsonl")
    assert [(r["view"], r["epoch"]) for r in records] == [("view_classifier", 1), ("A4C", 1), ("A4C", 2)]
    assert {"train_loss", "val_loss", "val", "lr", "seconds"} <= set(records[-1])
    assert [r["lr"] for r in records] == [5e-4, 2e-3, 2e-3]  # the classifier's own learning rate
    assert (run / "train.log").read_text().strip()
    for stem in ("A4C/last", "A4C/best", "view_classifier/best"):
        assert (run / f"{stem}.safetensors").is_file() and (run / f"{stem}.json").is_file()
    model = load_view_model(run / "A4C" / "best")
    assert model.meta["data"] == {"synthetic": True, "dataset": prepared.name, "target_fps": 0.0, "jpeg_decode": "exact"} and model.meta["view"] == "A4C"
    assert set(model.meta["target_scaling"]) == {"t1", "t2", "ecv"}
    frame = predict_prepared(model, prepared, "test", "A4C", n_clips=2)
    assert frame[["wma_view", "wma"]].stack().between(0, 1).all()
    assert load_view_classifier(run / "view_classifier" / "best").outputs == ("A4C", "A2C", "PLAX", "other")
    with pytest.raises(ConfigError, match="already exists"):
        train_model(TINY, prepared, run)


def test_resume_equals_an_uninterrupted_run(prepared, straight, tmp_path):
    interrupted = train_model(dataclasses.replace(TINY, epochs=1), prepared, tmp_path / "resumed")
    # A line a crashed session might have left for an epoch the checkpoint never reached.
    with open(interrupted / "metrics.jsonl", "a") as handle:
        handle.write(json.dumps({"view": "A4C", "epoch": 2, "train_loss": 9.9}) + "\n")
    train_model(TINY, prepared, interrupted, resume=True)
    a, b = (load_file(str(r / "A4C" / "last.safetensors")) for r in (straight, interrupted))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    lines = [(r["epoch"], r["train_loss"]) for r in read_json_lines(interrupted / "metrics.jsonl")]
    assert lines == [(r["epoch"], r["train_loss"]) for r in read_json_lines(straight / "metrics.jsonl")]
    # A finished view is skipped on a further resume.
    before = (interrupted / "A4C" / "last.safetensors").read_bytes()
    train_model(TINY, prepared, interrupted, resume=True)
    assert (interrupted / "A4C" / "last.safetensors").read_bytes() == before
    assert _status(interrupted)["state"] == "finished"


def test_a_non_finite_loss_stops_the_run_and_keeps_best(prepared, tmp_path, monkeypatch):
    run = train_model(dataclasses.replace(TINY, epochs=1), prepared, tmp_path / "run")
    best = (run / "A4C" / "best.safetensors").read_bytes()
    monkeypatch.setattr(train_module, "multitask_loss", lambda out, *a: out.sum() * float("nan"))
    with pytest.raises(TrainingDiverged):
        train_model(TINY, prepared, run, resume=True)
    status = _status(run)
    assert status["state"] == "diverged" and "non-finite" in status["message"]
    assert (run / "A4C" / "best.safetensors").read_bytes() == best
    assert [r["epoch"] for r in read_json_lines(run / "metrics.jsonl")] == [1]


@pytest.mark.slow  # trains in child processes
def test_sigterm_stops_gracefully_and_the_run_resumes(prepared, tmp_path, capsys):
    run = tmp_path / "runs" / "sig"
    cmd = [sys.executable, "-m", "echocmr.commands.train", "--data", str(prepared), "--out", str(tmp_path / "runs"),
           "--run-name", "sig", "--epochs", "200", *TINY_ARGS]
    proc = subprocess.Popen(cmd, env=_env(), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            status = _status(run) if (run / "status.json").exists() else {}
            if status.get("epoch", 0) >= 1 or status.get("batch", 0) >= 1:
                break
            assert proc.poll() is None, proc.stdout.read().decode()
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=60)[0].decode()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    status = _status(run)
    assert status["state"] == "stopped", status
    last = load_view_model(run / "A4C" / "last")
    assert last.meta["epoch"] == status["epoch"]
    # Flags a restored optimiser/schedule would silently override are refused, and nothing is touched.
    before = (run / "status.json").read_bytes()
    assert cli_main(["train", "--resume", str(run), "--lr", "0.1", "--width", "8"]) == 2
    err = capsys.readouterr().err
    assert "--lr, --arch/--width/--frames/--map-outputs cannot change when resuming" in err, err
    assert (run / "status.json").read_bytes() == before
    assert cli_main(["train", "--resume", str(run), "--epochs", str(status["epoch"] + 1)]) == 0
    assert _status(run)["state"] == "finished"
    epochs = [r["epoch"] for r in read_json_lines(run / "metrics.jsonl")]
    assert epochs == list(range(1, status["epoch"] + 2))


@pytest.mark.slow  # trains in child processes
def test_ddp_with_two_gloo_processes_saves_one_checkpoint(prepared, tmp_path):
    module = "echocmr.cli" if _all_commands_present() else "echocmr.commands.train"
    prefix = ["train"] if module == "echocmr.cli" else []
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", module,
           *prefix, "--data", str(prepared), "--out", str(tmp_path / "runs"), "--run-name", "ddp",
           "--epochs", "2", *TINY_ARGS]
    result = subprocess.run(cmd, env=_env(), cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    runs = list((tmp_path / "runs").iterdir())
    assert [r.name for r in runs] == ["ddp"]
    run = runs[0]
    assert _status(run)["state"] == "finished"
    assert sorted(p.name for p in (run / "A4C").iterdir()) == [
        "best.json", "best.safetensors", "last.json", "last.safetensors", "last.state.pt"]
    assert [r["epoch"] for r in read_json_lines(run / "metrics.jsonl")] == [1, 2]  # one writer
    keys = load_file(str(run / "A4C" / "last.safetensors")).keys()
    assert keys and not any(k.startswith(("module.", "_orig_mod.")) for k in keys)
    load_view_model(run / "A4C" / "last")


def test_cli_trains_the_tiny_dataset(prepared, tmp_path, capsys):
    from echocmr.models import MapPooledNet

    args = ["train", "--data", str(prepared), "--out", str(tmp_path), "--run-name", "cli", "--epochs", "1",
            "--max-train-clips", "6", "--map-outputs", "1", *TINY_ARGS]
    assert cli_main(args) == 0
    assert capsys.readouterr().out.strip().endswith("cli")
    config = json.loads((tmp_path / "cli" / "config.json").read_text())["train"]
    assert config["preset"] == "cpu-demo" and config["model"]["width"] == 4 and config["max_train_clips"] == 6
    model = load_view_model(tmp_path / "cli" / "A4C" / "best")
    assert isinstance(model.module, MapPooledNet) and model.module.n_map == 1 and model.outputs[0] == "wma_view"
    assert predict_prepared(model, prepared, "test", "A4C", n_clips=1)["wma_view"].between(0, 1).all()
    assert cli_main(["train", "--data", str(tmp_path / "missing"), "--out", str(tmp_path)] + TINY_ARGS) == 2


def _all_commands_present() -> bool:
    try:
        cli.build_parser()
    except ImportError:
        return False
    return True


def cli_main(argv: list[str]) -> int:
    """``echocmr.cli.main``; while sibling subcommands are still missing, with ``train`` alone."""
    if _all_commands_present():
        return cli.main(argv)
    original = cli.COMMANDS
    cli.COMMANDS = ("train",)
    try:
        return cli.main(argv)
    finally:
        cli.COMMANDS = original


def test_a_stop_mid_epoch_resumes_at_the_next_batch(prepared, straight, tmp_path, monkeypatch):

    class StopAfterTwoChecks(train_module.StopFlag):
        checks = 0

        @property
        def requested(self) -> bool:  # what a SIGTERM during the second batch looks like
            StopAfterTwoChecks.checks += 1
            return StopAfterTwoChecks.checks >= 2

        @requested.setter
        def requested(self, value: bool) -> None:
            pass

    monkeypatch.setattr(train_module, "StopFlag", StopAfterTwoChecks)
    run = train_model(TINY, prepared, tmp_path / "stopped")
    status = _status(run)
    assert status["state"] == "stopped" and status["epoch"] == 0
    state = torch.load(run / "A4C" / "last.state.pt", weights_only=True)
    assert state["counters"]["step"] == 2 and not (run / "metrics.jsonl").exists()
    monkeypatch.undo()
    train_model(TINY, prepared, run, resume=True)
    a, b = (load_file(str(r / "A4C" / "last.safetensors")) for r in (straight, run))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [r["train_loss"] for r in read_json_lines(run / "metrics.jsonl")] == pytest.approx(
        [r["train_loss"] for r in read_json_lines(straight / "metrics.jsonl")], abs=1e-9)


def test_select_on_auroc_scores_the_view_level_findings_only():
    from echocmr.train_loop import validation_score

    names = ("wma_view", "lge_view", "wma_seg3", "t1")
    metrics = {"wma_view": 0.8, "lge_view": 0.6, "wma_seg3": 0.1, "t1": 40.0}
    assert validation_score(metrics, names, 0.7, 0.9) == -0.7  # the paper's rule by default
    assert validation_score(metrics, names, 0.7, 0.9, select_on="auroc") == pytest.approx(0.7)
    # A view-level finding with one class in the validation split has no AUROC: the other decides,
    # and with neither the loss does.
    assert validation_score({"wma_view": 0.8}, names, 0.7, 0.9, select_on="auroc") == 0.8
    assert validation_score({"wma_seg3": 0.9}, names, 0.7, 0.9, select_on="auroc") == -0.7
    assert validation_score({}, names, float("nan"), 0.9, select_on="auroc") == -0.9


def test_select_on_is_a_flag_and_a_preset_and_is_checked():
    from echocmr.commands.train import _validate, config_from_args
    from echocmr.config import PRESETS

    assert PRESETS["cpu-default"].select_on == "auroc" and PRESETS["cpu-demo"].select_on == "loss"
    # The shipped default's recipe differs from cpu-demo's model only in its map-pooled WMA output.
    assert PRESETS["cpu-default"].model == dataclasses.replace(PRESETS["cpu-demo"].model, map_outputs=1)
    args = cli.build_parser().parse_args(["train", *TINY_ARGS, "--select-on", "auroc"])
    assert config_from_args(args, PRESETS["cpu-demo"]).select_on == "auroc"
    with pytest.raises(ConfigError, match="select_on"):
        _validate(dataclasses.replace(TINY, select_on="accuracy"))


def test_only_binary_outputs_are_pooled_from_a_map():
    from echocmr.train_tasks import plan_tasks

    tasks = plan_tasks(dataclasses.replace(TINY, model=dataclasses.replace(TINY.model, map_outputs=2)))
    assert tasks[0].outputs[:2] == ("wma_view", "lge_view") and tasks[0].model.map_outputs == 2
    for bad in (8, -1, 10_000):  # the 8th output is T1 (continuous); -1 and too many are nonsense
        with pytest.raises(ConfigError, match=f"map_outputs={bad}"):
            plan_tasks(dataclasses.replace(TINY, model=dataclasses.replace(TINY.model, map_outputs=bad)))
