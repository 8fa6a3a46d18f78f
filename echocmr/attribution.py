"""Which pixels and frames of a clip drove a per-view model's WMA output.

Each method explains the **logit** of the per-view model's ``wma_view`` output (WMA in the AHA
segments the view shows; ``wma``, any segment, for a bundle without it, e.g. published weights)
for the clip's central test-time window (the model's ``n_frames`` frames ``period`` apart,
:func:`echocmr.windows.window_indices` with one window), by one of these methods (all but the
first with Captum):

- ``score-map``: for an output pooled from the model's own score map
  (:class:`~echocmr.models.MapPooledNet`, ``ModelConfig.map_outputs``), that map's pooling
  weights: each place and time's share of the log-mean-exp that *is* the output, upsampled from
  layer3's grid (1/8 in space, 1/4 in time) to the window and summing to 1. Not recovered after
  the fact but what the output is made of; one forward pass. The default ("auto") for such an
  output; integrated gradients otherwise.
- ``integrated-gradients``: :class:`~captum.attr.IntegratedGradients` from the black clip (grey 0
  in every pixel, normalised like any input: what the scanner shows where there is no echo), with
  Gauss–Legendre nodes (8 by default). Per pixel, in logit units, and complete: the attributions
  add up to logit(clip) − logit(baseline) less ``convergence_delta``, so a wrong map can be noticed.
- ``grad-cam``: :class:`~captum.attr.LayerGradCam` on the second residual stage (``layer2``: 1/4
  of the resolution in space, 1/2 in time), upsampled trilinearly to the window. One forward and
  one backward pass; coarse, not complete, but it reads the model's mid-level features, which see
  motion, where a pixel path from a black clip mostly weighs echo brightness.
- ``motion-occlusion``: :class:`~captum.attr.Occlusion` where the "occluded" patch is not blanked
  but held still: each ``patch_px`` square (every ``stride_px``) is replaced, in every frame, by
  its mean over the window, and a pixel's value is the average fall of the logit over the patches
  that cover it. Positive: the region's own change over time (its motion, or its failure to move
  with the rest) raised the WMA output against a still copy of itself — the question wall motion
  asks. One forward pass per patch position (169 at the defaults: 7.2 s for the shipped compact
  model on 2 cores, far longer for R(2+1)D-18 on a CPU); patches span the whole window, so it has
  no time resolution (``frame_importance`` is flat) and is blurred to the patch size.

Which method points at the akinetic wall is measured, not assumed (``echocmr.attribution_check``,
README *Attribution*).

No Streamlit here; :mod:`echocmr.attribution_media` draws the overlays.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .config import CAM_LAYER, AttributionConfig
from .errors import ConfigError, InputError
from .model_runner import LoadedModel, at_model_rate
from .models import MapPooledNet, map_weights
from .windows import window_indices

WMA_OUTPUTS = ("wma_view", "wma")  # the first one a model has is explained


@dataclass(frozen=True, eq=False)
class ClipAttribution:
    """Attribution of one window of one clip.

    ``frame_indices``: int64 (T,) — which frames of the clip (at the model's frame rate) the
    window took; T is the model's ``n_frames``. ``frames``: uint8 (T, 112, 112), those frames.
    ``heat``: float32 (T, 112, 112), signed attribution to the output's logit per pixel (positive
    pushes towards WMA; logit units for integrated gradients and motion occlusion, relative for
    Grad-CAM; for the score map each pixel's non-negative share of the output, summing to 1).
    ``frame_contribution``: float32 (T,), ``heat`` summed per frame (integrated gradients: adds up
    to ``logit - baseline_logit - convergence_delta``). ``frame_importance``: float32 (T,), each
    frame's share of the positive attribution (sums to 1; zeros when none). ``baseline_logit``
    and ``convergence_delta`` are NaN for Grad-CAM and motion occlusion, which have neither.
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
    method: str  # AttributionConfig.description of how it was computed

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
                 config: AttributionConfig | None = None) -> ClipAttribution:
    """Attribution of ``output`` (default :func:`wma_output`) for one clip, by ``config.method``
    (default :class:`~echocmr.config.AttributionConfig`).

    ``frames``: uint8 (T, 112, 112) as ingested; with ``fps`` they are first resampled to the
    model's training rate like ``predict`` does (:func:`echocmr.model_runner.at_model_rate`).
    Deterministic for the same model, frames and config. Raises ``InputError("bad_clip")`` for
    frames of the wrong type or shape and ``ConfigError`` for an output the model lacks.
    """
    config = config or AttributionConfig()
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
    x = ((torch.from_numpy(window.astype(np.float32)) - norm["mean"]) / norm["std"])[None, None].to(model.device)
    k = model.outputs.index(output)
    config = dataclasses.replace(config, method=resolve_method(model.module, k, config.method))
    forward = _OneLogit(model.module, k).eval()
    with _frozen(model.module), _threads(config.threads):
        if config.method == "score-map":
            heat, baseline_logit, delta = _score_map(model.module, k, x), float("nan"), float("nan")
        elif config.method == "grad-cam":
            heat, baseline_logit, delta = _grad_cam(forward, _cam_layer(model.module, k), x), float("nan"), float("nan")
        elif config.method == "motion-occlusion":
            heat, baseline_logit, delta = _motion_occlusion(forward, x, config), float("nan"), float("nan")
        else:
            baseline = torch.full_like(x, (float(config.baseline_grey) - norm["mean"]) / norm["std"])
            heat, baseline_logit, delta = _integrated_gradients(forward, x, baseline, config)
        with torch.no_grad():
            logit = float(forward(x).double().cpu().reshape(-1)[0])
    contribution = heat.reshape(len(heat), -1).sum(axis=1)
    positive = np.maximum(heat, 0).reshape(len(heat), -1).sum(axis=1)
    importance = positive / positive.sum() if positive.sum() > 0 else np.zeros_like(positive)
    return ClipAttribution(output, idx, window.copy(), heat.astype(np.float32), contribution.astype(np.float32),
                           importance.astype(np.float32), logit, baseline_logit, delta,
                           time.perf_counter() - started, config.description)


def resolve_method(module: nn.Module, k: int, method: str) -> str:
    """``method``, with "auto" made concrete: "score-map" when output ``k`` is pooled from one
    (:class:`~echocmr.models.MapPooledNet`), else "integrated-gradients". Refuses "score-map"
    for an output without a map."""
    has_map = isinstance(module, MapPooledNet) and k < module.n_map
    if method == "auto":
        return "score-map" if has_map else "integrated-gradients"
    if method == "score-map" and not has_map:
        raise ConfigError("this output is not pooled from a score map (ModelConfig.map_outputs); "
                          "choose another attribution method")
    return method


def _score_map(module: nn.Module, k: int, x: torch.Tensor) -> np.ndarray:
    """float32 (T, H, W) for x (1, 1, T, H, W): map ``k``'s pooling weights (each place's share
    of the output, :func:`echocmr.models.map_weights`), upsampled trilinearly to x's grid and
    renormalised to sum to 1. One forward pass to layer3; nothing to integrate."""
    assert isinstance(module, MapPooledNet)
    with torch.no_grad():
        scores, _ = module.maps(x.expand(-1, 3, -1, -1, -1))
        weights = map_weights(scores)[:, k:k + 1]
        heat = nn.functional.interpolate(weights, size=tuple(x.shape[2:]), mode="trilinear", align_corners=False)
    # Trilinear weights are a convex combination of softmax weights: positive, so the sum is too.
    share = heat[0, 0].double().cpu().numpy()
    return (share / share.sum()).astype(np.float32)


def _integrated_gradients(forward: nn.Module, x: torch.Tensor, baseline: torch.Tensor,
                          config: AttributionConfig) -> tuple[np.ndarray, float, float]:
    """(heat float32 (T, H, W), baseline logit, convergence delta) for x (1, 1, T, H, W)."""
    from captum.attr import IntegratedGradients

    attr, delta = IntegratedGradients(forward).attribute(
        x, baselines=baseline, n_steps=int(config.n_steps), internal_batch_size=int(config.internal_batch_size),
        return_convergence_delta=True)
    with torch.no_grad():
        baseline_logit = float(forward(baseline).double().cpu().reshape(-1)[0])
    return (attr.detach()[0, 0].float().cpu().numpy(), baseline_logit,
            float(delta.detach().cpu().reshape(-1)[0]))


def _cam_layer(module: nn.Module, k: int) -> nn.Module:
    """The Grad-CAM layer of output ``k``: its own network's for per-target models (published weights)."""
    nets = getattr(module, "nets", None)
    net = nets[k] if isinstance(nets, nn.ModuleList) else module
    layer = getattr(net, CAM_LAYER, None)
    if not isinstance(layer, nn.Module):
        raise ConfigError(f"Grad-CAM needs a model with a {CAM_LAYER} stage (R(2+1)D); this one has none")
    return layer


def _grad_cam(forward: nn.Module, layer: nn.Module, x: torch.Tensor) -> np.ndarray:
    """float32 (T, H, W): Grad-CAM of ``layer`` for x (1, 1, T, H, W), upsampled to x's grid, signed
    (the ReLU of the paper is left to the reader: ``ClipAttribution.positive``)."""
    from captum.attr import LayerGradCam

    cam = LayerGradCam(forward, layer).attribute(x)  # (1, 1, T', H', W')
    cam = nn.functional.interpolate(cam.detach().float(), size=tuple(x.shape[2:]), mode="trilinear",
                                    align_corners=False)
    return cam[0, 0].cpu().numpy()


def _motion_occlusion(forward: nn.Module, x: torch.Tensor, config: AttributionConfig) -> np.ndarray:
    """float32 (T, H, W): logit(x) − logit(x with a patch held still), averaged over the patches
    covering each pixel, for x (1, 1, T, H, W); the same for every frame (patches span the window)."""
    from captum.attr import Occlusion

    still = x.mean(dim=2, keepdim=True).expand_as(x).contiguous()
    n_frames, patch, stride = int(x.shape[2]), int(config.patch_px), int(config.stride_px)
    with torch.no_grad():
        heat = Occlusion(forward).attribute(x, sliding_window_shapes=(1, n_frames, patch, patch),
                                            strides=(1, n_frames, stride, stride), baselines=still,
                                            perturbations_per_eval=int(config.internal_batch_size))
    return heat[0, 0].float().cpu().numpy()


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
