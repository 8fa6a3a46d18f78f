"""Run a published-weights bundle exactly as its authors' pipeline does (``official.PUBLISHED_RECIPE``).

A 112x112 AVI that meets their input contract is decoded with OpenCV and handed to the model
unchanged: B, G, R channels, pixel / 255, the first 32 frames at stride 2, (N, 3, 16, 112, 112),
sigmoid. Anything else (DICOM, MP4, larger AVIs, prepared clips) arrives as EchoCMR's de-identified
grey clip, given to the model as B = G = R with the same scaling and sampling. Videos of 31 frames
or fewer are dropped, as in the published pipeline.

``windows > 0`` is an EchoCMR option, not the published protocol: the mean probability of
``windows`` evenly spaced 32-frame windows (never wrapping past the end of the video).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .errors import InputError
from .official import PUBLISHED_RECIPE

CLIP_SIZE = 112
MIN_FRAMES = int(PUBLISHED_RECIPE["min_frames"])
SPAN = (int(PUBLISHED_RECIPE["n_frames"]) - 1) * int(PUBLISHED_RECIPE["period"]) + 1  # 31 frames
MAX_AVI_BYTES = 512 << 20
MAX_AVI_FRAMES = 5000


@dataclass(frozen=True)
class PublishedOptions:
    """How ``predict_study`` runs a published bundle.

    ``exact_inputs``: item index -> BGR uint8 (T, 112, 112, 3) frames of an AVI that met the
    contract (``contract_frames``); ``windows``: 0 = the published single clip (exact), N > 1 =
    mean over N windows (labelled as test-time averaging wherever shown).
    """

    exact_inputs: dict = field(default_factory=dict)
    windows: int = 0

    @property
    def mode_label(self) -> str:
        if self.windows > 1:
            return f"test-time averaging over {self.windows} windows (EchoCMR option, not the published protocol)"
        return "exact published preprocessing (first 32 frames, stride 2, one clip)"


def is_published(model) -> bool:
    """A loaded view model whose checkpoint records the published recipe."""
    return (model.meta.get("preprocessing") or {}).get("name") == "published"


def is_avi(data: bytes) -> bool:
    return len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"AVI "


def contract_frames(data: bytes) -> np.ndarray | None:
    """BGR uint8 (T, 112, 112, 3) of an AVI whose frames are 112x112, else None.

    Decoded with OpenCV exactly as the published script reads its inputs. Bounded before reading:
    at most ``MAX_AVI_BYTES`` bytes and ``MAX_AVI_FRAMES`` frames.
    """
    import cv2

    if not is_avi(data) or len(data) > MAX_AVI_BYTES:
        return None
    handle, name = tempfile.mkstemp(suffix=".avi")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        capture = cv2.VideoCapture(name)
        frames: list[np.ndarray] = []
        try:
            while len(frames) <= MAX_AVI_FRAMES:
                ok, frame = capture.read()
                if not ok:
                    break
                if frame.shape != (CLIP_SIZE, CLIP_SIZE, 3):
                    return None
                frames.append(frame)
        finally:
            capture.release()
    finally:
        os.unlink(name)
    if not frames or len(frames) > MAX_AVI_FRAMES:
        return None
    return np.stack(frames)


def published_inputs(sources, items) -> dict[int, np.ndarray]:
    """Item index -> contract frames, for sources that are one contract AVI each.

    ``sources`` as given to ``ingest_study`` (name, bytes | Path); ``items`` its result, whose
    display names are "file N" for single-item sources.
    """
    exact = {}
    by_name = {item.display_name: item for item in items if item.clip is not None}
    for number, (_, data) in enumerate(sources, start=1):
        item = by_name.get(f"file {number}")
        if item is None:
            continue
        raw = Path(data).read_bytes() if isinstance(data, (str, Path)) else bytes(data)
        frames = contract_frames(raw)
        if frames is not None:
            exact[item.index] = frames
    return exact


def clip_tensor(frames: np.ndarray, start: int = 0) -> torch.Tensor:
    """(T, 112, 112) grey or (T, 112, 112, 3) BGR uint8 -> float32 (3, 16, 112, 112), /255."""
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.shape[1:3] != (CLIP_SIZE, CLIP_SIZE):
        raise InputError("bad_clip", f"frames must be uint8 112x112, got {frames.dtype} {frames.shape}")
    chosen = frames[start:start + SPAN:int(PUBLISHED_RECIPE["period"])]
    if chosen.ndim == 3:
        chosen = np.repeat(chosen[..., None], 3, axis=-1)
    x = torch.from_numpy(np.ascontiguousarray(chosen)).permute(3, 0, 1, 2).float()
    return x / 255.0


def window_starts(n_frames: int, windows: int) -> list[int]:
    """Window starts: [0] (exact) or ``windows`` evenly spaced, none running past the end."""
    last = n_frames - SPAN
    if windows <= 1 or last <= 0:
        return [0]
    return sorted({int(round(s)) for s in np.linspace(0, last, windows)})


@torch.inference_mode()
def predict_frames(model, frames_list: list[np.ndarray], windows: int = 0, batch_size: int = 4) -> np.ndarray:
    """(N, n_outputs) float64 probabilities; a row is NaN for a video of 31 frames or fewer."""
    result = np.full((len(frames_list), len(model.outputs)), np.nan)
    jobs = [(v, s) for v, f in enumerate(frames_list) if len(f) >= MIN_FRAMES for s in window_starts(len(f), windows)]
    sums = np.zeros_like(result)
    counts = np.zeros(len(frames_list))
    for begin in range(0, len(jobs), batch_size):
        chunk = jobs[begin:begin + batch_size]
        batch = torch.stack([clip_tensor(frames_list[v], s) for v, s in chunk]).to(model.device)
        probs = torch.sigmoid(model.module(batch).double()).cpu().numpy()
        for (v, _), row in zip(chunk, probs):
            sums[v] += row
            counts[v] += 1
    done = counts > 0
    result[done] = sums[done] / counts[done, None]
    return result


def predict_clip_predictions(model, members: list, options: PublishedOptions | None) -> np.ndarray:
    """Outputs for ``ClipPrediction``s of one view: contract AVIs as decoded, others as ingested."""
    options = options or PublishedOptions()
    frames_list = [options.exact_inputs.get(c.index, c.clip.frames) for c in members]
    return predict_frames(model, frames_list, options.windows)


def too_short_message() -> str:
    return f"[too_few_frames] {PUBLISHED_RECIPE['drop_rule']} by the published model (needs {MIN_FRAMES})"


def run_published(model, members: list, options: PublishedOptions | None, rejected: list | None):
    """(kept members, their outputs): clips the published model drops go to ``rejected``."""
    outputs = predict_clip_predictions(model, members, options)
    kept = ~np.isnan(outputs).any(axis=1)
    if rejected is not None:
        rejected.extend((c.display_name, too_short_message()) for c, ok in zip(members, kept) if not ok)
    return [c for c, ok in zip(members, kept) if ok], outputs[kept]
