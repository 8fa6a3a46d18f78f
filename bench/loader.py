"""Benchmark: training clips/s per loader core, prepared uint8 cache -> DataLoader -> batch.

The real ``ClipDataset`` (memory-mapped ``clips/<id>.npy``, keyed random clip, augmentation) goes
through a real ``DataLoader`` (worker processes, batch 16, collation) for both presets' clip
shapes, two ways:

- ``float``: the old path, augmentation + normalisation in the worker, float32 items;
- ``uint8``: items stay uint8 with their drawn augmentation; the arithmetic runs on the device
  (``echocmr.device_batch``), which is not counted here (on a GPU it is a few kernels per step).

Each figure is clips/s delivered to the main process divided by the number of workers. A warm
run reads from the page cache; a cold run first evicts every clip file from the page cache
(``posix_fadvise(DONTNEED)``, no root needed), so each clip is read from the disk.
``clips_per_s_per_core: <value>``: the uint8 path, augmentation on, one worker, the slower of
the two presets, warm cache. Then a cold page cache with the two cache layouts (per-file
``.npy`` random reads vs sequential shard reads, ``bench/cold_layouts.py``) for the paper
preset; the last line is ``cold_clips_per_s_per_core: <shards> (per file: <npy>)``.
Figures measured on a shared machine are depressed by the other load; compare the ratios.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from cold_layouts import BATCH, bench_dataset, cold_comparison, evict_folder, timed_rate  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from echocmr.config import PRESETS  # noqa: E402
from echocmr.dataset import ClipSampling, EpochSampler  # noqa: E402


def make_cache(root: Path, n_videos: int, n_frames: int) -> pd.DataFrame:
    """``n_videos`` uint8 (n_frames, 112, 112) clips with texture (random noise compresses nothing
    and is what a disk read costs); returns the rows a ClipDataset takes."""
    (root / "clips").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n_videos):
        np.save(root / "clips" / f"c{i:06d}.npy", rng.integers(0, 256, (n_frames, 112, 112), dtype=np.uint8))
    return pd.DataFrame({"clip_id": [f"c{i:06d}" for i in range(n_videos)]})


def clips_per_s(root: Path, rows: pd.DataFrame, sampling: ClipSampling, uint8: bool, workers: int,
                epochs: int, cold: bool = False) -> float:
    dataset = bench_dataset(root, rows, sampling, uint8)
    sampler = EpochSampler(dataset, num_replicas=1, rank=0, seed=0)
    loader = DataLoader(dataset, batch_size=BATCH, sampler=sampler, num_workers=workers,
                        persistent_workers=workers > 0, prefetch_factor=4 if workers else None)
    next(iter(loader))  # start the workers before the clock
    evict = (lambda: evict_folder(root / "clips")) if cold else (lambda: None)
    return timed_rate(loader, evict, workers, epochs, sampler.set_epoch)


def items_per_cpu_second(root: Path, rows: pd.DataFrame, sampling: ClipSampling, uint8: bool) -> float:
    """``__getitem__`` alone in this process, per CPU-second (process_time): a figure other load
    on a shared machine barely moves."""
    dataset = bench_dataset(root, rows, sampling, uint8)
    t0 = time.process_time()
    for i in range(len(dataset)):
        dataset[(7, i)]
    return len(dataset) / (time.process_time() - t0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=256, help="clips in the cache")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--cold-videos", type=int, default=1024, help="clips in the cold-cache layout comparison")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"machine: {os.cpu_count()} cores (shared: other load depresses every figure; compare ratios)")
    print(f"{'preset':9s} {'clip':>7s} {'path':6s} {'workers':>7s} {'cache':5s} {'clips/s/core':>13s}")
    worst = float("inf")
    with tempfile.TemporaryDirectory(prefix="echocmr-loader-") as d:
        for name in ("paper", "cpu-demo"):
            model = PRESETS[name].model
            sampling = ClipSampling(model.n_frames, model.period)
            root = Path(d) / name
            rows = make_cache(root, args.videos, sampling.span + 16)
            for uint8 in (False, True):
                rate = items_per_cpu_second(root, rows, sampling, uint8)
                path = "uint8" if uint8 else "float"
                print(f"{name:9s} {model.n_frames:4d}fr {path:6s} {'item':>7s} {'warm':5s} {rate:13.0f}  (CPU-s)")
            for workers in args.workers:
                for uint8 in (False, True):
                    rate = clips_per_s(root, rows, sampling, uint8, workers, args.epochs)
                    path = "uint8" if uint8 else "float"
                    print(f"{name:9s} {model.n_frames:4d}fr {path:6s} {workers:7d} {'warm':5s} {rate:13.0f}")
                    if uint8 and workers == args.workers[0]:
                        worst = min(worst, rate)
            cold = clips_per_s(root, rows, sampling, True, args.workers[0], 1, cold=True)
            print(f"{name:9s} {model.n_frames:4d}fr {'uint8':6s} {args.workers[0]:7d} {'cold':5s} {cold:13.0f}")
    print(f"clips_per_s_per_core: {worst:.0f}")
    per_file, shards = cold_layouts_figure(args.cold_videos, args.workers[0])
    print(f"cold_clips_per_s_per_core: {shards:.0f} (per file: {per_file:.0f})")
    return 0


def cold_layouts_figure(n_videos: int, workers: int) -> tuple[float, float]:
    model = PRESETS["paper"].model
    sampling = ClipSampling(model.n_frames, model.period)
    with tempfile.TemporaryDirectory(prefix="echocmr-cold-") as d:
        rows = make_cache(Path(d), n_videos, sampling.span + 16)
        mb = n_videos * (sampling.span + 16) * 112 * 112 / 1024**2
        per_file, shards, n_shards = cold_comparison(Path(d), rows, sampling, workers)
    print(f"\ncold page cache, paper preset, {n_videos} clips ({mb:.0f} MB), {workers} worker(s): "
          f"per-file .npy {per_file:.0f} clips/s/core, {n_shards} shards read sequentially {shards:.0f}")
    return per_file, shards


if __name__ == "__main__":
    sys.exit(main())
