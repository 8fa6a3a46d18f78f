"""Background processes that outlive a page: start, find again, stop (a small process supervisor).

A started process is recorded in a JSON file with its pid *and* its start time, so the app
finds it again after a reload or from another browser tab. Signals are only ever sent to a
process whose pid, start time and command line all match the record, so a recycled pid is never
signalled. Each child is the leader of its own session (and process group), so a stop reaches
its data-loader workers or sub-commands too.

Nothing here knows about training runs; :mod:`echocmr.run_control` builds on it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import psutil

from .atomic import atomic_write_json
from .errors import ConfigError
from .jsonfile import now_iso, read_json_object

LOG_TAIL_LINES = 30
# Processes started by this interpreter; polled so finished ones do not linger as zombies.
_CHILDREN: dict[int, subprocess.Popen] = {}


@dataclass
class JobStatus:
    state: str  # running | finished | failed | stopped | interrupted | none
    rc: int | None = None
    log_tail: str = ""
    kind: str = ""
    started: str | None = None


@dataclass
class Job:
    """A background command (or sequence of commands) started by ``launch_job``."""

    record: Path
    log: Path
    pid: int
    create_time: float
    cmd: list[str]
    started: str


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


def _reap() -> None:
    for pid, proc in list(_CHILDREN.items()):
        if proc.poll() is not None:
            _CHILDREN.pop(pid, None)


def spawn(cmd: list[str], log_path: Path, record_path: Path, extra: dict | None = None) -> Job:
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
    record = read_json_object(record_path)
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
    its exit status once it ends (written by a small wrapper, ``python -m echocmr.processes``).
    """
    if not args:
        raise ConfigError("launch_job needs a command")
    commands = [list(map(str, args))] if isinstance(args[0], str) else [list(map(str, a)) for a in args]
    log_path = Path(log_path)
    record_path, result_path = job_paths(log_path)
    result_path.unlink(missing_ok=True)
    wrapper = [sys.executable, "-m", "echocmr.processes", "--result", str(result_path), "--", json.dumps(commands)]
    return spawn(wrapper, log_path, record_path, {"kind": kind, "commands": commands})


def job_paths(log_path: Path) -> tuple[Path, Path]:
    base = log_path.with_suffix("")
    return base.with_name(base.name + ".job.json"), base.with_name(base.name + ".result.json")


def job_status(log_path: str | os.PathLike) -> JobStatus:
    log_path = Path(log_path)
    record_path, result_path = job_paths(log_path)
    record = read_json_object(record_path)
    if not record:
        return JobStatus("none")
    result = read_json_object(result_path)
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
    return stop_process(job_paths(Path(log_path))[0], grace_s)


def running_jobs(jobs_dir: Path, kind: str) -> int:
    """How many jobs of ``kind`` under ``jobs_dir`` are running now."""
    records = [read_json_object(p) for p in Path(jobs_dir).glob("*.job.json")]
    logs = [Path(r["log"]) for r in records if r.get("kind") == kind and r.get("log")]
    return sum(job_status(log).state == "running" for log in logs)


def latest_job(jobs_dir: Path, kind: str) -> Path | None:
    """Log path of the most recently started job of ``kind`` under ``jobs_dir``."""
    best: tuple[float, Path] | None = None
    for record_path in Path(jobs_dir).glob("*.job.json"):
        record = read_json_object(record_path)
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


if __name__ == "__main__":
    sys.exit(_job_main(sys.argv))
