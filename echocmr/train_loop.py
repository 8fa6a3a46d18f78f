"""One epoch of training, one pass of evaluation, and the validation metrics.

Modelled on torchvision's references/video_classification: ``train_one_epoch`` and ``evaluate``
are plain loops; everything about run directories and resuming lives in ``echocmr.train``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from .dataset import seed_worker
from .device_batch import batch_to_model_input
from .errors import TrainingDiverged
from .metrics import auroc
from .targets import PER_VIEW_TARGETS, TARGETS_BY_NAME, output_kind
from .train_dist import DistContext, all_reduce_sum

LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Runtime:
    """Where and how tensors are computed."""

    device: torch.device
    amp: bool  # bf16 autocast (CUDA only)
    channels_last: bool  # channels_last_3d memory format (CUDA only)
    ctx: DistContext


@dataclass
class EpochResult:
    """Summed loss over ``count`` clips (all ranks); ``completed`` False after a stop request."""

    loss_sum: float
    count: int
    steps: int
    completed: bool

    @property
    def loss(self) -> float:
        return self.loss_sum / max(self.count, 1)


def make_loader(dataset: Dataset, batch_size: int, sampler: Sampler | None, runtime: Runtime,
                num_workers: int, seed: int) -> DataLoader:
    """Pinned memory and persistent workers on GPU; a private generator so loading never
    consumes the global torch RNG (which the resumable state covers)."""
    kwargs: dict = {}
    if num_workers > 0:
        kwargs = {"persistent_workers": True, "prefetch_factor": 4, "worker_init_fn": seed_worker}
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, shuffle=False,
                      num_workers=num_workers, pin_memory=runtime.device.type == "cuda",
                      generator=torch.Generator().manual_seed(seed), **kwargs)


def train_one_epoch(model: nn.Module, loss_fn: LossFn, optimizer: torch.optim.Optimizer,
                    scaler: torch.amp.GradScaler, loader: DataLoader, runtime: Runtime,
                    start: EpochResult, should_stop: Callable[[], bool],
                    on_step: Callable[[EpochResult], None]) -> EpochResult:
    """Train over ``loader``, continuing the partial epoch ``start`` (zeros for a fresh epoch).

    One all-reduce per step carries (loss sum, clips, stop request), so every rank sees the same
    non-finite loss or stop request and leaves the loop at the same step (no rank hangs).
    Raises TrainingDiverged before a non-finite loss can reach the weights.
    """
    model.train()
    result = EpochResult(start.loss_sum, start.count, start.steps, completed=True)
    for i, batch in enumerate(loader):
        x, y, mask = batch_to_model_input(batch, runtime.device, runtime.channels_last)
        with torch.autocast(runtime.device.type, dtype=torch.bfloat16, enabled=runtime.amp):
            outputs = model(x)
        loss = loss_fn(outputs.float(), y, mask)
        stats = torch.tensor([loss.detach().item() * len(x), len(x), float(should_stop())],
                             dtype=torch.float64, device=runtime.device)
        loss_sum, count, stop = all_reduce_sum(stats, runtime.ctx).tolist()
        if not math.isfinite(loss_sum):
            raise TrainingDiverged(f"non-finite training loss at step {result.steps + 1}; "
                                   "try a lower learning rate")
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        result.loss_sum, result.count, result.steps = result.loss_sum + loss_sum, result.count + int(count), result.steps + 1
        on_step(result)
        if stop > 0 and i + 1 < len(loader):  # on the last batch the epoch completes normally
            result.completed = False
            break
    return result


@torch.inference_mode()
def evaluate(model: nn.Module, loss_fn: LossFn, loader: DataLoader,
             runtime: Runtime) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """(mean loss, outputs (N, K) float32 raw logits/values, targets (N, K), mask (N, K))."""
    model.eval()
    outputs, targets, masks, losses, counts = [], [], [], [], []
    for batch in loader:
        x, y, mask = batch_to_model_input(batch, runtime.device, runtime.channels_last)
        with torch.autocast(runtime.device.type, dtype=torch.bfloat16, enabled=runtime.amp):
            out = model(x).float()
        losses.append(loss_fn(out, y, mask).item() * len(x))
        counts.append(len(x))
        outputs.append(out.cpu().numpy())
        targets.append(y.cpu().numpy())
        masks.append(mask.cpu().numpy())
    if not counts:
        return float("nan"), np.zeros((0, 0), np.float32), np.zeros((0, 0), np.float32), np.zeros((0, 0), np.float32)
    return (sum(losses) / sum(counts), np.concatenate(outputs), np.concatenate(targets), np.concatenate(masks))


def view_model_metrics(outputs: np.ndarray, targets: np.ndarray, mask: np.ndarray, names: tuple[str, ...],
                       scaling: dict[str, dict[str, float]]) -> dict[str, float]:
    """AUROC per binary target (both classes present), MAE in physical units per continuous one."""
    metrics: dict[str, float] = {}
    for k, name in enumerate(names):
        present = mask[:, k] > 0
        if not present.any():
            continue
        y, p = targets[present, k], outputs[present, k]
        if output_kind(name) == "binary":
            if len(np.unique(y)) == 2:
                metrics[name] = auroc(y, p)
        else:
            metrics[name] = float(np.abs(y - p).mean() * scaling[name]["std"])
    return metrics


def classifier_metrics(outputs: np.ndarray, targets: np.ndarray, names: tuple[str, ...]) -> dict[str, float]:
    """One-vs-rest AUROC of each view class present in both roles, plus accuracy."""
    probs = torch.softmax(torch.from_numpy(outputs), dim=1).numpy()
    metrics = {}
    for k, name in enumerate(names):
        if len(np.unique(targets[:, k])) == 2:
            metrics[name] = auroc(targets[:, k], probs[:, k])
    metrics["accuracy"] = float((probs.argmax(1) == targets.argmax(1)).mean())
    return metrics


def validation_score(metrics: dict[str, float], names: tuple[str, ...], val_loss: float, train_loss: float,
                     kind: str = "view_model", select_on: str = "loss") -> float:
    """Higher is better; picks the ``best`` epoch and drives early stopping.

    View models: −validation loss (the masked multi-task loss), as the paper selects on its
    validation set; with ``select_on="auroc"`` the mean validation AUROC of the view-level
    findings (``PER_VIEW_TARGETS``: WMA and LGE in the view's segments), not of all binary
    outputs: per-segment AUROCs swing with the handful of positives a segment has in a small
    validation split. The view classifier: mean
    one-vs-rest AUROC. Each falls back to −validation loss, then −training loss, when what it
    needs was not measured.
    """
    if kind == "view_classifier":
        aurocs = [metrics[n] for n in names if n in metrics and _is_binaryish(n)]
        if aurocs:
            return float(np.mean(aurocs))
    if kind == "view_model" and select_on == "auroc":
        aurocs = [metrics[n] for n in PER_VIEW_TARGETS if n in names and n in metrics]
        if aurocs:
            return float(np.mean(aurocs))
    if math.isfinite(val_loss):
        return -val_loss
    return -train_loss


def _is_binaryish(name: str) -> bool:
    target = TARGETS_BY_NAME.get(name)
    return target is None or target.kind == "binary"  # classifier classes count as binary (OvR)
