"""Run a checkpoint on clips: load it, sample windows, average their outputs (``echocmr predict`` / ``evaluate``).

Test-time augmentation: each clip gives ``n_clips`` evenly spaced windows, or every window
(``"all"``), of the model's n_frames at its period — never wrapping, at a lower period for a
clip shorter than the span (:mod:`echocmr.windows`); per clip the binary outputs are the mean of
the windows' sigmoid probabilities, continuous ones the mean of the windows' values in physical
units (un-standardised with the checkpoint's ``target_scaling``), view-classifier outputs the mean
of the windows' softmax probabilities. (``n_clips`` keeps its historical name: it counts windows.)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from .checkpoint import load_checkpoint
from .dataset import ClipSampling, select_rows, to_tensor
from .errors import CheckpointError, InputError
from .ingest.resize import resample_indices
from .models import prepare_input
from .prepared import check_frame_rate, check_jpeg_decode, open_clip, prepared_jpeg_decode, prepared_target_fps, read_manifest
from .targets import CLASSIFIER_LABELS, output_kind


@dataclass
class LoadedModel:
    """A checkpoint ready to run: ``module`` in eval mode, its JSON ``meta``, output names."""

    module: nn.Module
    meta: dict
    outputs: tuple[str, ...]

    @property
    def sampling(self) -> ClipSampling:
        return ClipSampling(int(self.meta["model"]["n_frames"]), int(self.meta["model"]["period"]))

    @property
    def device(self) -> torch.device:
        return next(self.module.parameters()).device

    @property
    def target_fps(self) -> float:
        """The frame rate its training clips were resampled to (0.0: each file's own)."""
        return float((self.meta.get("data") or {}).get("target_fps") or 0.0)

    @property
    def jpeg_decode(self) -> str:
        """The JPEG decode recipe of its training clips ("exact" for checkpoints from before it was
        recorded: every clip was decoded at full resolution then)."""
        return str((self.meta.get("data") or {}).get("jpeg_decode") or "exact")


def at_model_rate(frames: np.ndarray, fps: float, model: LoadedModel) -> np.ndarray:
    """uint8 (T, H, W) at ``fps`` → the same video at the model's training frame rate.

    The same nearest-earlier-frame resampling ``echocmr prepare --target-fps`` applied to the
    training clips; unchanged when the model kept each file's own rate.
    """
    target = model.target_fps
    if not target or abs(float(fps) - target) < 1e-6:
        return frames
    if not (np.isfinite(fps) and fps > 0):
        raise InputError("bad_clip", f"cannot resample a clip whose frame rate is {fps!r}")
    return frames[resample_indices(len(frames), float(fps), target)]


def _load(stem: str | Path, kind: str, device: str | torch.device) -> LoadedModel:
    module, meta = load_checkpoint(stem)
    if meta["kind"] != kind:
        raise CheckpointError(f"expected a {kind} checkpoint, found {meta['kind']}")
    norm = meta.get("normalisation") or {}
    if not {"mean", "std"} <= set(norm):
        raise CheckpointError("checkpoint lacks its pixel normalisation")
    return LoadedModel(module.to(device).eval(), meta, tuple(meta["outputs"]))


def load_view_model(stem: str | Path, device: str | torch.device = "cpu") -> LoadedModel:
    return _load(stem, "view_model", device)


def load_view_classifier(stem: str | Path, device: str | torch.device = "cpu") -> LoadedModel:
    model = _load(stem, "view_classifier", device)
    if model.outputs != CLASSIFIER_LABELS:
        raise CheckpointError(f"view classifier outputs must be {list(CLASSIFIER_LABELS)}")
    return model


def _windows(frames: np.ndarray, model: LoadedModel, n_clips: int | str) -> list[torch.Tensor]:
    """The video's test-time windows (:func:`echocmr.windows.window_indices`: never wrapping),
    each normalised float32 (1, T, 112, 112)."""
    from .windows import window_indices

    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 3 or frames.shape[1:] != (112, 112) or not len(frames):
        raise InputError("bad_clip", f"frames must be uint8 (T, 112, 112), got {frames.dtype} {frames.shape}")
    sampling = model.sampling
    found = window_indices(len(frames), sampling.n_frames, sampling.period, n_clips)
    return [to_tensor(frames[idx], model.meta["normalisation"]) for idx in found.indices]


# CPU inference: windows per forward pass for a model whose largest activation (stem width x 2
# channels x T x 56 x 56 floats) fits this many elements per batch, at most CPU_MAX_BATCH. Small
# models (the cpu-demo compact nets) then run 48-64 windows at once (2-2.5x less CPU per window
# than 16: MKL-DNN's fixed cost per call amortises); R(2+1)D-18 keeps the caller's batch size.
CPU_BATCH_ELEMENTS = 64 * 1024 * 1024
CPU_MAX_BATCH = 64


def inference_batch_size(model: LoadedModel, requested: int) -> int:
    """The caller's ``requested`` batch, raised on the CPU for a small model (see CPU_BATCH_ELEMENTS)."""
    if model.device.type != "cpu":
        return requested
    cfg = model.meta["model"]
    width = int(cfg.get("width") or 64) if cfg.get("arch") == "compact" else 64
    per_window = 2 * width * int(cfg["n_frames"]) * 56 * 56
    return max(requested, min(CPU_MAX_BATCH, CPU_BATCH_ELEMENTS // max(per_window, 1)))


def _window_plan(model: LoadedModel, frames_list: list[np.ndarray], n_clips: int | str) -> list[tuple[int, np.ndarray]]:
    """(video, frame indices) of every test-time window of every video, videos in order."""
    from .windows import window_indices

    plan = []
    sampling = model.sampling
    for v, frames in enumerate(frames_list):
        if frames.dtype != np.uint8 or frames.ndim != 3 or frames.shape[1:] != (112, 112) or not len(frames):
            raise InputError("bad_clip", f"frames must be uint8 (T, 112, 112), got {frames.dtype} {frames.shape}")
        found = window_indices(len(frames), sampling.n_frames, sampling.period, n_clips)
        plan += [(v, idx) for idx in found.indices]
    return plan


def _window_batch(model: LoadedModel, frames_list: list[np.ndarray], chunk: list[tuple[int, np.ndarray]]) -> torch.Tensor:
    """Normalised float32 (B, 1, T, 112, 112) of ``chunk``'s windows: the arithmetic of
    ``dataset.to_tensor`` (uint8 -> float32, minus mean, over std) on the whole batch at once, so
    every element is bit-identical to the per-window path with one conversion instead of B."""
    norm = model.meta["normalisation"]
    grey = torch.from_numpy(np.stack([frames_list[v][idx] for v, idx in chunk])).float()
    return ((grey - norm["mean"]) / norm["std"]).unsqueeze(1)


@torch.inference_mode()
def _raw_outputs(model: LoadedModel, frames_list: list[np.ndarray], n_clips: int | str,
                 batch_size: int, channels_last: bool = False) -> np.ndarray:
    """Per-video mean of its windows' transformed outputs (probabilities / values), float64
    (N videos, K). A video may have fewer windows than asked (its distinct ones) or, with
    ``"all"``, many; windows of consecutive videos share batches, gathered from the uint8 frames
    one batch at a time. ``channels_last``: channels-last 3-D layout (faster MKL-DNN convolutions
    on a CPU; the same outputs up to float32 rounding)."""
    frames_list = [np.asarray(f) for f in frames_list]
    plan = _window_plan(model, frames_list, n_clips)
    sums = np.zeros((len(frames_list), len(model.outputs)), dtype=np.float64)
    counts = np.zeros(len(frames_list), dtype=np.int64)
    for begin in range(0, len(plan), batch_size):
        chunk = plan[begin:begin + batch_size]
        batch = prepare_input(_window_batch(model, frames_list, chunk), model.device, channels_last)
        logits = model.module(batch).float().cpu()
        for (v, _), row in zip(chunk, _transform(model, logits).numpy()):
            sums[v] += row
            counts[v] += 1
    return sums / counts[:, None]


def _transform(model: LoadedModel, logits: torch.Tensor) -> torch.Tensor:
    """Logits (B, K) -> softmax for the classifier, sigmoid / physical units for a view model."""
    if model.meta["kind"] == "view_classifier":
        return torch.softmax(logits.double(), dim=1)
    out = logits.double().clone()
    scaling = model.meta.get("target_scaling") or {}
    for k, name in enumerate(model.outputs):
        if output_kind(name) == "binary":
            out[:, k] = torch.sigmoid(out[:, k])
        else:
            s = scaling.get(name, {"mean": 0.0, "std": 1.0})
            out[:, k] = out[:, k] * s["std"] + s["mean"]
    return out


def predict_clips(model: LoadedModel, frames_list: list[np.ndarray], n_clips: int | str = 4,
                  batch_size: int = 8, fast_cpu: bool = False) -> np.ndarray:
    """(N, n_outputs) float64: per video, the mean over its test-time windows (``n_clips``: a
    number or "all", :mod:`echocmr.windows`) of probabilities (binary) / unit values.

    ``fast_cpu`` (the study path): on a CPU, larger batches for a small model
    (``inference_batch_size``) and channels-last convolutions; outputs agree with the default
    path to float32 rounding (≤ ~2e-6: a window's output already moves that much with which
    other windows share its batch)."""
    if not frames_list:
        return np.zeros((0, len(model.outputs)), dtype=np.float64)
    windows = n_clips if n_clips == "all" else max(1, int(n_clips))
    batch = max(1, batch_size)
    if fast_cpu and model.device.type == "cpu":
        return _raw_outputs(model, frames_list, windows, inference_batch_size(model, batch), channels_last=True)
    return _raw_outputs(model, frames_list, windows, batch)


def classify_views(classifier: LoadedModel, frames_list: list[np.ndarray], n_clips: int = 2,
                   batch_size: int = 16, fast_cpu: bool = False) -> list[tuple[str, float, dict[str, float]]]:
    """Per video: (view label, its softmax confidence, probabilities of every label);
    ``fast_cpu`` as in ``predict_clips``."""
    probs = predict_clips(classifier, frames_list, n_clips=n_clips, batch_size=batch_size, fast_cpu=fast_cpu)
    results = []
    for row in probs:
        best = int(np.argmax(row))
        results.append((classifier.outputs[best], float(row[best]),
                        {label: float(p) for label, p in zip(classifier.outputs, row)}))
    return results


def predict_prepared(model: LoadedModel, prepared_dir: str | Path, split: str, view: str, n_clips: int | str = 4,
                     batch_size: int = 8, chunk: int = 64) -> pd.DataFrame:
    """Predictions for the ``split`` clips of ``view`` (status ok) of a PREPARED dataset.

    Columns: clip_id, study, patient, split, view, then one per model output (probability or
    physical value). Clips are read ``chunk`` videos at a time (memory-mapped).
    """
    check_frame_rate(model.target_fps, prepared_target_fps(prepared_dir), f"the {view} model")
    check_jpeg_decode(model.jpeg_decode, prepared_jpeg_decode(prepared_dir), f"the {view} model")
    rows = select_rows(read_manifest(prepared_dir), split, view)
    columns = ["clip_id", "study", "patient", "split", "view"]
    frame = rows.reindex(columns=columns).copy()
    preds = np.zeros((len(rows), len(model.outputs)), dtype=np.float64)
    for begin in range(0, len(rows), chunk):
        ids = rows["clip_id"].iloc[begin:begin + chunk]
        frames_list = [np.asarray(open_clip(prepared_dir, str(c))) for c in ids]
        preds[begin:begin + len(frames_list)] = predict_clips(model, frames_list, n_clips, batch_size)
    for k, name in enumerate(model.outputs):
        frame[name] = preds[:, k]
    return frame.reset_index(drop=True)
