"""EchoNet-Dynamic layout: ``echonet/FileList.csv`` + ``echonet/Videos/*.avi`` (112×112, MJPG).

Only A4C clips are exported, as in EchoNet-Dynamic. Frames are the clean sector (no text, no ECG)
cropped to the sector's bounding box and resized with cubic interpolation.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import cv2
import numpy as np

from .render import ClipSpec

ECHONET_SIZE = 112
FILELIST_COLUMNS = ("FileName", "EF", "ESV", "EDV", "FrameHeight", "FrameWidth", "FPS",
                    "NumberOfFrames", "Split")


def crop_resize(clean: np.ndarray, spec: ClipSpec, size: int = ECHONET_SIZE) -> np.ndarray:
    """uint8 (T, size, size): grey frames (T, H, W) cropped to the sector bbox and resized."""
    x0, y0, x1, y1 = spec.bbox
    return np.stack([cv2.resize(f[y0:y1, x0:x1], (size, size), interpolation=cv2.INTER_CUBIC)
                     for f in clean])


def write_avi(path: Path, frames: np.ndarray, fps: float) -> Path:
    """Write uint8 (T, h, w) grey frames as an MJPG AVI, atomically (temp file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".avi", dir=path.parent)
    os.close(fd)
    try:
        height, width = frames.shape[1:3]
        writer = cv2.VideoWriter(tmp, cv2.VideoWriter.fourcc(*"MJPG"), float(fps), (width, height))
        if not writer.isOpened():
            raise RuntimeError("OpenCV cannot write MJPG AVI files")
        for frame in frames:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
        writer.release()
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def volumes(lvef_pct: float, lv_scale: float, rng: np.random.Generator) -> tuple[float, float]:
    """(ESV, EDV) in ml consistent with the EF and the LV size factor."""
    edv = 110.0 * lv_scale**3 * rng.uniform(0.85, 1.15)
    return edv * (1.0 - lvef_pct / 100.0), edv


def split_for(patient_index: int, seed: int) -> str:
    """EchoNet-style split (TRAIN/VAL/TEST, 8:1:1), fixed per patient."""
    u = np.random.default_rng(np.random.SeedSequence([seed, patient_index, 99])).random()
    return "TRAIN" if u < 0.8 else ("VAL" if u < 0.9 else "TEST")
