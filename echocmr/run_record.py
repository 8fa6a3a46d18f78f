"""A training run directory (docs/ARCHITECTURE.md): config.json, status.json, metrics.jsonl, train.log.

Only the writer (rank 0) creates one with ``enabled=True``; other ranks get a RunDir whose writes
are no-ops, so training code can call it unconditionally.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .atomic import append_line, atomic_write_json, atomic_write_text, read_json_lines
from .config import TrainConfig, from_dict, to_dict
from .errors import ConfigError
from .jsonfile import now_iso, read_json, read_json_object

STATES = ("running", "stopped", "finished", "diverged", "failed")
# Temp files of echocmr.atomic (".NAME.random.tmp") that only a training process writes.
TEMP_PATTERNS = (".config.json.*.tmp", ".status.json.*.tmp", ".metrics.jsonl.*.tmp",
                 "*/.last.*.tmp", "*/.best.*.tmp")
LOGGER_NAME = "echocmr"


def default_run_name(config: TrainConfig) -> str:
    """date-time-preset. Under torchrun the time is the torchrun agent's start, so a worker group
    that torchrun restarts (``--max-restarts``) finds the same folder and resumes it."""
    return f"{_run_start_time().strftime('%Y%m%d-%H%M%S')}-{config.preset}"


def _run_start_time() -> datetime:
    if "TORCHELASTIC_RUN_ID" in os.environ:
        try:
            import psutil

            return datetime.fromtimestamp(psutil.Process(os.getppid()).create_time(), tz=timezone.utc)
        except Exception:  # psutil missing or the parent gone: a fresh time is still a valid name
            pass
    return datetime.now(timezone.utc)


def elastic_run_id() -> str | None:
    """torchrun's job id (the same for every restart of the job), None outside torchrun."""
    return os.environ.get("TORCHELASTIC_RUN_ID")


def elastic_restart_of(run_dir: Path) -> bool:
    """True in a worker that torchrun restarted after a failure, for the run this job started.

    The job id in config.json must match: a restart after "already exists" must not resume some
    older run of the same name.
    """
    if int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0) < 1 or elastic_run_id() is None:
        return False
    return read_json_object(Path(run_dir) / "config.json").get("elastic_run_id") == elastic_run_id()


def read_run_config(run_dir: str | Path) -> tuple[TrainConfig, Path]:
    """(TrainConfig, prepared data path) from RUN/config.json."""
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise ConfigError(f"{Path(run_dir).name!r} is not a training run (no config.json)")
    data = read_json(path)
    return from_dict(TrainConfig, data["train"]), Path(data["data"])


def write_train_config(config: TrainConfig, path: Path) -> Path:
    """Write a run's settings as JSON, the file ``echocmr train --config`` reads."""
    return atomic_write_json(path, {"train": to_dict(config)})


def read_train_config(path: str | Path) -> TrainConfig:
    """Settings from ``--config FILE``: ``{"train": {...}}`` (also a run's config.json) or the fields alone.

    Fields left out keep the :class:`TrainConfig` defaults; unknown ones are refused.
    """
    data = read_json(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{Path(path).name} must hold a JSON object of training settings")
    fields = data.get("train", data)
    if not isinstance(fields, dict):
        raise ConfigError(f"{Path(path).name}: \"train\" must be a JSON object")
    try:
        return from_dict(TrainConfig, fields)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{Path(path).name} holds invalid training settings: {exc}") from exc


@dataclass
class RunDir:
    """Writes of one run directory. ``status`` keeps the fields written to status.json."""

    path: Path
    enabled: bool = True
    status: dict[str, Any] = field(default_factory=dict)
    started: bool = False  # nothing is written before start(): a refused run leaves no trace
    _handler: logging.Handler | None = None
    _last_progress: float = 0.0

    def start(self, config: TrainConfig, data_dir: Path, resumed: bool) -> None:
        if not self.enabled:
            return
        self.path.mkdir(parents=True, exist_ok=True)
        self.started = True
        self._remove_stale_temps()
        record: dict[str, Any] = {"train": to_dict(config), "data": str(data_dir)}
        if elastic_run_id() is not None:
            record["elastic_run_id"] = elastic_run_id()
        atomic_write_json(self.path / "config.json", record)
        self.status = {"state": "running", "pid": os.getpid(), "view": None, "epoch": 0,
                       "epochs": config.epochs, "started": now_iso(), "updated": now_iso(),
                       "message": "resumed" if resumed else "started"}
        self.write_status()
        self._handler = logging.FileHandler(self.path / "train.log", encoding="utf-8")
        self._handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger = logging.getLogger(LOGGER_NAME)
        logger.addHandler(self._handler)
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)

    def _remove_stale_temps(self) -> None:
        """Delete temp files a killed session left behind (atomic writes never renamed).

        Only the names training itself writes: launcher.json / train.out are written by the
        dashboard's process, possibly at this very moment.
        """
        for pattern in TEMP_PATTERNS:
            for tmp in self.path.glob(pattern):
                try:
                    tmp.unlink()
                except OSError:
                    pass

    def close(self) -> None:
        if self._handler is not None:
            logging.getLogger(LOGGER_NAME).removeHandler(self._handler)
            self._handler.close()
            self._handler = None

    def write_status(self, **fields: Any) -> None:
        """Update fields and rewrite status.json atomically."""
        if not (self.enabled and self.started):
            return
        self.status.update(fields)
        self.status["updated"] = now_iso()
        atomic_write_json(self.path / "status.json", self.status)

    def final_status(self, **fields: Any) -> None:
        """``write_status`` for the way out of a failure: the disk may be full or read-only, and
        the error being reported matters more than the status file."""
        try:
            self.write_status(**fields)
        except OSError as exc:
            logging.getLogger(LOGGER_NAME).error("could not record state %r in status.json: %s",
                                                 fields.get("state"), exc)

    def progress(self, batch: int, batches: int, every_s: float = 2.0) -> None:
        """Within-epoch progress for the dashboard, at most every ``every_s`` seconds."""
        if not self.enabled:
            return
        now = time.monotonic()
        if batch == batches or now - self._last_progress >= every_s:
            self._last_progress = now
            self.write_status(batch=batch, batches=batches)

    def append_metrics(self, record: dict) -> None:
        if self.enabled:
            append_line(self.path / "metrics.jsonl", json.dumps(record, allow_nan=True))

    def metrics(self) -> list[dict]:
        return read_json_lines(self.path / "metrics.jsonl")

    def reconcile_metrics(self, view: str, epoch: int, record: dict | None) -> None:
        """Keep metrics.jsonl consistent with a checkpoint at ``epoch`` of ``view``.

        Drops this view's lines after ``epoch`` (an epoch lost to a crash, about to be redone) and
        re-adds the checkpointed epoch's line when a crash came between state and metrics writes.
        """
        if not self.enabled:
            return
        records = self.metrics()
        keep = [r for r in records if not (r.get("view") == view and int(r.get("epoch", 0)) > epoch)]
        has_line = any(r.get("view") == view and int(r.get("epoch", 0)) == epoch for r in keep)
        if record is not None and not has_line and epoch > 0:
            keep.append(record)
        if keep != records:
            text = "".join(json.dumps(r, allow_nan=True) + "\n" for r in keep)
            atomic_write_text(self.path / "metrics.jsonl", text)
