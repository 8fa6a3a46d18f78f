"""Write a tiny PREPARED dataset (docs/ARCHITECTURE.md format) for model and training tests.

Each clip is a bright ellipse ("ventricle") pulsing over a noisy background. Its shape depends on
the view (so a classifier can learn views) and its pulsation amplitude on ``wma_view``: abnormal
wall motion = small amplitude, so the label is visible as motion, not as a static cue.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from echocmr.targets import TARGETS

VIEW_AXES = {"A4C": (30, 20), "A2C": (20, 32), "PLAX": (38, 12), "PSAX": (22, 22), "A3C": (26, 26)}
DEFAULT_VIEWS = {"A4C": 16, "A2C": 3, "PLAX": 3, "PSAX": 2}


def make_clip(rng: np.random.Generator, view: str, abnormal: bool, n_frames: int) -> np.ndarray:
    """uint8 (n_frames, 112, 112): the view's ellipse, radius pulsing with a 12-frame period."""
    a, b = VIEW_AXES[view]
    amplitude = 0.06 if abnormal else 0.3
    phase = rng.uniform(0, 2 * np.pi)
    t = np.arange(n_frames)[:, None, None]
    scale = 1.0 + amplitude * np.sin(2 * np.pi * t / 12.0 + phase)
    yy, xx = np.mgrid[0:112, 0:112]
    cy, cx = 56 + rng.integers(-4, 5), 56 + rng.integers(-4, 5)
    inside = ((xx - cx) / (a * scale)) ** 2 + ((yy - cy) / (b * scale)) ** 2 <= 1.0
    frames = 30 + 170 * inside + rng.normal(0, 12, size=inside.shape)
    return np.clip(frames, 0, 255).astype(np.uint8)


def _labels(rng: np.random.Generator, abnormal: bool, k: int) -> dict[str, float]:
    t1 = 1000 + 70 * abnormal + rng.normal(0, 30)
    t2 = 48 + 6 * abnormal + rng.normal(0, 4)
    ecv = 27 + 5 * abnormal + rng.normal(0, 3)
    labels = {"wma_view": float(abnormal), "lge_view": float(rng.random() < 0.3 + 0.4 * abnormal),
              "wma": float(abnormal or rng.random() < 0.2), "lge": float(rng.random() < 0.5),
              "t1": t1 if k % 3 else np.nan, "t2": t2 if k % 4 else np.nan, "ecv": ecv if k % 2 else np.nan}
    for name, cut in (("t1", 1060.0), ("t2", 58.0), ("ecv", 33.0)):
        labels[f"{name}_abnormal"] = np.nan if np.isnan(labels[name]) else float(labels[name] > cut)
    return labels


def _split(i: int, n: int) -> str:
    """Roughly 60/20/20, val and test getting both label classes (labels alternate)."""
    n_eval = max(2, n // 5) if n >= 8 else (1 if n >= 3 else 0)
    if i >= n - n_eval:
        return "test"
    if i >= n - 2 * n_eval:
        return "val"
    return "train"


def make_prepared(root: str | Path, views: dict[str, int] | None = None, n_frames: int = 24,
                  seed: int = 0, with_rejected: bool = True) -> Path:
    """Write PREPARED under ``root`` (created) and return it."""
    root = Path(root)
    (root / "clips").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for view, count in (views or DEFAULT_VIEWS).items():
        for i in range(count):
            clip_id = f"{view.lower()}{i:03d}"
            abnormal = bool(i % 2)
            length = n_frames if i % 5 else max(4, n_frames // 3)  # some short videos (looped)
            np.save(root / "clips" / f"{clip_id}.npy", make_clip(rng, view, abnormal, length))
            rows.append({"clip_id": clip_id, "patient": f"P{view}{i:03d}", "study": f"S{view}{i:03d}",
                         "view": view, "view_source": "given", "view_confidence": 1.0,
                         "split": _split(i, count), "n_frames": length, "fps": 30.0, "echo_cmr_days": 1,
                         "status": "ok", "reason": "", **_labels(rng, abnormal, i)})
    if with_rejected:
        rows.append({"clip_id": "rejected000", "patient": "PX", "study": "SX", "view": "A4C",
                     "view_source": "given", "view_confidence": 1.0, "split": "train", "n_frames": 0,
                     "fps": 30.0, "echo_cmr_days": 1, "status": "rejected", "reason": "too_small"})
    columns = ["clip_id", "patient", "study", "view", "view_source", "view_confidence", "split", "n_frames",
               "fps", "echo_cmr_days", "status", "reason", *[t.name for t in TARGETS]]
    pd.DataFrame(rows).reindex(columns=columns).to_csv(root / "manifest.csv", index=False)
    (root / "prepare.json").write_text(json.dumps({"source": "tests.prepared_factory", "synthetic": True,
                                                   "counts": {"clips": len(rows)}}), encoding="utf-8")
    return root
