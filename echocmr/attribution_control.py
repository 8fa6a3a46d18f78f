"""A positive control for the localisation check: a view model taught single akinetic segments.

The shipped model's WMA output barely moves with one akinetic segment in an otherwise normal heart
(the cohort's WMA usually spans a territory). To ask how each attribution *method* behaves once a
model does respond to a still wall, this fine-tunes a copy of a view
model on renderer-made clips of one view where half the hearts have exactly one akinetic segment
(the view shows it) and half none, supervising ``wma_view`` and the per-segment outputs
``wma_seg1..17`` of the segments the view shows — the single-segment task the check poses.
Nothing here reaches a shipped bundle: the copy lives in memory, for
``bench/attribution_localisation.py --positive-control``.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .attribution_check import RENDER_SIZE, ingest_rendered, one_akinetic, visible_segments
from .config import SynthConfig
from .dataset import augment, frame_indices, to_tensor
from .model_runner import LoadedModel, at_model_rate
from .synth.segments import shown_segments


@dataclass(frozen=True)
class PositiveControlConfig:
    """How the control model is taught (defaults: ~9 min on 2 CPU cores for the compact model)."""

    view: str = "A2C"
    n_clips: int = 400  # half with one akinetic segment, half all normal
    epochs: int = 10
    lr: float = 1e-3
    batch_size: int = 8
    seed: int = 11  # patients and acquisitions; the localisation bench draws its own (seed 0)


def supervised_outputs(model: LoadedModel, view: str) -> tuple[list[int], list[str]]:
    """(output indices, names) the control is taught: wma_view and the view's per-segment WMA."""
    names = ["wma_view"] + [f"wma_seg{s}" for s in shown_segments(view)]
    missing = [n for n in names if n not in model.outputs]
    if missing:
        raise ValueError(f"the model lacks outputs {missing} the positive control needs")
    return [model.outputs.index(n) for n in names], names


def control_clips(base: LoadedModel, config: PositiveControlConfig) -> tuple[list[np.ndarray], np.ndarray]:
    """(clips uint8 (T, 112, 112) at the model's rate, targets float32 (N, 1 + segments shown)).

    Clip i has one akinetic segment (drawn among those it shows) when i is even, none when odd;
    target column 0 is WMA in the view, then one column per shown segment in ``shown_segments`` order.
    """
    from .synth import draw_clip_spec, generate_patients, render_clip

    rng = np.random.default_rng(config.seed)
    segments = shown_segments(config.view)
    clips, targets = [], np.zeros((config.n_clips, 1 + len(segments)), np.float32)
    for i, patient in enumerate(generate_patients(SynthConfig(n_patients=config.n_clips, seed=config.seed))):
        spec = draw_clip_spec(rng, config.view, RENDER_SIZE, 2.1)
        heart = dataclasses.replace(patient.heart, wma=np.zeros(17, np.int8), transmural=np.zeros(17, bool))
        if i % 2 == 0:
            segment = int(rng.choice(visible_segments(spec, heart)))
            heart = one_akinetic(heart, segment)
            targets[i, 0] = targets[i, 1 + segments.index(segment)] = 1.0
        clip = ingest_rendered(render_clip(spec, heart, bgr=True), spec)
        clips.append(at_model_rate(clip.frames, clip.fps, base))
    return clips, targets


def training_batch(clips: list[np.ndarray], picks: np.ndarray, base: LoadedModel, rng: np.random.Generator) -> torch.Tensor:
    """float32 (B, 3, n_frames, 112, 112): one random augmented window per picked clip."""
    sampling, norm = base.sampling, base.meta["normalisation"]
    windows = []
    for i in picks:
        frames = clips[i]
        start = int(rng.integers(0, max(len(frames) - sampling.span, 0) + 1))
        windows.append(to_tensor(augment(frames[frame_indices(len(frames), sampling, start)], rng), norm))
    return torch.stack(windows).expand(-1, 3, -1, -1, -1)


def train_positive_control(base: LoadedModel, config: PositiveControlConfig = PositiveControlConfig(),
                           log=print) -> LoadedModel:
    """A fine-tuned copy of ``base`` (``base`` is left as it was); ``log`` gets one line per epoch."""
    columns, _ = supervised_outputs(base, config.view)
    clips, targets = control_clips(base, config)
    module = copy.deepcopy(base.module).cpu().train()
    for p in module.parameters():
        p.requires_grad_(True)
    optimiser = torch.optim.Adam(module.parameters(), lr=config.lr, weight_decay=1e-4)
    rng = np.random.default_rng(config.seed)
    y = torch.from_numpy(targets)
    for epoch in range(config.epochs):
        order, total = rng.permutation(len(clips)), 0.0
        for start in range(0, len(order), config.batch_size):
            picks = order[start:start + config.batch_size]
            logits = module(training_batch(clips, picks, base, rng))[:, columns]
            loss = F.binary_cross_entropy_with_logits(logits, y[picks])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * len(picks)
        log(f"positive control {config.view}: epoch {epoch + 1}/{config.epochs} loss {total / len(clips):.4f}")
    return LoadedModel(module.eval(), dict(base.meta), base.outputs)
