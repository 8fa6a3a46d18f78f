"""Training runs and background jobs, as separate processes (never threads of the caller).

The dashboard starts ``echocmr train`` / ``evaluate`` / ``synth`` + ``prepare`` through this
module and later (maybe after a page reload, or from another browser tab) finds them again from
the files on disk: a run directory's ``status.json`` / ``metrics.jsonl`` / ``train.log`` written by
training, and a ``launcher.json`` written here with the child's pid *and* its start time.

Signals are only ever sent to a process whose pid, start time and command line all match the
record, so a recycled pid is never signalled. Each child is the leader of its own session (and
process group), so a stop reaches its data-loader workers or sub-commands too.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import psutil

from .access import Actor, authorize
from .atomic import atomic_write_json, read_json_lines
from .config import TrainConfig, preset
from .errors import ConfigError
from .quotas import Quotas, check_synthesis, check_training_slot, free_bytes

LAUNCHER = "launcher.json"
TRAIN_OUT = "train.out"  # stdout/stderr of the training process (tracebacks land here)
EVAL_LOG = "evaluate.log"
LOG_TAIL_LINES = 30
INTERRUPTED = "interrupted (process ended)"
# Processes started by this interpreter; polled so finished ones do not linger as zombies.
_CHILDREN: dict[int, subprocess.Popen] = {}


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


@dataclass
class Job:
    """A background command (or sequence of commands) started by ``launch_job``."""

    record: Path
    log: Path
    pid: int
    create_time: float
    cmd: list[str]
    started: str


@dataclass
class JobStatus:
    state: str  # running | finished | failed | stopped | interrupted | none
    rc: int | None = None
    log_tail: str = ""
    kind: str = ""
    started: str | None = None


def now_iso() -> str:
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")


def new_run_name(prefix: str = "run") -> str:
    """Timestamp + random suffix: two runs started in the same second still differ."""
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in prefix) or "run"
    return f"{safe}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def tail(path: Path, lines: int = LOG_TAIL_LINES, max_bytes: int = 64_000) -> str:
    """The last ``lines`` lines of a text file, reading at most ``max_bytes`` from its end."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - max_bytes))
            data = handle.read()
    except OSError:
        return ""
    text = data.decode("utf-8", errors="replace").replace("\r", "\n")
    return "\n".join([ln for ln in text.splitlines() if ln.strip()][-lines:])


# ---------------------------------------------------------------- processes


def _reap() -> None:
    for pid, proc in list(_CHILDREN.items()):
        if proc.poll() is not None:
            _CHILDREN.pop(pid, None)


def _spawn(cmd: list[str], log_path: Path, record_path: Path, extra: dict | None = None) -> Job:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, env=env, close_fds=True)
    _CHILDREN[proc.pid] = proc
    try:
        create_time = psutil.Process(proc.pid).create_time()
    except psutil.NoSuchProcess:  # finished already; record something that can never match
        create_time = -1.0
    started = now_iso()
    record = {"pid": proc.pid, "create_time": create_time, "cmd": cmd, "started": started,
              "log": str(log_path), **(extra or {})}
    atomic_write_json(record_path, record)
    return Job(record_path, log_path, proc.pid, create_time, cmd, started)


def verified_process(record: dict) -> psutil.Process | None:
    """The live process the record describes, or None (ended, zombie, or pid reused)."""
    _reap()
    pid, create_time = record.get("pid"), record.get("create_time")
    if not isinstance(pid, int) or not isinstance(create_time, (int, float)) or pid <= 0:
        return None
    try:
        proc = psutil.Process(pid)
        if abs(proc.create_time() - float(create_time)) > 0.005:
            return None  # same number, different process
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        if "echocmr" not in " ".join(proc.cmdline()):
            return None
        return proc
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None


def _group_members(pgid: int, since: float) -> list[psutil.Process]:
    members = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid and proc.create_time() >= since - 0.005:
                members.append(proc)
        except (psutil.Error, OSError):
            continue
    return members


def stop_process(record_path: Path, grace_s: float = 20.0) -> str:
    """SIGTERM the recorded process group, wait ``grace_s``, then SIGKILL what is left.

    Returns ``"stopped"`` (ended within the grace period), ``"killed"`` or ``"not running"``.
    """
    record = _read_json(record_path)
    leader = verified_process(record)
    if leader is None:
        return "not running"
    pgid = leader.pid
    try:
        own_group = os.getpgid(leader.pid) == leader.pid  # launched with start_new_session
    except OSError:
        return "not running"
    members = _group_members(pgid, record["create_time"]) if own_group else [leader]
    if own_group:
        os.killpg(pgid, signal.SIGTERM)
    else:
        leader.terminate()
    _, alive = psutil.wait_procs(members, timeout=grace_s)
    _reap()
    if not alive:
        return "stopped"
    for proc in alive:  # psutil re-checks each process's identity before signalling
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=10)
    _reap()
    return "killed"


def launch_job(args: Sequence[str] | Sequence[Sequence[str]], log_path: str | os.PathLike,
               kind: str = "") -> Job:
    """Run a command (or several, in order, stopping at the first failure) in the background.

    Output goes to ``log_path``; ``X.job.json`` beside it records the process and ``X.result.json``
    its exit status once it ends (written by a small wrapper, ``python -m echocmr.runs``).
    """
    if not args:
        raise ValueError("launch_job needs a command")
    commands = [list(map(str, args))] if isinstance(args[0], str) else [list(map(str, a)) for a in args]
    log_path = Path(log_path)
    record_path, result_path = _job_paths(log_path)
    result_path.unlink(missing_ok=True)
    wrapper = [sys.executable, "-m", "echocmr.runs", "--result", str(result_path), "--", json.dumps(commands)]
    return _spawn(wrapper, log_path, record_path, {"kind": kind, "commands": commands})


def _job_paths(log_path: Path) -> tuple[Path, Path]:
    base = log_path.with_suffix("")
    return base.with_name(base.name + ".job.json"), base.with_name(base.name + ".result.json")


def job_status(log_path: str | os.PathLike) -> JobStatus:
    log_path = Path(log_path)
    record_path, result_path = _job_paths(log_path)
    record = _read_json(record_path)
    if not record:
        return JobStatus("none")
    result = _read_json(result_path)
    log_tail = tail(log_path)
    common = {"log_tail": log_tail, "kind": record.get("kind", ""), "started": record.get("started")}
    if result:
        rc = result.get("rc")
        state = "finished" if rc == 0 else ("stopped" if result.get("stopped") else "failed")
        return JobStatus(state, rc, **common)
    if verified_process(record) is not None:
        return JobStatus("running", **common)
    return JobStatus("interrupted", **common)


def stop_job(log_path: str | os.PathLike, grace_s: float = 20.0) -> str:
    return stop_process(_job_paths(Path(log_path))[0], grace_s)


def running_jobs(jobs_dir: Path, kind: str) -> int:
    """How many jobs of ``kind`` under ``jobs_dir`` are running now."""
    logs = [Path(r["log"]) for r in map(_read_json, Path(jobs_dir).glob("*.job.json"))
            if r.get("kind") == kind and r.get("log")]
    return sum(job_status(log).state == "running" for log in logs)


def latest_job(jobs_dir: Path, kind: str) -> Path | None:
    """Log path of the most recently started job of ``kind`` under ``jobs_dir``."""
    best: tuple[float, Path] | None = None
    for record_path in Path(jobs_dir).glob("*.job.json"):
        record = _read_json(record_path)
        if record.get("kind") == kind and record.get("log"):
            key = record_path.stat().st_mtime
            if best is None or key > best[0]:
                best = (key, Path(record["log"]))
    return best[1] if best else None


def _job_main(argv: list[str]) -> int:
    """Wrapper process of ``launch_job``: run the commands in order and record the exit status."""
    result_path, commands = Path(argv[argv.index("--result") + 1]), json.loads(argv[argv.index("--") + 1])
    stopping = False

    def on_term(signum, frame):  # the children got the same signal (same process group)
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_term)
    rc = 0
    for cmd in commands:
        if stopping:
            break
        print(f"$ {' '.join(cmd[1:] if cmd[0] == sys.executable else cmd)}", flush=True)
        rc = subprocess.call(cmd)
        if rc != 0:
            break
    atomic_write_json(result_path, {"rc": rc, "stopped": stopping, "finished": now_iso()})
    return 0 if rc == 0 else 1


# ---------------------------------------------------------------- training runs


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "echocmr.cli", *args]


def _train_alive(run_dir: Path, status: dict) -> bool:
    launcher = _read_json(run_dir / LAUNCHER)
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
    status = _read_json(run_dir / "status.json")
    launcher = _read_json(run_dir / LAUNCHER)
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


# TrainConfig fields that ``echocmr train`` has a flag for (value -> argv).
_TRAIN_FLAGS = {"lr": "--lr", "patience": "--patience", "num_workers": "--num-workers", "seed": "--seed",
                "max_train_clips": "--max-train-clips", "classifier_epochs": "--classifier-epochs",
                "classifier_lr": "--classifier-lr"}
_MODEL_FLAGS = {"arch": "--arch", "width": "--width", "n_frames": "--frames"}


def train_command(config: TrainConfig, data_dir: Path, runs_dir: Path, name: str) -> list[str]:
    """The ``echocmr train`` command line that reproduces ``config`` exactly.

    Fields are passed when they differ from the preset; a change the command line cannot
    express raises ConfigError (a run silently trained with other settings would be worse).
    """
    base = preset(config.preset)
    cmd = _cli("train", "--data", str(data_dir), "--out", str(runs_dir), "--run-name", name,
               "--preset", config.preset, "--epochs", str(config.epochs),
               "--batch-size", str(config.batch_size), "--views", *config.views)
    if config.device in ("cpu", "cuda"):
        cmd += ["--device", config.device]
    cmd += [arg for key, flag in _TRAIN_FLAGS.items() if getattr(config, key) != getattr(base, key)
            for arg in (flag, str(getattr(config, key)))]
    cmd += [arg for key, flag in _MODEL_FLAGS.items() if getattr(config.model, key) != getattr(base.model, key)
            for arg in (flag, str(getattr(config.model, key)))]
    if base.view_classifier and not config.view_classifier:
        cmd.append("--no-view-classifier")
    if config.compile and not base.compile:
        cmd.append("--compile")
    expressible = {*_TRAIN_FLAGS, "preset", "epochs", "batch_size", "views", "device", "view_classifier",
                   "compile", "model"}
    lost = [f.name for f in dataclasses.fields(config) if f.name not in expressible
            and getattr(config, f.name) != getattr(base, f.name)]
    lost += [f"model.{f.name}" for f in dataclasses.fields(config.model) if f.name not in _MODEL_FLAGS
             and getattr(config.model, f.name) != getattr(base.model, f.name)]
    if (not base.view_classifier and config.view_classifier) or (base.compile and not config.compile):
        lost.append("view_classifier/compile")
    if lost:
        raise ConfigError(f"these settings differ from preset {config.preset!r} but `echocmr train` has no "
                          f"option for them: {', '.join(lost)}")
    return cmd


def start_run(config: TrainConfig, data_dir: str | os.PathLike, runs_dir: str | os.PathLike,
              name: str | None = None, actor: Actor | None = None) -> RunInfo:
    """Launch ``echocmr train`` in its own process; returns at once. Researchers only
    (``access``), within the concurrent-run quota (``quotas``)."""
    runs_dir, data_dir = Path(runs_dir), Path(data_dir)
    name = name or new_run_name(config.preset)
    authorize(actor, "train", name)
    check_training_slot(sum(r.active for r in list_runs(runs_dir)), Quotas.from_env())
    run_dir = runs_dir / name
    cmd = train_command(config, data_dir, runs_dir, name)  # refuses before any folder is made
    runs_dir.mkdir(parents=True, exist_ok=True)
    run_dir.mkdir(exist_ok=False)  # a name clash fails loudly instead of mixing two runs' files
    _spawn(cmd, run_dir / TRAIN_OUT, run_dir / LAUNCHER)
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
        raise RuntimeError(f"run {run_dir.name} is still {info.state}")
    _spawn(_cli("train", "--resume", str(run_dir)), run_dir / TRAIN_OUT, run_dir / LAUNCHER)
    return run_info(run_dir)


def _views_of(run_dir: Path) -> list[str]:
    """Models the run trains, in training order (the view classifier first, when it has one)."""
    train = _read_json(run_dir / "config.json").get("train", {})
    views = list(train.get("views") or [])
    return (["view_classifier"] if train.get("view_classifier", False) else []) + views


def read_progress(run_dir: str | os.PathLike) -> RunProgress:
    import pandas as pd  # here, so the job wrapper process starts without pandas

    run_dir = Path(run_dir)
    info = run_info(run_dir)
    status = _read_json(run_dir / "status.json")
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
    data_dir = data_dir or _read_json(run_dir / "config.json").get("data")
    if not data_dir:
        raise RuntimeError(f"run {run_dir.name} does not say which prepared data set it used")
    return launch_job(_cli("evaluate", "--run", str(run_dir), "--data", str(data_dir),
                           "--out", str(run_dir / "results")), run_dir / EVAL_LOG, kind="evaluate")


def evaluation_status(run_dir: str | os.PathLike) -> JobStatus:
    return job_status(Path(run_dir) / EVAL_LOG)


def list_prepared(home: str | os.PathLike) -> list[Path]:
    """Prepared data sets (folders with prepare.json) under ``home/prepared``."""
    root = Path(home) / "prepared"
    return sorted((p.parent for p in root.glob("*/prepare.json")), key=lambda p: p.name)


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
    from .prepare import summarise

    run_dir = Path(run_dir)
    authorize(actor, "activate", str(run_dir))
    data_dir = Path(_read_json(run_dir / "config.json").get("data") or "")
    summary = summarise(data_dir) if (data_dir / "manifest.csv").exists() else None
    out = build_bundle(run_dir, run_dir / "results", Path(models_dir) / run_dir.name, data_summary=summary)
    set_active_bundle(out)
    return out


if __name__ == "__main__":
    sys.exit(_job_main(sys.argv))
