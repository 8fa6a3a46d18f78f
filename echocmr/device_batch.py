"""Clips stay uint8 until they reach the device; augmentation and normalisation happen there.

Why: a float32 clip is 4x the bytes of its uint8 frames, and every byte crosses from a
DataLoader worker to the main process (shared memory), is collated, pinned and copied to the
device. Keeping uint8 and moving the arithmetic (zoom, shift, contrast, brightness, pixel
normalisation) to the device leaves the loader cores only the reads and the random draws.

A uint8 item (``ClipDataset(..., uint8_output=True)``) is ``(frames, params, y, mask, video)``:
``frames`` uint8 (1, T, 112, 112) and ``params`` float64 (N_PARAMS,) — the pixel normalisation and
the augmentation drawn from the item's own keyed generator (so results never depend on where the
arithmetic runs). ``batch_to_model_input`` turns a collated batch of either kind into the model's
float32 (B, 3, T, 112, 112); on the CPU it reproduces the float path of ``dataset.augment`` +
``dataset.to_tensor`` (tested), on a GPU up to float rounding of the bilinear zoom.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .models import prepare_input

CLIP_SIZE = 112
AUG_SHIFT = 8  # must equal dataset.AUG_SHIFT (the canvas padding the offsets were drawn for)
# Columns of ``params``.
MEAN, STD, AUGMENTED, SIZE, OFFSET_Y, OFFSET_X, CONTRAST, BRIGHTNESS = range(8)
N_PARAMS = 8


@dataclass(frozen=True)
class Augmentation:
    """One clip's random augmentation: zoom to ``size`` px, crop at (oy, ox) of the padded
    canvas, then contrast about the clip mean and brightness (grey levels)."""

    size: int
    offset_y: int
    offset_x: int
    contrast: float
    brightness: float


def pack_params(normalisation: dict[str, float], aug: Augmentation | None) -> torch.Tensor:
    """float64 (N_PARAMS,) carrying the normalisation and (optionally) the augmentation."""
    params = torch.zeros(N_PARAMS, dtype=torch.float64)
    params[MEAN], params[STD] = float(normalisation["mean"]), float(normalisation["std"])
    if aug is not None:
        params[AUGMENTED] = 1.0
        params[SIZE], params[OFFSET_Y], params[OFFSET_X] = aug.size, aug.offset_y, aug.offset_x
        params[CONTRAST], params[BRIGHTNESS] = aug.contrast, aug.brightness
    return params


def _scalars(values: torch.Tensor) -> torch.Tensor:
    """(G,) float64 -> (G, 1, 1, 1) float32: the float path used Python floats, which torch
    applies to a float32 tensor in float32."""
    return values.to(torch.float32).view(-1, 1, 1, 1)


def _zoom_and_crop(x: torch.Tensor, size: int, oy: torch.Tensor, ox: torch.Tensor) -> torch.Tensor:
    """x float32 (G, T, 112, 112), same zoom for the group; per-clip crop offsets (G,) long."""
    g, t = x.shape[:2]
    if size != CLIP_SIZE:
        x = F.interpolate(x.reshape(g * t, 1, CLIP_SIZE, CLIP_SIZE), size=(size, size), mode="bilinear",
                          align_corners=False).reshape(g, t, size, size)
    canvas = F.pad(x, (AUG_SHIFT,) * 4)
    span = torch.arange(CLIP_SIZE, device=x.device)
    rows = (oy[:, None] + span)[:, None, :, None]
    cols = (ox[:, None] + span)[:, None, None, :]
    batch = torch.arange(g, device=x.device)[:, None, None, None]
    frames = torch.arange(t, device=x.device)[None, :, None, None]
    return canvas[batch, frames, rows, cols]  # one gather for the whole group


def augment_on_device(x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """x float32 (B, T, 112, 112) grey levels, params (B, N_PARAMS) -> augmented float32 in [0, 255].

    Clips are grouped by zoom size (about 23 sizes), so the work is a few batched kernels per
    step rather than a loop over clips.
    """
    augmented = params[:, AUGMENTED] > 0
    if not bool(augmented.any()):
        return x
    out = x.clone()
    idx_all = torch.nonzero(augmented).flatten()
    sizes = params[idx_all, SIZE].long()
    for size in torch.unique(sizes).tolist():
        idx = idx_all[sizes == size]
        out[idx] = _zoom_and_crop(x[idx], int(size), params[idx, OFFSET_Y].long(), params[idx, OFFSET_X].long())
    sel = out[idx_all]
    mean = _scalars(sel.double().mean(dim=(1, 2, 3)))
    sel = (sel - mean) * _scalars(params[idx_all, CONTRAST]) + mean + _scalars(params[idx_all, BRIGHTNESS])
    out[idx_all] = sel.clamp(0, 255)
    return out


def normalise_on_device(frames: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """uint8 (B, 1, T, H, W) + params (B, N_PARAMS), both on the device -> normalised float32
    (B, 1, T, H, W): the same arithmetic as ``dataset.augment`` then ``dataset.to_tensor``."""
    x = augment_on_device(frames[:, 0].to(torch.float32), params)
    return ((x - _scalars(params[:, MEAN])) / _scalars(params[:, STD])).unsqueeze(1)


def batch_to_model_input(batch: tuple | list, device: torch.device,
                         channels_last: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A collated batch (float items or uint8 items) -> (model input, y, mask) on ``device``."""
    if len(batch) == 5:
        frames, params, y, mask, _ = batch
        frames = frames.to(device, non_blocking=True)
        params = params.to(device, non_blocking=True)
        x = prepare_input(normalise_on_device(frames, params), device, channels_last)
    else:
        x, y, mask, _ = batch
        x = prepare_input(x, device, channels_last)
    return x, y.to(device, non_blocking=True), mask.to(device, non_blocking=True)
