"""Cold page cache: per-file ``clips/*.npy`` random reads vs sequential shard reads (``bench/loader.py``).

A cohort larger than memory is read from the disk every epoch. Rather than fill this machine's
memory, every file read is first evicted from the page cache (``posix_fadvise(DONTNEED)``, no
root needed), which is what a larger-than-memory cohort sees: no clip is cached when its turn
comes. Both layouts go through a real ``DataLoader`` (uint8 items, augmentation on, batch 16):

- per file: ``ClipDataset`` + ``EpochSampler`` (keyed random order), each item memory-maps its
  ``.npy`` and reads the frames it uses;
- shards: ``echocmr shard`` layout (``echocmr.shards.ShardStream``): whole shards read front to
  back through an 8 MB buffer, clips mixed by a shuffle buffer.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
from torch.utils.data import DataLoader

from echocmr.dataset import ClipDataset, ClipSampling, EpochSampler
from echocmr.shards import ShardStream, write_shards

BATCH = 16


def evict_folder(folder: Path) -> None:
    """Drop every file under ``folder`` from the page cache."""
    for path in folder.rglob("*"):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def bench_dataset(root: Path, rows: pd.DataFrame, sampling: ClipSampling, uint8: bool = True) -> ClipDataset:
    """A training ClipDataset over ``root/clips`` with dummy targets (only the reading is measured)."""
    values = np.zeros((len(rows), 3), np.float32)
    return ClipDataset(root, rows, values, np.ones_like(values), sampling, {"mean": 80.0, "std": 60.0},
                       train=True, uint8_output=uint8)


def timed_rate(loader, evict, workers: int, epochs: int, set_epoch) -> float:
    """Clips per second per worker over ``epochs`` passes of ``loader`` (``evict()`` before each)."""
    count, elapsed = 0, 0.0
    for epoch in range(epochs):
        set_epoch(epoch + 1)
        evict()
        t0 = time.perf_counter()
        for batch in loader:
            count += len(batch[0])
        elapsed += time.perf_counter() - t0
    return count / elapsed / max(workers, 1)


def cold_comparison(root: Path, rows: pd.DataFrame, sampling: ClipSampling, workers: int, epochs: int = 1,
                    shard_mb: float = 64.0) -> tuple[float, float, int]:
    """(per-file clips/s per worker, shard clips/s per worker, shards) with a cold page cache."""
    manifest = rows.assign(view="A4C", split="train", status="ok")
    manifest.to_csv(root / "manifest.csv", index=False)
    n_shards = write_shards(root, shard_mb)["shards"]
    dataset = bench_dataset(root, rows, sampling)
    sampler = EpochSampler(dataset, num_replicas=1, rank=0, seed=0)
    per_file = DataLoader(dataset, batch_size=BATCH, sampler=sampler, num_workers=workers,
                          persistent_workers=False, prefetch_factor=4 if workers else None)
    file_rate = timed_rate(per_file, lambda: evict_folder(root / "clips"), workers, epochs, sampler.set_epoch)
    stream = ShardStream(dataset, seed=0, buffer=64)
    sharded = DataLoader(stream, batch_size=BATCH, num_workers=workers, prefetch_factor=4 if workers else None)
    shard_rate = timed_rate(sharded, lambda: evict_folder(root / "shards"), workers, epochs, stream.set_epoch)
    return file_rate, shard_rate, n_shards
