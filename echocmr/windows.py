"""Test-time sampling: which frames of a video make the windows a model sees at evaluation.

A model takes ``n_frames`` frames ``period`` apart (a window spanning ``(n_frames − 1)·period + 1``
frames). At test time a video gives several windows whose predictions are averaged:

* **Never wraps.** Every window is a run of increasing frame indices inside the video; no window
  jumps from the last frames back to the first (a phase jump the model never saw in training).
* **Short videos.** A video shorter than the span is sampled at the largest lower period whose
  span fits; a video shorter than ``n_frames`` frames gives one window of all its frames, evenly
  stretched (frames repeated in order).
* **How many.** ``windows`` evenly spaced starts from the first to the last possible one,
  de-duplicated (a short video gives only its distinct windows), or ``"all"``: every start, as
  EchoNet-Dynamic's test-time augmentation averages every beat.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ALL = "all"


@dataclass(frozen=True)
class VideoWindows:
    """The windows of one video: ``period`` used and ``indices`` ``(k, n_frames)``."""

    period: int
    indices: np.ndarray

    @property
    def starts(self) -> list[int]:
        return [int(s) for s in self.indices[:, 0]]


def check_windows(windows) -> int | str:
    """A window count (int ≥ 1) or ``"all"``; anything else is a ValueError."""
    if windows == ALL:
        return ALL
    if isinstance(windows, (int, np.integer)) and not isinstance(windows, bool) and windows >= 1:
        return int(windows)
    raise ValueError(f"test-time windows must be a number >= 1 or 'all'; got {windows!r}")


def fitting_period(n_total: int, n_frames: int, period: int) -> int:
    """The model's period if its span fits the video, else the largest lower one that does (1 at
    least)."""
    p = max(1, int(period))
    while p > 1 and (n_frames - 1) * p + 1 > n_total:
        p -= 1
    return p


def window_indices(n_total: int, n_frames: int, period: int, windows: int | str = 4) -> VideoWindows:
    """Frame indices of the test-time windows of a video of ``n_total`` frames."""
    if n_total < 1 or n_frames < 1:
        raise ValueError(f"need a video of at least one frame and windows of at least one; got "
                         f"{n_total} and {n_frames}")
    windows = check_windows(windows)
    p = fitting_period(n_total, n_frames, period)
    span = (n_frames - 1) * p + 1
    offsets = np.arange(n_frames) * p
    if span > n_total:  # fewer frames than the window: stretch the video over one window
        stretched = np.floor(np.linspace(0, n_total, n_frames, endpoint=False)).astype(np.int64)
        return VideoWindows(p, stretched[None, :])
    last = n_total - span
    if windows == ALL:
        starts = np.arange(last + 1)
    elif windows == 1:
        starts = np.array([last // 2])
    else:
        starts = np.unique(np.round(np.linspace(0, last, int(windows))).astype(np.int64))
    return VideoWindows(p, starts[:, None] + offsets[None, :])


def sampling_record(n_frames: int, period: int, windows: int | str, lengths=()) -> dict:
    """What the results record about test-time sampling; ``lengths``: frame counts of the videos
    evaluated (to say how many were sampled at a lower period)."""
    lengths = np.asarray(list(lengths), dtype=np.int64)
    span = (n_frames - 1) * period + 1
    return {
        "windows": check_windows(windows),
        "n_frames": int(n_frames),
        "period": int(period),
        "span": int(span),
        "n_videos": int(lengths.size),
        "n_videos_shorter_than_span": int((lengths < span).sum()),
        "rule": "windows never wrap; a video shorter than the span is sampled at the largest lower "
                "period that fits (one stretched window below n_frames frames); evenly spaced "
                "distinct starts, or every start with 'all'",
    }
