"""Training runs, evaluations and data sets started from the app, each in its own process.

The dashboard starts ``echocmr train`` / ``evaluate`` / ``synth`` + ``prepare`` through this
module and later (maybe after a page reload, or from another browser tab) finds them again from
the files on disk: a run directory's ``status.json`` / ``metrics.jsonl`` / ``train.log`` written by
training (:mod:`echocmr.run_record`), and a ``launcher.json`` written by the process supervisor
(:mod:`echocmr.processes`) with the child's pid *and* its start time.

A run's settings travel as one JSON file (``train_config.json`` in the run folder, read by
``echocmr train --config``), never as a command line rebuilt flag by flag.
"""

from __future__ import annotations

import os
import secrets
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psutil

from .access import Actor, authorize
from .atomic import read_json_lines
from .config import TrainConfig
from .errors import ConfigError, RunStateError
from .jsonfile import read_json_object
from .processes import Job, JobStatus, job_status, launch_job, running_jobs, spawn, stop_process, tail, verified_process
from .quotas import Quotas, check_synthesis, check_training_slot, free_bytes
from .run_record import write_train_config

LAUNCHER = "launcher.json"
TRAIN_CONFIG = "train_config.json"  # the settings a run was started with (``echocmr train --config``)
TRAIN_OUT = "train.out"  # stdout/stderr of the training process (tracebacks land here)
EVAL_LOG = "evaluate.log"
INTERRUPTED = "interrupted (process ended)"


@dataclass
class RunInfo:
    name: str
    path: Path
    state: str
    view: str | None = None
    epoch: int | None = None
    epochs: int | None = None
    started: str | None = None
    updated: str | None = None
    message: str = ""
    pid: int | None = None

    @property
    def active(self) -> bool:
        """True while a live process belongs to the run (running or still starting)."""
        return self.state in ("running", "starting")


@dataclass
class RunProgress:
    info: RunInfo
    status: dict
    metrics: Any  # pandas DataFrame: one row per finished epoch, ``val_<target>`` columns flattened
    views: list[str] = field(default_factory=list)
    eta_s: float | None = None  # upper bound (early stopping may end a view sooner)
    batch: int | None = None
    batches: int | None = None
    log_tail: str = ""


def new_run_name(prefix: str = "run") -> str:
    """Timestamp + random suffix: two runs started in the same second still differ."""
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in prefix) or "run"
    return f"{safe}-{datetime.now(timezone.utc).strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


# ---------------------------------------------------------------- training runs


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "echocmr.cli", *args]


def _train_alive(run_dir: Path, status: dict) -> bool:
    launcher = read_json_object(run_dir / LAUNCHER)
    if launcher:
        return verified_process(launcher) is not None
    # A run started from a terminal has no launcher.json: trust status.json's pid only if that
    # process is an echocmr training process that started no later than the run did.
    pid = status.get("pid")
    if not isinstance(pid, int):
        return False
    try:
        proc = psutil.Process(pid)
        started = datetime.fromisoformat(str(status.get("started"))).timestamp()
        cmd = " ".join(proc.cmdline())
        return ("echocmr" in cmd and "train" in cmd and proc.status() != psutil.STATUS_ZOMBIE
                and proc.create_time() <= started + 5)
    except (psutil.Error, ValueError, TypeError):
        return False


def _newer(a: str | None, b: str | None) -> bool:
    """ISO time ``a`` is later than ``b`` (True when ``b`` is missing)."""
    if not b:
        return True
    try:
        return datetime.fromisoformat(str(a)) > datetime.fromisoformat(str(b))
    except (TypeError, ValueError):
        return False


def run_info(run_dir: str | os.PathLike) -> RunInfo:
    run_dir = Path(run_dir)
    status = read_json_object(run_dir / "status.json")
    launcher = read_json_object(run_dir / LAUNCHER)
    alive = _train_alive(run_dir, status)
    state = str(status.get("state") or "")
    if alive and state != "running" and _newer(launcher.get("started"), status.get("updated")):
        state = "starting"  # just launched or resumed; training has not written status yet
    elif not alive and state in ("running", ""):
        state = INTERRUPTED if state == "running" else ("failed to start" if launcher else "unknown")
    return RunInfo(
        name=run_dir.name, path=run_dir, state=state, view=status.get("view"),
        epoch=status.get("epoch"), epochs=status.get("epochs"),
        started=status.get("started") or launcher.get("started"), updated=status.get("updated"),
        message=str(status.get("message") or ""), pid=status.get("pid") or launcher.get("pid"),
    )


def list_runs(runs_dir: str | os.PathLike) -> list[RunInfo]:
    """Every run directory under ``runs_dir``, newest first."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    found = [d for d in runs_dir.iterdir() if d.is_dir()
             and any((d / f).exists() for f in ("status.json", "config.json", LAUNCHER))]
    infos = [run_info(d) for d in found]
    return sorted(infos, key=lambda r: (r.started or "", r.name), reverse=True)


def train_command(config_file: Path, data_dir: Path, runs_dir: Path, name: str) -> list[str]:
    """The ``echocmr train`` command line of a run whose settings are in ``config_file``."""
    return _cli("train", "--config", str(config_file), "--data", str(data_dir), "--out", str(runs_dir),
                "--run-name", name)


def start_run(config: TrainConfig, data_dir: str | os.PathLike, runs_dir: str | os.PathLike,
              name: str | None = None, actor: Actor | None = None) -> RunInfo:
    """Launch ``echocmr train`` in its own process; returns at once. Researchers only
    (``access``), within the concurrent-run quota (``quotas``)."""
    runs_dir, data_dir = Path(runs_dir), Path(data_dir)
    name = name or new_run_name(config.preset)
    authorize(actor, "train", name)
    check_training_slot(sum(r.active for r in list_runs(runs_dir)), Quotas.from_env())
    run_dir = runs_dir / name
    runs_dir.mkdir(parents=True, exist_ok=True)
    run_dir.mkdir(exist_ok=False)  # a name clash fails loudly instead of mixing two runs' files
    config_file = write_train_config(config, run_dir / TRAIN_CONFIG)
    spawn(train_command(config_file, data_dir, runs_dir, name), run_dir / TRAIN_OUT, run_dir / LAUNCHER)
    return run_info(run_dir)


def stop_run(run_dir: str | os.PathLike, grace_s: float = 20.0, actor: Actor | None = None) -> str:
    """Graceful stop (training saves ``last`` and writes state 'stopped'), then a hard one."""
    authorize(actor, "stop", str(run_dir))
    return stop_process(Path(run_dir) / LAUNCHER, grace_s)


def resume_run(run_dir: str | os.PathLike, actor: Actor | None = None) -> RunInfo:
    run_dir = Path(run_dir)
    authorize(actor, "resume", str(run_dir))
    check_training_slot(sum(r.active for r in list_runs(run_dir.parent)), Quotas.from_env())
    info = run_info(run_dir)
    if info.active:
        raise RunStateError(f"run {run_dir.name} is still {info.state}")
    spawn(_cli("train", "--resume", str(run_dir)), run_dir / TRAIN_OUT, run_dir / LAUNCHER)
    return run_info(run_dir)


def _views_of(run_dir: Path) -> list[str]:
    """Models the run trains, in training order (the view classifier first, when it has one)."""
    train = read_json_object(run_dir / "config.json").get("train", {})
    views = list(train.get("views") or [])
    return (["view_classifier"] if train.get("view_classifier", False) else []) + views


def read_progress(run_dir: str | os.PathLike) -> RunProgress:
    import pandas as pd  # here, so the job wrapper process starts without pandas

    run_dir = Path(run_dir)
    info = run_info(run_dir)
    status = read_json_object(run_dir / "status.json")
    rows = []
    for rec in read_json_lines(run_dir / "metrics.jsonl"):
        row = {k: v for k, v in rec.items() if k != "val"}
        row.update({f"val_{k}": v for k, v in (rec.get("val") or {}).items()})
        rows.append(row)
    metrics = pd.DataFrame(rows)
    views = _views_of(run_dir)
    log_tail = tail(run_dir / "train.log") or tail(run_dir / TRAIN_OUT)
    if info.state not in ("running", "starting"):
        # a crash before logging leaves its traceback only in train.out
        out = tail(run_dir / TRAIN_OUT, 12)
        if info.state in ("failed", "failed to start", INTERRUPTED) and out and out not in log_tail:
            log_tail = (log_tail + "\n" + out).strip()
    return RunProgress(info, status, metrics, views, _eta(info, metrics, views),
                       status.get("batch"), status.get("batches"), log_tail)


def _eta(info: RunInfo, metrics, views: list[str]) -> float | None:
    if info.state != "running" or metrics.empty or "seconds" not in metrics or not info.epochs:
        return None
    per_epoch = float(metrics["seconds"].dropna().mean())
    left = max(0, int(info.epochs) - int(info.epoch or 0))
    if info.view in views:
        left += int(info.epochs) * (len(views) - views.index(info.view) - 1)
    return per_epoch * left


# ---------------------------------------------------------------- evaluation and data sets


def start_evaluation(run_dir: str | os.PathLike, data_dir: str | os.PathLike | None = None,
                     actor: Actor | None = None) -> Job:
    """``echocmr evaluate --run RUN --data DATA --out RUN/results`` in the background."""
    run_dir = Path(run_dir)
    authorize(actor, "evaluate", str(run_dir))
    data_dir = data_dir or read_json_object(run_dir / "config.json").get("data")
    if not data_dir:
        raise ConfigError(f"run {run_dir.name} does not say which prepared data set it used")
    return launch_job(_cli("evaluate", "--run", str(run_dir), "--data", str(data_dir),
                           "--out", str(run_dir / "results")), run_dir / EVAL_LOG, kind="evaluate")


def evaluation_status(run_dir: str | os.PathLike) -> JobStatus:
    return job_status(Path(run_dir) / EVAL_LOG)


def list_prepared(home: str | os.PathLike) -> list[Path]:
    """Prepared data sets (folders with prepare.json) under ``home/prepared``."""
    from .prepared import list_prepared as prepared_under

    return prepared_under(Path(home) / "prepared")


def make_synthetic_dataset(home: str | os.PathLike, patients: int = 40, name: str | None = None,
                           actor: Actor | None = None) -> Job:
    """Generate a synthetic cohort and prepare it (views from the cohort's ground truth); one at
    a time and only if it fits on disk (``quotas``)."""
    home = Path(home)
    name = name or new_run_name(f"synth-{patients}")
    authorize(actor, "synthesise", name)
    check_synthesis(running_jobs(home / "jobs", "synthetic-data"), patients, free_bytes(home), Quotas.from_env())
    cohort, prepared = home / "cohorts" / name, home / "prepared" / name
    commands = [_cli("synth", "--out", str(cohort), "--patients", str(patients)),
                _cli("prepare", "--cohort", str(cohort), "--out", str(prepared), "--use-known-views")]
    return launch_job(commands, home / "jobs" / f"{name}.log", kind="synthetic-data")


def make_active_model(run_dir: str | os.PathLike, models_dir: str | os.PathLike, actor: Actor | None = None) -> Path:
    """Bundle an evaluated run (``models_dir/<run name>``) and make it the app's active model."""
    from .bundle import build_bundle, set_active_bundle
    from .prepared import has_manifest, summarise

    run_dir = Path(run_dir)
    authorize(actor, "activate", str(run_dir))
    data_dir = Path(read_json_object(run_dir / "config.json").get("data") or "")
    summary = summarise(data_dir) if has_manifest(data_dir) else None
    out = build_bundle(run_dir, run_dir / "results", Path(models_dir) / run_dir.name, data_summary=summary)
    set_active_bundle(out)
    return out

