"""Torch datasets over a PREPARED folder (read through :mod:`echocmr.prepared`).

A *window* is the ``n_frames`` frames, ``period`` apart, that a model sees at once, taken from a
*clip* (one de-identified video). Every random choice (window start, augmentation) is drawn from a generator seeded by
(seed, epoch, index), never from global RNG state. The training sampler hands the dataset
``(epoch, index)`` keys, so the result is the same with 0 or 8 workers, persistent workers, one
rank or many, and after a resume: resumption only has to restore the epoch number.

Items: ``x`` float32 (1, T, 112, 112) — one grey channel, normalised by the training pixel mean/std
(``models.prepare_input`` repeats it to 3 channels on the device) —, ``y`` float32 (K,),
``mask`` float32 (K,) (1 = label present), and the item's video index (int64).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, DistributedSampler

from .device_batch import Augmentation, pack_params
from .errors import ConfigError
from .prepared import CLIP_SIZE, open_clip
from .targets import CLASSIFIER_LABELS, CONTINUOUS_TARGETS, MODEL_VIEWS

NORM_SAMPLE_CLIPS = 64
AUG_SHIFT = 8  # pixels of random translation each way
AUG_ZOOM = (0.9, 1.1)
AUG_CONTRAST = (0.85, 1.15)
AUG_BRIGHTNESS = 15.0  # grey levels each way


@dataclass(frozen=True)
class ClipSampling:
    """How frames are taken from a video: ``n_frames`` frames, ``period`` frames apart."""

    n_frames: int
    period: int

    @property
    def span(self) -> int:
        return (self.n_frames - 1) * self.period + 1


# ----------------------------------------------------------------------------- manifest

def select_rows(manifest: pd.DataFrame, split: str, view: str | None = None) -> pd.DataFrame:
    """Rows with status ok in ``split`` (and ``view`` when given), sorted by clip_id."""
    rows = manifest[(manifest["status"] == "ok") & (manifest["split"] == split)]
    if view is not None:
        rows = rows[rows["view"] == view]
    return rows.sort_values("clip_id").reset_index(drop=True)


def classifier_rows(manifest: pd.DataFrame, split: str) -> pd.DataFrame:
    """Rows usable to train the view classifier: view known (not itself a classifier's guess)."""
    rows = select_rows(manifest, split)
    source = rows["view_source"] if "view_source" in rows else pd.Series("given", index=rows.index)
    rows = rows[rows["view"].notna() & (rows["view"] != "") & (source != "classifier")]
    return rows.reset_index(drop=True)


def classifier_label(view: str) -> str:
    return view if view in MODEL_VIEWS else "other"


def subsample(rows: pd.DataFrame, max_rows: int, seed: int) -> pd.DataFrame:
    """At most ``max_rows`` rows (0 = all), chosen reproducibly."""
    if max_rows <= 0 or len(rows) <= max_rows:
        return rows
    keep = np.sort(np.random.default_rng(seed).choice(len(rows), size=max_rows, replace=False))
    return rows.iloc[keep].reset_index(drop=True)


# ----------------------------------------------------------------------------- scaling

def compute_target_scaling(rows: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Mean/std of each continuous target over ``rows`` (the training split); std 1 if degenerate."""
    scaling = {}
    for name in CONTINUOUS_TARGETS:
        values = rows[name].dropna().to_numpy(dtype=np.float64)
        mean = float(values.mean()) if len(values) else 0.0
        std = float(values.std()) if len(values) > 1 else 1.0
        scaling[name] = {"mean": mean, "std": std if std > 1e-8 else 1.0}
    return scaling


def compute_normalisation(prepared_dir: str | Path, clip_ids: list[str], seed: int) -> dict[str, float]:
    """Pixel mean/std over up to NORM_SAMPLE_CLIPS training clips (every 4th frame of each)."""
    if not clip_ids:
        raise ConfigError("no training clips to compute the pixel normalisation from")
    rng = np.random.default_rng(seed)
    chosen = sorted(clip_ids) if len(clip_ids) <= NORM_SAMPLE_CLIPS else sorted(
        rng.choice(sorted(clip_ids), size=NORM_SAMPLE_CLIPS, replace=False))
    total = total_sq = count = 0.0
    for clip_id in chosen:
        frames = np.asarray(open_clip(prepared_dir, clip_id)[::4], dtype=np.float64)
        total += frames.sum()
        total_sq += (frames ** 2).sum()
        count += frames.size
    mean = total / count
    std = math.sqrt(max(total_sq / count - mean ** 2, 0.0))
    return {"mean": float(mean), "std": float(std if std > 1e-6 else 1.0)}


def target_arrays(rows: pd.DataFrame, outputs: tuple[str, ...], scaling: dict) -> tuple[np.ndarray, np.ndarray]:
    """(values, mask), both float32 (N, K); continuous values standardised, missing -> 0 / mask 0."""
    values = np.zeros((len(rows), len(outputs)), dtype=np.float32)
    for k, name in enumerate(outputs):
        column = rows[name].to_numpy(dtype=np.float64)
        if name in scaling:
            column = (column - scaling[name]["mean"]) / scaling[name]["std"]
        values[:, k] = column
    mask = np.isfinite(values).astype(np.float32)
    return np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0), mask


def classifier_arrays(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """One-hot view labels (N, len(CLASSIFIER_LABELS)) and an all-ones mask."""
    index = [CLASSIFIER_LABELS.index(classifier_label(v)) for v in rows["view"]]
    values = np.eye(len(CLASSIFIER_LABELS), dtype=np.float32)[index] if index else np.zeros(
        (0, len(CLASSIFIER_LABELS)), np.float32)
    return values, np.ones_like(values)


# ----------------------------------------------------------------------------- frames

def frame_indices(n_total: int, sampling: ClipSampling, start: int) -> np.ndarray:
    """Indices of one window; a clip shorter than the window loops (the heart beat is periodic)."""
    return (start + np.arange(sampling.n_frames) * sampling.period) % n_total


def eval_starts(n_total: int, sampling: ClipSampling, n_clips: int) -> list[int]:
    """``n_clips`` deterministic, evenly spaced window starts (one centred window when n_clips == 1)."""
    last = max(n_total - sampling.span, 0)
    if n_clips <= 1:
        return [last // 2]
    return [int(round(s)) for s in np.linspace(0, last, n_clips)]


def to_tensor(frames: np.ndarray, normalisation: dict[str, float]) -> torch.Tensor:
    """uint8 (T, H, W) -> normalised float32 (1, T, H, W)."""
    x = torch.from_numpy(np.ascontiguousarray(frames, dtype=np.float32))
    return ((x - normalisation["mean"]) / normalisation["std"]).unsqueeze(0)


def draw_augmentation(rng: np.random.Generator) -> Augmentation:
    """The random zoom, shift, contrast and brightness of one clip (same on every frame)."""
    size = int(round(CLIP_SIZE * rng.uniform(*AUG_ZOOM)))
    room = size + 2 * AUG_SHIFT - CLIP_SIZE
    oy, ox = (int(np.clip(room // 2 + rng.integers(-AUG_SHIFT, AUG_SHIFT + 1), 0, room)) for _ in range(2))
    return Augmentation(size, oy, ox, float(rng.uniform(*AUG_CONTRAST)),
                        float(rng.uniform(-AUG_BRIGHTNESS, AUG_BRIGHTNESS)))


def augment(frames: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Same random zoom, translation (pad + crop), contrast and brightness on every frame.

    frames: uint8/float (T, 112, 112) -> float32 (T, 112, 112) in grey levels [0, 255].
    The float path; ``device_batch.augment_on_device`` is the same arithmetic on a batch.
    """
    return apply_augmentation(frames, draw_augmentation(rng))


def apply_augmentation(frames: np.ndarray, aug: Augmentation) -> np.ndarray:
    """The float path of one drawn augmentation (see ``augment``)."""
    x = torch.from_numpy(np.ascontiguousarray(frames, dtype=np.float32))
    if aug.size != CLIP_SIZE:
        x = F.interpolate(x[:, None], size=(aug.size, aug.size), mode="bilinear", align_corners=False)[:, 0]
    canvas = F.pad(x, (AUG_SHIFT,) * 4)
    x = canvas[:, aug.offset_y:aug.offset_y + CLIP_SIZE, aug.offset_x:aug.offset_x + CLIP_SIZE]
    # numpy's single-threaded pairwise sum: torch's reduction order (hence its last bit) depends on
    # the thread count, which differs between the main process and DataLoader workers.
    mean = float(np.mean(x.numpy(), dtype=np.float64))
    x = (x - mean) * aug.contrast + mean + aug.brightness
    return x.clamp(0, 255).numpy()


class ClipDataset(Dataset):
    """Clips of the videos in ``rows`` with their target vectors.

    train=True: key ``(epoch, i)`` -> a random window of clip i (+ augmentation).
    train=False: key ``j`` -> window ``j % n_clips`` (evenly spaced) of clip ``j // n_clips``.
    uint8_output=True: items are ``(frames uint8, params, y, mask, clip)`` and the augmentation and
    normalisation run on the device (``device_batch``); the same numbers, 4x fewer bytes to move.
    """

    def __init__(self, prepared_dir: str | Path, rows: pd.DataFrame, values: np.ndarray, mask: np.ndarray,
                 sampling: ClipSampling, normalisation: dict[str, float], train: bool,
                 n_clips: int = 1, seed: int = 0, augment: bool = True, uint8_output: bool = False):
        self.prepared_dir = Path(prepared_dir)
        self.clip_ids = [str(c) for c in rows["clip_id"]]
        self.values, self.mask = values, mask
        self.sampling, self.normalisation = sampling, normalisation
        self.train, self.n_clips, self.seed, self.augment = train, max(1, n_clips), seed, augment
        self.uint8_output = uint8_output

    def __len__(self) -> int:
        return len(self.clip_ids) * (1 if self.train else self.n_clips)

    def __getitem__(self, key: int | tuple[int, int]) -> tuple:
        if self.train:
            epoch, video = key if isinstance(key, tuple) else (0, key)
            return self.train_item(int(epoch), int(video), open_clip(self.prepared_dir, self.clip_ids[int(video)]))
        assert not isinstance(key, tuple), "evaluation keys are plain indices"
        video, clip = divmod(int(key), self.n_clips)
        array = open_clip(self.prepared_dir, self.clip_ids[video])
        from .windows import window_indices  # never wraps (test-time rule, echocmr.windows)

        found = window_indices(len(array), self.sampling.n_frames, self.sampling.period, self.n_clips)
        return self._item(array[found.indices[clip % len(found.indices)]], video, None)

    def train_item(self, epoch: int, video: int, array: np.ndarray) -> tuple:
        """The training item of clip ``video`` in ``epoch`` from its frames ``array`` (T, 112, 112),
        however they were read (memory-mapped .npy, or a shard: ``echocmr.shards``): the window and
        augmentation come from the generator keyed by (seed, epoch, video), so items never depend
        on the order they are drawn in."""
        rng = np.random.default_rng([self.seed, int(epoch), int(video)])
        start = int(rng.integers(0, max(len(array) - self.sampling.span, 0) + 1))
        frames = array[frame_indices(len(array), self.sampling, start)]
        aug = draw_augmentation(rng) if self.augment else None
        return self._item(frames, video, aug)

    def _item(self, frames: np.ndarray, video: int, aug: Augmentation | None) -> tuple:
        y, mask = torch.from_numpy(self.values[video]), torch.from_numpy(self.mask[video])
        if self.uint8_output:
            clip_u8 = torch.from_numpy(np.ascontiguousarray(frames, dtype=np.uint8)).unsqueeze(0)
            return clip_u8, pack_params(self.normalisation, aug), y, mask, video
        if aug is not None:
            frames = apply_augmentation(frames, aug)
        return to_tensor(frames, self.normalisation), y, mask, video


class EpochSampler(DistributedSampler):
    """DistributedSampler (shuffled per epoch, sharded per rank) yielding ``(epoch, index)`` keys.

    The epoch travels with each key because persistent workers hold their own copy of the dataset
    and would never see a ``set_epoch`` call on it. ``skip`` drops the first ``skip`` keys of this
    rank's epoch order (resuming an epoch that a graceful stop interrupted).
    """

    def __init__(self, dataset: Dataset, num_replicas: int, rank: int, seed: int):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed, drop_last=False)
        self.skip = 0

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for position, index in enumerate(super().__iter__()):
            if position >= self.skip:
                yield (self.epoch, index)

    def __len__(self) -> int:
        return max(super().__len__() - self.skip, 0)


def seed_worker(worker_id: int) -> None:
    """Seed numpy / random in a DataLoader worker from torch's per-worker seed (belt and braces:
    the dataset itself only uses its own keyed generators)."""
    import random

    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)
