"""Which pixels and frames of a clip drove a per-view model's WMA output (integrated gradients).

Method: Captum's :class:`~captum.attr.IntegratedGradients` on the **logit** of the per-view
model's ``wma_view`` output (WMA in the AHA segments the view shows; ``wma``, any segment, for a
bundle without it, e.g. published weights), for the clip's central test-time window (the model's
``n_frames`` frames ``period`` apart, :func:`echocmr.windows.window_indices` with one window).

Why integrated gradients and not occlusion: one IG pass costs ``n_steps`` forward+backward passes
of one window, whatever the resolution; occlusion needs one forward pass per patch position
(hundreds for 8-px patches over 16 frames) and blurs the map to the patch size. IG also sums
to a checkable total (completeness: the attributions add up to logit(clip) − logit(baseline);
``convergence_delta`` is what is left over), so a wrong map can be noticed.

Baseline: the black clip (grey level 0 in every pixel, normalised like any input) — what the
scanner shows where there is no echo (outside the fan, inside blood pools); the attribution is
then "what the echo that is there contributed". Integration uses Gauss–Legendre nodes, which
reach a small convergence delta with few steps (8 by default), so it runs in seconds on a CPU.

No Streamlit here; :mod:`echocmr.attribution_media` draws the overlays.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .errors import ConfigError, InputError
from .model_runner import LoadedModel, at_model_rate
from .windows import window_indices

WMA_OUTPUTS = ("wma_view", "wma")  # the first one a model has is explained
METHOD = "integrated gradients (Captum), black-clip baseline"


@dataclass(frozen=True)
class AttributionConfig:
    """How the attribution is computed (shared by the CLI, the app and the benches)."""

    n_steps: int = 8  # integration nodes between baseline and clip
    internal_batch_size: int = 8  # windows per forward/backward pass (memory vs speed)
    baseline_grey: int = 0  # uint8 grey level of the baseline clip (0: black, no echo)
    threads: int = 0  # torch CPU threads while attributing (0: leave torch's setting)

    def __post_init__(self) -> None:
        if not 1 <= int(self.n_steps) <= 512:
            raise ConfigError(f"attribution n_steps must be 1..512, got {self.n_steps}")
        if not 1 <= int(self.internal_batch_size) <= 512:
            raise ConfigError(f"attribution internal_batch_size must be 1..512, got {self.internal_batch_size}")
        if not 0 <= int(self.baseline_grey) <= 255:
            raise ConfigError(f"attribution baseline_grey must be 0..255, got {self.baseline_grey}")


@dataclass(frozen=True, eq=False)
class ClipAttribution:
    """Integrated-gradients attribution of one window of one clip.

    ``frame_indices``: int64 (T,) — which frames of the clip (at the model's frame rate) the
    window took; T is the model's ``n_frames``. ``frames``: uint8 (T, 112, 112), those frames.
    ``heat``: float32 (T, 112, 112), signed attribution to the output's logit per pixel (logit
    units; positive pushes towards WMA). ``frame_contribution``: float32 (T,), ``heat`` summed
    per frame (adds up to ``logit - baseline_logit - convergence_delta``). ``frame_importance``:
    float32 (T,), each frame's share of the positive attribution (sums to 1; zeros when none).
    """

    output: str
    frame_indices: np.ndarray
    frames: np.ndarray
    heat: np.ndarray
    frame_contribution: np.ndarray
    frame_importance: np.ndarray
    logit: float
    baseline_logit: float
    convergence_delta: float
    seconds: float
    method: str = METHOD

    @property
    def probability(self) -> float:
        """Sigmoid of the window's logit (one window: may differ from the clip's averaged prediction)."""
        return float(1.0 / (1.0 + np.exp(-self.logit)))

    @property
    def positive(self) -> np.ndarray:
        """float32 (T, 112, 112): the evidence for WMA only (negative attribution set to 0)."""
        return np.maximum(self.heat, 0.0)


class _OneLogit(nn.Module):
    """(B, 1, T, H, W) normalised grey -> (B,) logit of output ``k`` (grey repeated to 3 channels)."""

    def __init__(self, module: nn.Module, k: int):
        super().__init__()
        self.module = module
        self.k = k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x.expand(-1, 3, -1, -1, -1))[:, self.k]


def wma_output(model: LoadedModel) -> str:
    """The model's WMA output that is explained (``wma_view`` when it has one)."""
    for name in WMA_OUTPUTS:
        if name in model.outputs:
            return name
    raise ConfigError(f"the model has no WMA output to explain (outputs: {list(model.outputs)})")


def _check_frames(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 3 or frames.shape[1:] != (112, 112) or len(frames) < 2:
        raise InputError("bad_clip", "attribution needs uint8 frames (T, 112, 112) with T >= 2, "
                                     f"got {frames.dtype} {frames.shape}")
    return frames


def central_window(model: LoadedModel, n_total: int) -> np.ndarray:
    """int64 (n_frames,): the clip frames of the one test-time window that is explained."""
    sampling = model.sampling
    return window_indices(n_total, sampling.n_frames, sampling.period, 1).indices[0].astype(np.int64)


def explain_clip(model: LoadedModel, frames: np.ndarray, fps: float | None = None, output: str | None = None,
                 config: AttributionConfig = AttributionConfig()) -> ClipAttribution:
    """Integrated-gradients attribution of ``output`` (default :func:`wma_output`) for one clip.

    ``frames``: uint8 (T, 112, 112) as ingested; with ``fps`` they are first resampled to the
    model's training rate like ``predict`` does (:func:`echocmr.model_runner.at_model_rate`).
    Deterministic for the same model, frames and config. Raises ``InputError("bad_clip")`` for
    frames of the wrong type or shape and ``ConfigError`` for an output the model lacks.
    """
    from captum.attr import IntegratedGradients

    frames = _check_frames(frames)
    if fps is not None:
        frames = at_model_rate(frames, fps, model)
    output = output or wma_output(model)
    if output not in model.outputs:
        raise ConfigError(f"the model has no output {output!r} (outputs: {list(model.outputs)})")
    started = time.perf_counter()
    idx = central_window(model, len(frames))
    window = frames[idx]
    norm = model.meta["normalisation"]
    device = model.device
    x = ((torch.from_numpy(window.astype(np.float32)) - norm["mean"]) / norm["std"])[None, None].to(device)
    baseline = torch.full_like(x, (float(config.baseline_grey) - norm["mean"]) / norm["std"])
    forward = _OneLogit(model.module, model.outputs.index(output)).eval()
    with _frozen(model.module), _threads(config.threads):
        ig = IntegratedGradients(forward)
        attr, delta = ig.attribute(x, baselines=baseline, n_steps=int(config.n_steps),
                                   internal_batch_size=int(config.internal_batch_size),
                                   return_convergence_delta=True)
        with torch.no_grad():
            logits = forward(torch.cat([x, baseline])).double().cpu().numpy()
    heat = attr.detach()[0, 0].float().cpu().numpy()
    contribution = heat.reshape(len(heat), -1).sum(axis=1)
    positive = np.maximum(heat, 0).reshape(len(heat), -1).sum(axis=1)
    importance = positive / positive.sum() if positive.sum() > 0 else np.zeros_like(positive)
    return ClipAttribution(output, idx, window.copy(), heat.astype(np.float32), contribution.astype(np.float32),
                           importance.astype(np.float32), float(logits[0]), float(logits[1]),
                           float(delta.detach().cpu().reshape(-1)[0]), time.perf_counter() - started)


class _frozen:
    """Parameters need no gradients for an input attribution: skipping them halves the backward
    pass. Restores each parameter's flag afterwards (the module may be shared)."""

    def __init__(self, module: nn.Module):
        self.params = list(module.parameters())
        self.flags = [p.requires_grad for p in self.params]

    def __enter__(self) -> None:
        for p in self.params:
            p.requires_grad_(False)

    def __exit__(self, *exc) -> None:
        for p, flag in zip(self.params, self.flags):
            p.requires_grad_(flag)


class _threads:
    """Temporarily set torch's CPU thread count (0: unchanged)."""

    def __init__(self, n: int):
        self.n, self.before = int(n), torch.get_num_threads()

    def __enter__(self) -> None:
        if self.n > 0:
            torch.set_num_threads(self.n)

    def __exit__(self, *exc) -> None:
        if self.n > 0:
            torch.set_num_threads(self.before)


def localisation_ratio(positive: np.ndarray, region: np.ndarray, myocardium: np.ndarray) -> float:
    """How much more of the positive attribution on the myocardium falls in ``region`` than its area share.

    ``positive``: float (T, H, W) non-negative attribution; ``region``, ``myocardium``: bool of
    the same shape (per-frame masks; ``region`` ⊆ ``myocardium``). Returns (positive mass in
    region / positive mass on the myocardium) / (region area / myocardium area): 1 is what an
    attribution spread evenly over the myocardium gives (chance), above 1 concentrates on the
    region. NaN when the region is empty or no positive attribution lands on the myocardium.
    """
    positive = np.asarray(positive, dtype=np.float64)
    region, myocardium = np.asarray(region, bool), np.asarray(myocardium, bool)
    if not positive.shape == region.shape == myocardium.shape:
        raise ValueError(f"attribution {positive.shape}, region {region.shape} and myocardium "
                         f"{myocardium.shape} must have one shape")
    if (positive < 0).any():
        raise ValueError("localisation_ratio takes non-negative (positive-part) attribution")
    region = region & myocardium
    mass_myo = positive[myocardium].sum()
    area_region, area_myo = region.sum(), myocardium.sum()
    if area_region == 0 or mass_myo <= 0:
        return float("nan")
    return float((positive[region].sum() / mass_myo) / (area_region / area_myo))
