"""``echocmr train``: the view classifier, then one multi-task model per view, in one run directory.

``train_model(config, data_dir, run_dir, resume)`` is the single entry point (CLI, dashboard
launcher, demo-asset builder). Under torchrun every rank calls it; only rank 0 writes files.

Per epoch, rank 0 writes in this order:
  1. ``<task>/last.state.pt`` — model weights + optimiser, scheduler, scaler, RNG, counters, and the
     epoch's metrics record, in one atomic file: the commit point a resume starts from;
  2. ``<task>/last.safetensors/.json``;  3. ``<task>/best.*`` if the validation score improved;
  4. the metrics.jsonl line;  5. status.json.
A kill -9 between any two writes is repaired on resume from the state file (last/best rewritten,
metrics lines of later epochs dropped, a missing line re-added), so at most the epoch in progress
is lost. SIGTERM/SIGINT stop after the current batch, saving a mid-epoch state that resumes at
the next batch.
"""

from __future__ import annotations

import errno
import logging
import math
import random
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, cast

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from .checkpoint import (
    finish_interrupted_save,
    load_training_state,
    model_state_dict,
    read_meta,
    rng_state,
    save_checkpoint,
    save_training_state,
    set_rng_state,
    state_path,
)
from .config import TrainConfig, to_dict
from .dataset import EpochSampler
from .errors import CheckpointError, ConfigError, TrainingDiverged
from .models import build_model, classifier_loss, multitask_loss, unwrap
from .prepared import read_manifest
from .run_record import RunDir, elastic_restart_of
from .shards import train_input
from .targets import output_kind
from .train_dist import DistContext, barrier, cleanup, init_distributed, resolve_device, sync_buffers
from .train_loop import EpochResult, Runtime, classifier_metrics, evaluate, make_loader, train_one_epoch, validation_score, view_model_metrics
from .train_tasks import Task, TaskData, build_task_data, dataset_info, plan_tasks, task_rows

if TYPE_CHECKING:
    from .shards import ShardStream

log = logging.getLogger("echocmr.train")


@dataclass
class Counters:
    """Epoch bookkeeping saved in the training state; ``epoch`` counts completed epochs."""

    epoch: int = 0
    best_score: float = -math.inf
    best_epoch: int = 0
    since_best: int = 0
    early_stopped: bool = False
    step: int = 0  # batches done in the interrupted epoch ``epoch + 1`` (0: none)
    partial_loss_sum: float = 0.0
    partial_count: int = 0


@dataclass
class StopFlag:
    """Set by SIGTERM/SIGINT; the loop finishes its batch, saves and stops."""

    requested: bool = False
    previous: dict[int, Any] = field(default_factory=dict)

    def install(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                self.previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread (e.g. an embedding app): no graceful stop
                return

    def restore(self) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        self.previous.clear()

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C means "now"
        self.requested = True
        log.info("stop requested (signal %d): finishing the current batch", signum)


# ----------------------------------------------------------------------------- one task

@dataclass
class TaskRun:
    """Everything one task's loop touches."""

    task: Task
    config: TrainConfig
    data: TaskData
    run: RunDir
    runtime: Runtime
    model: nn.Module  # possibly DDP / compiled
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    counters: Counters
    info: dict[str, Any]

    @property
    def folder(self) -> Path:
        return self.run.path / self.task.name

    def loss_fn(self) -> Callable:
        if self.task.kind == "view_classifier":
            return classifier_loss
        kinds = [output_kind(name) for name in self.task.outputs]
        binary = [i for i, kind in enumerate(kinds) if kind == "binary"]
        continuous = [i for i, kind in enumerate(kinds) if kind == "continuous"]
        return lambda out, y, mask: multitask_loss(out, y, mask, binary, continuous)

    def meta(self, val_score: float | None) -> dict[str, Any]:
        return {"kind": self.task.kind, "model": to_dict(self.task.model),
                "view": None if self.task.kind == "view_classifier" else self.task.name,
                "outputs": list(self.task.outputs), "normalisation": self.data.normalisation,
                "target_scaling": self.data.target_scaling, "train": to_dict(self.config), "data": self.info,
                "epoch": self.counters.epoch, "step": self.counters.step, "best_epoch": self.counters.best_epoch,
                "val_score": val_score}


def build_task_run(task: Task, config: TrainConfig, data: TaskData, run: RunDir, runtime: Runtime,
                   info: dict) -> TaskRun:
    torch.manual_seed(config.seed + 1000 * task.index)
    model = build_model(task.model, len(task.outputs)).to(runtime.device)
    if runtime.channels_last:
        model = model.to(memory_format=torch.channels_last_3d)
    lr = config.classifier_lr if task.kind == "view_classifier" and config.classifier_lr else config.lr
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=max(config.lr_step_epochs, 1),
                                                gamma=config.lr_gamma)
    # bf16 needs no loss scaling; the scaler is kept (disabled) so the state format is uniform.
    scaler = torch.amp.GradScaler(runtime.device.type, enabled=False)
    return TaskRun(task, config, data, run, runtime, model, optimizer, scheduler, scaler, Counters(), info)


def wrap_for_training(tr: TaskRun) -> None:
    """torch.compile (opt-in, CUDA) and DDP; weights are loaded into the plain module before."""
    if tr.config.compile and tr.runtime.device.type == "cuda":
        tr.model = cast(nn.Module, torch.compile(tr.model))
    if tr.runtime.ctx.distributed:
        ids = [tr.runtime.device.index] if tr.runtime.device.type == "cuda" else None
        tr.model = nn.parallel.DistributedDataParallel(tr.model, device_ids=ids)


def save_state(tr: TaskRun, record: dict | None) -> dict[str, torch.Tensor]:
    """Write the commit point (rank 0); returns the plain weights for the checkpoints."""
    weights = model_state_dict(tr.model)
    if tr.run.enabled:
        save_training_state(tr.folder / "last", {
            "model": weights, "optimizer": tr.optimizer.state_dict(), "scheduler": tr.scheduler.state_dict(),
            "scaler": tr.scaler.state_dict(), "rng": rng_state(), "counters": asdict(tr.counters),
            "normalisation": tr.data.normalisation, "target_scaling": tr.data.target_scaling,
            "record": record, "task": tr.task.name})
    return weights


def save_epoch(tr: TaskRun, record: dict, improved: bool, score: float) -> None:
    weights = save_state(tr, record)
    if not tr.run.enabled:
        return
    save_checkpoint(tr.folder / "last", weights, tr.meta(score))
    if improved:
        save_checkpoint(tr.folder / "best", weights, tr.meta(score))
    tr.run.append_metrics(record)
    tr.run.write_status(view=tr.task.name, epoch=tr.counters.epoch, epochs=tr.task.epochs,
                        message=f"{tr.task.name} epoch {tr.counters.epoch}: train loss {record['train_loss']:.4f}")


def restore(tr: TaskRun, state: dict) -> None:
    """Load a saved state into the plain model/optimiser, then repair the files around it."""
    unwrap(tr.model).load_state_dict(state["model"])
    tr.optimizer.load_state_dict(state["optimizer"])
    tr.scheduler.load_state_dict(state["scheduler"])
    tr.scaler.load_state_dict(state["scaler"])
    set_rng_state(state["rng"])
    tr.counters = Counters(**state["counters"])
    if tr.run.enabled:
        repair_files(tr, state)


def repair_files(tr: TaskRun, state: dict) -> None:
    """Make last/best/metrics agree with the state after a crash between the per-epoch writes."""
    c, record = tr.counters, state.get("record")
    score = record.get("score") if record else None
    for stem in ("last", "best"):
        finish_interrupted_save(tr.folder / stem)
    if _meta_epoch(tr.folder / "last") != (c.epoch, c.step):
        save_checkpoint(tr.folder / "last", state["model"], tr.meta(score))
    if c.step == 0 and c.best_epoch == c.epoch > 0 and _meta_epoch(tr.folder / "best") != (c.epoch, 0):
        save_checkpoint(tr.folder / "best", state["model"], tr.meta(score))
    tr.run.reconcile_metrics(tr.task.name, c.epoch, record)


def _meta_epoch(stem: Path) -> tuple[int, int] | None:
    try:
        meta = read_meta(stem)
    except CheckpointError:
        return None
    return int(meta.get("epoch", -1)), int(meta.get("step", 0))


def finished(counters: Counters, epochs: int) -> bool:
    # A partial epoch past ``epochs`` (the limit was lowered on resume) is not worth finishing.
    return counters.early_stopped or counters.epoch >= epochs


def run_epoch(tr: TaskRun, sampler: EpochSampler | ShardStream, train_loader, val_loader, stop: StopFlag) -> bool:
    """Train + validate one epoch and save it; False when a stop request cut the epoch short."""
    c, epoch, started = tr.counters, tr.counters.epoch + 1, time.monotonic()
    sampler.set_epoch(epoch)
    sampler.skip = c.step * tr.config.batch_size
    n_batches = c.step + len(train_loader)
    lr = tr.optimizer.param_groups[0]["lr"]
    bar = tqdm(total=n_batches, initial=c.step, desc=f"{tr.task.name} {epoch}/{tr.task.epochs}",
               leave=False, disable=None if tr.run.enabled else True, dynamic_ncols=True)
    tr.run.write_status(view=tr.task.name, epoch=c.epoch, batch=c.step, batches=n_batches,
                        message=f"{tr.task.name} epoch {epoch}")

    def on_step(result: EpochResult) -> None:
        bar.update(1)
        bar.set_postfix(loss=f"{result.loss:.4f}")
        tr.run.progress(result.steps, n_batches)

    start = EpochResult(c.partial_loss_sum, c.partial_count, c.step, True)
    try:
        result = train_one_epoch(tr.model, tr.loss_fn(), tr.optimizer, tr.scaler, train_loader, tr.runtime,
                                 start, lambda: stop.requested, on_step)
    finally:
        bar.close()
    if not result.completed:
        c.step, c.partial_loss_sum, c.partial_count = result.steps, result.loss_sum, result.count
        save_partial(tr)
        return False
    _check_finite_weights(tr.model, epoch)
    record, score = validate(tr, val_loader, epoch, result.loss, lr, started)
    tr.scheduler.step()
    improved = score > c.best_score
    c.epoch, c.step, c.partial_loss_sum, c.partial_count = epoch, 0, 0.0, 0
    c.best_score, c.best_epoch = (score, epoch) if improved else (c.best_score, c.best_epoch)
    c.since_best = 0 if improved else c.since_best + 1
    c.early_stopped = c.since_best >= tr.config.patience
    save_epoch(tr, record, improved, score)
    log.info("%s epoch %d: train %.4f val %.4f score %.4f%s", tr.task.name, epoch, record["train_loss"],
             record["val_loss"], score, " (best)" if improved else "")
    return True


def _check_finite_weights(model: nn.Module, epoch: int) -> None:
    """The last step of an epoch can blow the weights up with a finite loss; such weights must
    never become ``last`` or ``best``."""
    if not all(torch.isfinite(p).all() for p in unwrap(model).parameters()):
        raise TrainingDiverged(f"non-finite weights at the end of epoch {epoch}; try a lower learning rate")


def validate(tr: TaskRun, val_loader, epoch: int, train_loss: float, lr: float,
             started: float) -> tuple[dict, float]:
    """Evaluate the plain module (every rank, same buffers) and build the metrics record."""
    sync_buffers(unwrap(tr.model), tr.runtime.ctx)
    val_loss, outputs, targets, mask = evaluate(unwrap(tr.model), tr.loss_fn(), val_loader, tr.runtime)
    if not np.isfinite(outputs).all():  # else AUROC raises a ValueError: "failed", not "diverged"
        raise TrainingDiverged(f"non-finite validation outputs in epoch {epoch}; try a lower learning rate")
    if len(outputs) == 0:
        metrics: dict[str, float] = {}
    elif tr.task.kind == "view_classifier":
        metrics = classifier_metrics(outputs, targets, tr.task.outputs)
    else:
        metrics = view_model_metrics(outputs, targets, mask, tr.task.outputs, tr.data.target_scaling)
    score = validation_score(metrics, tr.task.outputs, val_loss, train_loss, tr.task.kind, tr.config.select_on)
    record = {"view": tr.task.name, "epoch": epoch, "train_loss": train_loss,
              "val_loss": val_loss if math.isfinite(val_loss) else None, "val": metrics, "lr": lr,
              "seconds": round(time.monotonic() - started, 3), "score": score}
    return record, score


def save_partial(tr: TaskRun) -> None:
    weights = save_state(tr, None)
    if tr.run.enabled:
        save_checkpoint(tr.folder / "last", weights, tr.meta(None))


def train_task(task: Task, config: TrainConfig, data_dir: Path, manifest, run: RunDir, runtime: Runtime,
               resume: bool, stop: StopFlag) -> bool:
    """Train one task to completion (or early stop); False if a stop request interrupted it."""
    saved = load_training_state(run.path / task.name / "last") if resume and state_path(
        run.path / task.name / "last").is_file() else None
    data = build_task_data(task, config, data_dir, manifest, saved)
    if data is None:
        log.warning("%s: no usable training clips; skipped", task.name)
        return True
    tr = build_task_run(task, config, data, run, runtime, dataset_info(data_dir))
    if saved is not None:
        restore(tr, saved)
        if finished(tr.counters, task.epochs):
            log.info("%s already finished at epoch %d; skipped", task.name, tr.counters.epoch)
            return True
        log.info("%s resumes after epoch %d (batch %d)", task.name, tr.counters.epoch, tr.counters.step)
    wrap_for_training(tr)
    sampler, train_loader = train_input(data.train_set, config, runtime, config.seed + task.index)
    val_loader = make_loader(data.val_set, config.batch_size, None, runtime, config.num_workers, config.seed)
    while not finished(tr.counters, task.epochs):
        if not run_epoch(tr, sampler, train_loader, val_loader, stop) or stop.requested:
            return False
    log.info("%s done: best epoch %d (score %.4f)", task.name, tr.counters.best_epoch, tr.counters.best_score)
    return True


# ----------------------------------------------------------------------------- the run

def make_runtime(config: TrainConfig, ctx: DistContext) -> Runtime:
    device = resolve_device(config.device, ctx.local_rank)
    cuda = device.type == "cuda"
    return Runtime(device=device, amp=cuda and config.bf16, channels_last=cuda, ctx=ctx)


def train_model(config: TrainConfig, data_dir: Path, run_dir: Path, resume: bool = False) -> Path:
    """Train every model of ``config`` into ``run_dir``; returns ``run_dir``.

    Returns normally after a graceful stop too (status.json says "stopped"). Raises
    TrainingDiverged (status "diverged") on a non-finite loss, ConfigError when the run folder
    cannot be written (disk full, read-only); other errors set "failed".
    """
    data_dir, run_dir = Path(data_dir), Path(run_dir)
    ctx = init_distributed(config.device)
    # A worker group that torchrun restarted reruns the original command: continue, not refuse.
    resume = resume or elastic_restart_of(run_dir)
    run = RunDir(run_dir, enabled=ctx.is_main)
    stop = StopFlag()
    stop.install()  # before any file is written, so an early Stop still ends in a clean state
    previous_determinism = torch.are_deterministic_algorithms_enabled()
    try:
        runtime = make_runtime(config, ctx)
        _check_run_dir(run_dir, resume)
        manifest = read_manifest(data_dir)
        barrier(ctx)  # every rank has validated before rank 0 creates the folder
        run.start(config, data_dir, resumed=resume)
        _set_determinism(runtime)
        _seed_everything(config.seed)
        log.info("training %s on %s (world size %d)", [t.name for t in plan_tasks(config, manifest.columns)], runtime.device,
                 ctx.world_size)
        _run_tasks(config, data_dir, manifest, run, runtime, resume, stop)
        return run_dir
    except TrainingDiverged as exc:
        run.final_status(state="diverged", message=str(exc))
        log.error("diverged: %s", exc)
        raise
    except KeyboardInterrupt:  # a second Ctrl-C: no checkpoint of the epoch in progress
        run.final_status(state="stopped", message="interrupted; the epoch in progress was not saved")
        raise
    except OSError as exc:
        if exc.errno not in WRITE_ERRNOS or not _in_run_dir(exc.filename, run_dir):
            run.final_status(state="failed", message=f"{type(exc).__name__}: {exc}"[:500])
            raise
        error = ConfigError(_write_error_message(exc, run_dir))
        run.final_status(state="failed", message=str(error)[:500])
        raise error from exc
    except BaseException as exc:
        run.final_status(state="failed", message=f"{type(exc).__name__}: {exc}"[:500])
        raise
    finally:
        stop.restore()
        torch.use_deterministic_algorithms(previous_determinism)
        run.close()
        cleanup(ctx)


# A full disk, a file-size limit, a read-only or foreign folder: the user must act, so say so
# plainly instead of a traceback. The files written so far are intact (atomic writes).
WRITE_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT}


def _in_run_dir(filename: str | None, run_dir: Path) -> bool:
    """A write error without a file name (e.g. a full disk on flush) is most likely ours too."""
    return filename is None or Path(filename).resolve().is_relative_to(run_dir.resolve())


def _write_error_message(exc: OSError, run_dir: Path) -> str:
    where = Path(exc.filename) if exc.filename else run_dir
    try:
        where = where.relative_to(run_dir.parent)
    except ValueError:
        pass
    return (f"cannot write {where}: {exc.strerror or exc}. The run's saved checkpoints are unchanged; "
            f"free disk space or fix the folder's permissions, then continue with --resume {run_dir}")


def _run_tasks(config: TrainConfig, data_dir: Path, manifest, run: RunDir, runtime: Runtime, resume: bool,
               stop: StopFlag) -> None:
    tasks = plan_tasks(config, manifest.columns)
    if not any(len(task_rows(t, manifest, "train")) for t in tasks if t.kind == "view_model"):
        raise ConfigError(f"no training clips with status ok for views {', '.join(config.views)}")
    for task in tasks:
        if not train_task(task, config, data_dir, manifest, run, runtime, resume, stop):
            c = run.status.get("epoch", 0)
            run.write_status(state="stopped", message=f"stopped during {task.name} after epoch {c}; "
                                                      f"continue with --resume {run.path}")
            log.info("stopped; resume with --resume %s", run.path)
            return
        barrier(runtime.ctx)
    run.write_status(state="finished", message="all models trained")


def _check_run_dir(run_dir: Path, resume: bool) -> None:
    if resume and not (run_dir / "config.json").is_file():
        raise ConfigError(f"cannot resume {run_dir.name!r}: it is not a training run (no config.json)")
    if not resume and (run_dir / "config.json").exists():
        raise ConfigError(f"run directory {run_dir.name!r} already exists; use --resume or another --run-name")


def _seed_everything(seed: int) -> None:
    """Global RNGs (each task re-seeds torch before building its model; data use keyed RNGs)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _set_determinism(runtime: Runtime) -> None:
    """Bit-reproducible on CPU (resume == uninterrupted run); on GPU, speed (cuDNN autotune)."""
    if runtime.device.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)
    else:
        torch.backends.cudnn.benchmark = True
