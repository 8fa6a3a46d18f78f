"""AVI / MP4 through OpenCV (FFmpeg backend), and PNG / JPEG stills.

OpenCV reads videos from a path only, so the bytes go to a private temporary folder
(``mkdtemp``: mode 0700, a neutral file name) that is removed when the source is closed.
Frame size and count are checked against the limits from the container before any frame is
read, and again while reading (container counts can lie).
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import tempfile
from typing import Callable, Iterable, Iterator

import cv2
import numpy as np

from ..config import IngestLimits
from ..errors import InputError
from . import gate


class VideoSource:
    """Frames of an AVI/MP4 as uint8 (H, W, 3) BGR; two passes re-open the file."""

    kind = "video"
    colour_order = "BGR"

    def __init__(self, data: bytes, fmt: str, limits: IngestLimits):
        self.limits = limits
        self._dir = tempfile.mkdtemp(prefix="echocmr-ingest-")
        self._path = os.path.join(self._dir, "clip." + fmt)
        self.digest = hashlib.sha256(data).hexdigest()
        try:
            with open(self._path, "wb") as fh:
                fh.write(data)
            self._probe()
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> "VideoSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)

    def _open(self) -> "cv2.VideoCapture":
        cap = cv2.VideoCapture(self._path, cv2.CAP_FFMPEG)
        if not cap.isOpened():
            cap.release()
            raise InputError("corrupt_video", "the video container could not be opened")
        return cap

    def _probe(self) -> None:
        cap = self._open()
        try:
            w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
            count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
            fps = cap.get(cv2.CAP_PROP_FPS)
        finally:
            cap.release()
        gate.check_still(h, w, self.limits)
        self.claimed = int(count) if math.isfinite(count) and count > 0 else 0
        if self.claimed > self.limits.max_frames:
            raise InputError("too_many_frames", f"the video claims {self.claimed} frames; the limit is {self.limits.max_frames}")
        self.shape = (h, w)
        self.n_frames = self.claimed
        self.fps = float(fps) if math.isfinite(fps) and 0.5 <= fps <= 1000 else None

    def sector(self):
        return None  # containers carry no region geometry

    def spacing_mm(self) -> None:
        return None

    def frame_rate(self) -> tuple[float, str]:
        return (self.fps, "container") if self.fps else (30.0, "default")

    def uid_keys(self) -> tuple[str, str, str]:
        return self.digest, self.digest, self.digest

    def iter(self, indices: Iterable[int] | None = None) -> Iterator[np.ndarray]:
        """Yield BGR frames (H, W, 3) uint8 for ``indices`` (sorted) or all frames."""
        wanted = None if indices is None else set(indices)
        cap = self._open()
        try:
            i = 0
            while True:
                ok, frame = cap.read()
                if not ok:
                    break
                if i >= self.limits.max_frames:
                    raise InputError("too_many_frames", f"the video holds more than {self.limits.max_frames} frames")
                if frame is None or frame.shape[:2] != self.shape or frame.dtype != np.uint8:
                    raise InputError("corrupt_video", f"frame {i + 1} has an unexpected size or type")
                if wanted is None or i in wanted:
                    yield frame if frame.ndim == 3 else cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
                i += 1
        finally:
            cap.release()
        self._check_count(i)

    def _check_count(self, read: int) -> None:
        if read == 0:
            raise InputError("corrupt_video", "no frame of the video could be decoded")
        if self.claimed and read < self.claimed - max(1, int(0.02 * self.claimed)):
            raise InputError("truncated_video", f"the video claims {self.claimed} frames but only {read} could be decoded")
        self.n_frames = read

    def map(self, fn: Callable[[int, np.ndarray], object]) -> list:
        return [fn(i, f) for i, f in enumerate(self.iter())]


class StillSource:
    """A PNG or JPEG still as a one-frame clip (uint8 (H, W, 3) BGR)."""

    kind = "image"
    colour_order = "BGR"
    n_frames = 1

    def __init__(self, data: bytes, fmt: str, limits: IngestLimits):
        h, w = gate.still_dims(data, fmt)
        gate.check_still(h, w, limits)  # before decoding: a PNG header may claim 100k × 100k
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
        if img is None or img.shape[:2] != (h, w):
            raise InputError("corrupt_image", "the image could not be decoded")
        self.shape = (h, w)
        self._img = img
        self.digest = hashlib.sha256(data).hexdigest()

    def __enter__(self) -> "StillSource":
        return self

    def __exit__(self, *exc) -> None:
        self._img = np.empty((0, 0, 3), np.uint8)  # drop the decoded image

    def sector(self):
        return None

    def spacing_mm(self) -> None:
        return None

    def frame_rate(self) -> tuple[float, str]:
        return 30.0, "default"

    def uid_keys(self) -> tuple[str, str, str]:
        return self.digest, self.digest, self.digest

    def iter(self, indices: Iterable[int] | None = None) -> Iterator[np.ndarray]:
        if indices is None or 0 in set(indices):
            yield self._img

    def map(self, fn: Callable[[int, np.ndarray], object]) -> list:
        return [fn(0, self._img)]
