"""Fault injection for training runs: shared by tests/test_faults.py and bench/faults.py.

Run as a script, this module is ``echocmr train`` with one fault planted first, chosen by the
JSON in ``$ECHOCMR_TEST_FAULT`` (the faults live here, not in the product code):

  {"kill": {"point": "before_replace" | "after_replace" | "append", "name": "last.state.pt", "nth": 1}}
      SIGKILL this process the nth time an atomic write of a file called ``name`` reaches
      ``point`` (temp file fully written but not renamed / just renamed), or just before the
      nth line is appended to ``name``.
  {"nan_after_steps": k}
      the training loss becomes NaN from the (k+1)th training step of this session on.
  {"fsize": n}
      RLIMIT_FSIZE = n bytes with SIGXFSZ ignored, so a bigger write fails with EFBIG (a full disk).
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import resource
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FAULT_ENV = "ECHOCMR_TEST_FAULT"
# Same settings as tests/test_train.py's TINY_ARGS, but on the cpu-demo preset so that
# echocmr.run_control.start_run can express them too.
# Patience high enough that early stopping never ends a run before its --epochs.
TINY_ARGS = ["--preset", "cpu-demo", "--views", "A4C", "--no-view-classifier", "--width", "4", "--frames", "8",
             "--batch-size", "4", "--num-workers", "0", "--device", "cpu", "--patience", "1000"]


def tiny_config(epochs: int):
    """The TrainConfig that ``TINY_ARGS --epochs N`` builds (for echocmr.run_control.start_run)."""
    from echocmr.config import preset

    base = preset("cpu-demo")
    return dataclasses.replace(base, views=("A4C",), view_classifier=False, batch_size=4, num_workers=0,
                               device="cpu", epochs=epochs, patience=1000,
                               model=dataclasses.replace(base.model, width=4, n_frames=8))


def child_env(fault: dict | None = None) -> dict[str, str]:
    # One thread per process: 2 CPU cores are shared with other work, and results must not
    # depend on the thread count (the interrupted runs are compared bit for bit).
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONPATH=str(REPO),
               PYTHONUNBUFFERED="1")
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK", FAULT_ENV):
        env.pop(key, None)
    if fault:
        env[FAULT_ENV] = json.dumps(fault)
    return env


def train_argv(fault: dict | None = None) -> list[str]:
    """The command prefix of ``echocmr train`` (through this module when a fault is planted)."""
    if fault:
        return [sys.executable, str(Path(__file__).resolve()), "train"]
    return [sys.executable, "-m", "echocmr.cli", "train"]


def fresh_args(data: Path, out: Path, name: str, epochs: int) -> list[str]:
    return ["--data", str(data), "--out", str(out), "--run-name", name, "--epochs", str(epochs), *TINY_ARGS]


def resume_args(run: Path, epochs: int) -> list[str]:
    return ["--resume", str(run), "--epochs", str(epochs)]


def start(args: list[str], log: Path, fault: dict | None = None) -> subprocess.Popen:
    """Start a training process; its output goes to ``log`` (a pipe nobody reads could block it)."""
    preexec = _fsize_limit(fault["fsize"]) if fault and "fsize" in fault else None
    with open(log, "ab") as handle:
        return subprocess.Popen([*train_argv(fault), *args], env=child_env(fault), cwd=REPO, stdout=handle,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, preexec_fn=preexec)


def run(args: list[str], log: Path, fault: dict | None = None, timeout: float = 300) -> int:
    proc = start(args, log, fault)
    try:
        return proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _fsize_limit(limit: int):
    def apply() -> None:  # in the child, before exec: SIG_IGN survives exec, the limit too
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def read_status(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / "status.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def wait_until(predicate, timeout: float, proc: subprocess.Popen | None = None, step: float = 0.05) -> bool:
    """Poll ``predicate``; False on timeout or when ``proc`` ended first."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        if proc is not None and proc.poll() is not None:
            return bool(predicate())
        time.sleep(step)
    return False


def committed_epoch(run_dir: Path, task: str = "A4C") -> int:
    """Completed epochs in the commit point (the training state); raises if it cannot be read."""
    from echocmr.checkpoint import load_training_state

    return int(load_training_state(run_dir / task / "last")["counters"]["epoch"])


def checkpoint_problems(run_dir: Path, task: str = "A4C") -> list[str]:
    """Names of the task's files that exist but do not load (empty: all fine)."""
    from echocmr.checkpoint import load_checkpoint, load_training_state, state_path
    from echocmr.errors import CheckpointError

    problems = []
    folder = run_dir / task
    if state_path(folder / "last").exists():
        try:
            load_training_state(folder / "last")
        except CheckpointError as exc:
            problems.append(f"last.state.pt: {exc}")
    for stem in ("last", "best"):
        if (folder / f"{stem}.json").exists() or (folder / f"{stem}.safetensors").exists():
            try:
                load_checkpoint(folder / stem)
            except CheckpointError as exc:
                problems.append(f"{stem}: {getattr(exc, 'code', None) or ''} {exc}")
    return problems


def temp_files(run_dir: Path) -> list[str]:
    """Atomic-write temp files and checkpoint weights staged but never promoted."""
    leftovers = [*run_dir.rglob(".*.tmp"), *run_dir.rglob("*.next.safetensors")]
    return sorted(str(p.relative_to(run_dir)) for p in leftovers)


def metric_epochs(run_dir: Path, view: str = "A4C") -> list[int]:
    from echocmr.atomic import read_json_lines

    return [int(r["epoch"]) for r in read_json_lines(run_dir / "metrics.jsonl") if r.get("view") == view]


def same_weights(a: Path, b: Path) -> bool:
    import torch
    from safetensors.torch import load_file

    x, y = load_file(str(a)), load_file(str(b))
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


# ----------------------------------------------------------------------------- the kill -9 loop

@dataclass
class KillStats:
    kills: int = 0
    resumes: int = 0
    lost: list[int] = field(default_factory=list)  # epochs of work lost by each kill
    corrupted: list[str] = field(default_factory=list)  # commit points that did not load
    finished_early: bool = False


def kill_loop(data: Path, out: Path, name: str, kills: int, epochs: int, max_delay: float,
              rng: random.Random, timeout: float = 120) -> KillStats:
    """Start, SIGKILL at a random moment of training, ``--resume``, … ``kills`` times; then
    let the last session finish. Records what each kill cost."""
    run_dir, log, stats = out / name, out / f"{name}.out", KillStats()
    while stats.kills < kills:
        resumed = (run_dir / "config.json").is_file()
        proc = start(resume_args(run_dir, epochs) if resumed else fresh_args(data, out, name, epochs), log)
        stats.resumes += resumed
        # The clock starts once this process is training (its pid in status.json): imports are
        # not interesting moments to die.
        if not wait_until(lambda: read_status(run_dir).get("pid") == proc.pid, timeout, proc):
            _finish(proc, timeout)
            stats.finished_early = proc.returncode == 0
            break
        time.sleep(rng.uniform(0.0, max_delay))
        seen = int(read_status(run_dir).get("epoch") or 0)
        if proc.poll() is not None:  # the run finished inside the delay
            stats.finished_early = True
            break
        proc.kill()  # SIGKILL, our own child
        proc.wait()
        stats.kills += 1
        _record_kill(run_dir, seen, stats)
    if not stats.finished_early:
        rc = run(resume_args(run_dir, epochs), log, timeout=timeout)
        stats.resumes += 1
        if rc != 0:
            raise RuntimeError(f"the final resume failed (rc {rc}); see {log}")
    return stats


def _record_kill(run_dir: Path, seen: int, stats: KillStats) -> None:
    from echocmr.errors import CheckpointError

    try:
        committed = committed_epoch(run_dir)
    except CheckpointError as exc:
        if (run_dir / "A4C" / "last.state.pt").exists():
            stats.corrupted.append(str(exc))
        committed = 0  # killed before the first commit: nothing but the first epoch to lose
    # ``seen`` completed epochs were on record just before the kill, and one was in progress.
    stats.lost.append(max(0, seen + 1 - committed))
    stats.corrupted += checkpoint_problems(run_dir)


def _finish(proc: subprocess.Popen, timeout: float) -> None:
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# ----------------------------------------------------------------------------- fault runner (child side)

def _install(fault: dict) -> None:
    if "kill" in fault:
        _install_kill(**fault["kill"])
    if "nan_after_steps" in fault:
        _install_nan(int(fault["nan_after_steps"]))


def _install_kill(point: str, name: str, nth: int = 1) -> None:
    """Wrap echocmr.atomic's view of ``os`` (only that module's), or run_record's append_line."""
    import types

    from echocmr import atomic, run_record

    hits = {"n": 0}

    def maybe_die(path) -> None:
        if Path(path).name == name:
            hits["n"] += 1
            if hits["n"] == nth:
                os.kill(os.getpid(), signal.SIGKILL)

    if point == "append":
        original = run_record.append_line
        run_record.append_line = lambda path, line: (maybe_die(path), original(path, line))[1]
        return
    real_os = atomic.os

    def replace(src, dst):
        if point == "before_replace":
            maybe_die(dst)
        real_os.replace(src, dst)
        if point == "after_replace":
            maybe_die(dst)

    proxy = types.SimpleNamespace(**{k: getattr(real_os, k) for k in dir(real_os) if not k.startswith("__")})
    proxy.replace = replace
    atomic.os = proxy


def _install_nan(after: int) -> None:
    import torch

    from echocmr import train

    original, steps = train.multitask_loss, {"n": 0}

    def loss(out, *args):
        value = original(out, *args)
        if torch.is_grad_enabled():  # training steps only; evaluation runs in inference mode
            steps["n"] += 1
            if steps["n"] > after:
                return value * float("nan")
        return value

    train.multitask_loss = loss


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(REPO))
    fault = json.loads(os.environ.get(FAULT_ENV) or "{}")
    _install(fault)
    from echocmr import cli

    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
