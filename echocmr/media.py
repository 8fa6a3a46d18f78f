"""Encode de-identified clips and previews for display: WebM video and PNG images.

No Streamlit here: the dashboard calls these and hands the bytes to the browser. Only
de-identified pixels (112×112 ``Clip.frames``, masked ``Clip.preview``) ever reach this module.
"""

from __future__ import annotations

import os
import tempfile

import cv2
import numpy as np

# Browsers play WebM with VP8 or VP9 natively; VP8 encodes faster and is enough for 112 px clips.
CODECS = ("VP80", "VP90")
MIN_FPS, MAX_FPS = 1.0, 120.0


def _as_frames(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 3 or frames.shape[0] < 1:
        raise ValueError(f"expected grey frames (T, H, W) with T >= 1; got shape {frames.shape}")
    if frames.dtype != np.uint8:
        raise ValueError(f"expected uint8 frames; got {frames.dtype}")
    return frames


def _write_webm(frames, fps: float, size: tuple[int, int], colour: bool, codec: str) -> bytes:
    """WebM bytes of uint8 frames already at ``size`` (width, height); BGR when ``colour``. The
    encoder needs a file path, so the bytes pass through a private temp file that is always removed."""
    if codec not in CODECS:
        raise ValueError(f"codec must be one of {CODECS}; got {codec!r}")
    fps = float(np.clip(fps if fps and np.isfinite(fps) else 30.0, MIN_FPS, MAX_FPS))
    fd, path = tempfile.mkstemp(prefix="echocmr-", suffix=".webm")
    os.close(fd)
    try:
        writer = cv2.VideoWriter(path, cv2.VideoWriter.fourcc(*codec), fps, size, colour)
        if not writer.isOpened():
            raise RuntimeError(f"OpenCV cannot encode WebM with {codec} on this system")
        try:
            for frame in frames:
                writer.write(frame)
        finally:
            writer.release()
        with open(path, "rb") as handle:
            data = handle.read()
    finally:
        os.unlink(path)
    if not data.startswith(b"\x1a\x45\xdf\xa3"):
        raise RuntimeError("the WebM encoder produced no valid output")
    return data


def encode_webm(frames: np.ndarray, fps: float = 30.0, size: int = 224, codec: str = "VP80",
                smooth: bool = True) -> bytes:
    """WebM bytes of a grey uint8 clip (T, H, W), upscaled to ``size`` px for visibility.

    ``smooth`` upscales with cubic interpolation (what a sonographer expects to see); False keeps
    the model's 112×112 pixels as hard blocks (nearest neighbour). Every input frame is written,
    so the decoded video has exactly T frames.
    """
    frames = _as_frames(frames)
    size = int(size) + int(size) % 2  # even dimensions keep every encoder happy
    interp = cv2.INTER_CUBIC if smooth else cv2.INTER_NEAREST
    return _write_webm((cv2.resize(f, (size, size), interpolation=interp) for f in frames), fps, (size, size),
                       False, codec)


def encode_webm_rgb(frames: np.ndarray, fps: float, codec: str = "VP80") -> bytes:
    """WebM bytes of uint8 RGB frames (T, H, W, 3) at their own size (cropped to even dimensions);
    every frame written, as in ``encode_webm``."""
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or not len(frames):
        raise ValueError(f"expected uint8 RGB frames (T, H, W, 3); got {frames.dtype} {frames.shape}")
    rows, cols = frames.shape[1] // 2 * 2, frames.shape[2] // 2 * 2
    return _write_webm((cv2.cvtColor(np.ascontiguousarray(f[:rows, :cols]), cv2.COLOR_RGB2BGR) for f in frames),
                       fps, (cols, rows), True, codec)


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of a uint8 grey (H, W) or RGB (H, W, 3) image."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise ValueError(f"expected a uint8 (H, W) or (H, W, 3) image; got {image.dtype} {image.shape}")
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)  # OpenCV writes BGR
    ok, buffer = cv2.imencode(".png", image)
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buffer.tobytes()


def mid_frame(frames: np.ndarray, size: int = 224) -> np.ndarray:
    """The middle frame of a clip, upscaled: a still for places where a video is too much."""
    frames = _as_frames(frames)
    frame = frames[frames.shape[0] // 2]
    return cv2.resize(frame, (size, size), interpolation=cv2.INTER_CUBIC)
