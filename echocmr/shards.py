"""Sharded clip cache: clips packed into large files read sequentially (``echocmr shard``).

The prepared folder keeps one ``clips/<clip_id>.npy`` per clip: random reads of ~400 KB, which a
local NVMe serves at any order but a cold network file system or spinning disk does not. With a
cohort larger than memory every epoch reads from the disk, so ``write_shards`` packs the usable
clips, ordered by split then manifest order, into ``shards/shard-NNNNN.bin`` files of about
``shard_mb`` MB (raw uint8 (T, 112, 112) clips back to back) with ``shards/index.json``
(clip id, byte offset, frame count; written last, atomically: the commit point). Reading the
format stays in ``echocmr.prepared`` (``read_shard_index``, ``read_shard``).

``ShardStream`` trains from shards: each epoch shuffles the shard order (keyed by seed and
epoch), deals whole shards to DDP ranks and DataLoader workers, reads each shard front to back
and mixes its clips through a shuffle buffer. Items are ``ClipDataset.train_item``: the window
and augmentation of a clip depend on (seed, epoch, clip), never on the order, so a clip's item
is the same as through the per-file path; only the order of an epoch differs.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Iterator

import numpy as np
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from .atomic import atomic_write, atomic_write_json
from .config import TrainConfig
from .dataset import ClipDataset, EpochSampler, seed_worker
from .errors import ConfigError
from .prepared import SHARD_FORMAT, SHARD_INDEX, SHARDS_DIR, ShardEntry, open_clip, read_manifest, read_shard, read_shard_index
from .train_loop import Runtime, make_loader

SPLIT_ORDER = {"train": 0, "val": 1, "test": 2}


def write_shards(prepared_dir: str | os.PathLike, shard_mb: float = 256.0) -> dict:
    """Pack the ``ok`` clips of a prepared folder into shards; returns {shards, clips, bytes}.

    Re-running replaces the shards (the index is written last, so a killed run leaves the old
    index naming the old files or no index at all, never a half-written one)."""
    if not (shard_mb > 0):
        raise ConfigError("shard_mb must be a positive number")
    prepared_dir = Path(prepared_dir)
    manifest = read_manifest(prepared_dir)
    ok = manifest[manifest["status"] == "ok"].drop_duplicates("clip_id")
    ok = ok.assign(_order=ok["split"].map(SPLIT_ORDER).fillna(3)).sort_values("_order", kind="stable")
    folder = prepared_dir / SHARDS_DIR
    folder.mkdir(exist_ok=True)
    index = prepared_dir / SHARDS_DIR / SHARD_INDEX
    if index.exists():
        index.unlink()  # the old shards are about to be overwritten
    limit, size = int(shard_mb * 1024**2), 0
    shards: list[dict] = []
    group: list[tuple[str, np.ndarray]] = []
    for clip_id in ok["clip_id"]:
        array = open_clip(prepared_dir, str(clip_id))
        group.append((str(clip_id), array))
        size += array.nbytes
        if size >= limit:
            shards.append(_write_shard(folder, len(shards), group))
            group, size = [], 0
    if group:
        shards.append(_write_shard(folder, len(shards), group))
    atomic_write_json(index, {"format": SHARD_FORMAT, "shards": shards})
    named = {s["file"] for s in shards}
    for stale in folder.glob("shard-*.bin"):  # left by an earlier run with smaller shards
        if stale.name not in named:
            stale.unlink()
    return {"shards": len(shards), "clips": int(len(ok)), "bytes": int(sum(s["bytes"] for s in shards))}


def _write_shard(folder: Path, number: int, group: list[tuple[str, np.ndarray]]) -> dict:
    clips, offset = [], 0
    for clip_id, array in group:
        clips.append([clip_id, offset, int(array.shape[0])])
        offset += array.nbytes

    def write(handle: io.BufferedWriter) -> None:
        for _, array in group:
            handle.write(np.ascontiguousarray(array).tobytes())

    name = f"shard-{number:05d}.bin"
    atomic_write(folder / name, write)
    return {"file": name, "bytes": offset, "clips": clips}


class ShardStream(IterableDataset):
    """One epoch of ``dataset``'s training items, read shard by shard (see module doc).

    ``rank``/``world``: the DDP process's share (whole shards). Every rank yields exactly
    ``ceil(len(dataset) / world)`` items (re-reading its first shards when its shards hold fewer,
    as DistributedSampler pads) in ``ceil(... / batch_size)`` batches, so all ranks take the
    same number of steps. ``buffer``: the shuffle buffer, in clips. Like ``EpochSampler`` it
    has ``set_epoch`` and ``skip``, so ``echocmr train --shards`` drives it the same way.
    """

    def __init__(self, dataset: ClipDataset, rank: int = 0, world: int = 1, seed: int = 0, buffer: int = 64,
                 batch_size: int = 1):
        if not dataset.train:
            raise ConfigError("ShardStream serves training items; evaluate through ClipDataset")
        self.dataset, self.rank, self.world, self.seed, self.buffer = dataset, rank, world, seed, max(1, buffer)
        self.batch_size = max(1, batch_size)
        self.epoch = 0
        self.skip = 0  # items of this rank's epoch already trained on (``echocmr train`` resume)
        self.videos = {clip_id: i for i, clip_id in enumerate(dataset.clip_ids)}
        self.shards = [s for s in read_shard_index(dataset.prepared_dir)
                       if any(c[0] in self.videos for c in s.clips)]
        held = {c[0] for s in self.shards for c in s.clips}
        if not self.shards or held < set(self.videos):
            raise ConfigError("the shards do not hold every training clip: run `echocmr shard` on this folder again")
        if len(self.shards) < world:
            raise ConfigError(f"{len(self.shards)} shards cannot feed {world} processes: shard with a smaller --shard-mb")

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def quota(self) -> int:
        """Items this rank yields in a whole epoch (every rank the same)."""
        return -(-len(self.videos) // self.world)

    def __len__(self) -> int:
        return max(self.quota() - self.skip, 0)

    def _count(self, entries: list[ShardEntry]) -> int:
        return sum(1 for entry in entries for clip in entry.clips if clip[0] in self.videos)

    def _my_shards(self) -> tuple[list[ShardEntry], int, int]:
        """(this worker's shards in epoch order, items it skips, items it yields after them).

        The rank's ``quota()`` items, in ``batch_size`` batches, are split between its workers in
        proportion to the clips their shards hold (whole batches, so every rank's loader yields
        ceil(quota / batch_size) batches): a worker drops the excess of a long share or re-reads
        to pad a short one. ``skip`` (a resumed epoch) drops the batches the DataLoader took
        from each worker in turn before the stop."""
        order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.shards))
        mine = [self.shards[i] for i in order[self.rank::self.world]]
        info = get_worker_info()
        n_workers, worker = (1, 0) if info is None else (info.num_workers, info.id)
        if len(mine) < n_workers:
            raise ConfigError(f"{len(mine)} shards per process cannot feed {n_workers} loader workers: "
                              "shard with a smaller --shard-mb")
        naturals = [self._count(mine[w::n_workers]) for w in range(n_workers)]
        size, quota = self.batch_size, self.quota()
        n_batches = -(-quota // size)
        batches = [n_batches * n // sum(naturals) for n in naturals]
        for k in range(n_batches - sum(batches)):
            batches[k % n_workers] += 1
        shares = [b * size for b in batches]
        shares[int(np.argmax(batches))] -= n_batches * size - quota  # the one partial batch
        done = self.skip // size
        skipped = (done // n_workers + (1 if worker < done % n_workers else 0)) * size
        return mine[worker::n_workers], min(skipped, shares[worker]), shares[worker]

    def __iter__(self) -> Iterator[tuple]:
        shards, skip, quota = self._my_shards()
        rng = np.random.default_rng([self.seed, self.epoch, self.rank, 1 + (get_worker_info() or _NoWorker).id])
        pool: list[tuple[int, np.ndarray]] = []
        taken = fetched = 0
        for clip_video in self._clips(shards):
            if fetched >= quota:  # the share is in hand: a long share drops the rest, a short one re-read
                break
            pool.append(clip_video)
            fetched += 1
            if len(pool) >= self.buffer:
                item = self._take(pool, rng, taken < skip)
                taken += 1
                if item is not None:
                    yield item
        while pool and taken < quota:
            item = self._take(pool, rng, taken < skip)
            taken += 1
            if item is not None:
                yield item

    def _clips(self, shards: list[ShardEntry]) -> Iterator[tuple[int, np.ndarray]]:
        """(video, frames) of the dataset's clips in ``shards``, cycling so a short share pads."""
        for _ in range(1 + len(self)):  # bounded: one pass always yields at least one clip
            for entry in shards:
                for clip_id, frames in read_shard(self.dataset.prepared_dir, entry):
                    if clip_id in self.videos:
                        yield self.videos[clip_id], frames

    def _take(self, pool: list[tuple[int, np.ndarray]], rng: np.random.Generator, skip: bool) -> tuple | None:
        """One clip out of the shuffle buffer as its training item (None when it is skipped)."""
        pick = int(rng.integers(len(pool)))
        pool[pick], pool[-1] = pool[-1], pool[pick]
        video, frames = pool.pop()
        return None if skip else self.dataset.train_item(self.epoch, video, frames)


class _NoWorker:
    id = -1


def train_input(train_set: ClipDataset, config: TrainConfig, runtime: Runtime, seed: int) -> tuple:
    """``echocmr train``'s (epoch order: an EpochSampler or a ShardStream, training DataLoader),
    by ``config.data_layout``."""
    if config.data_layout == "shards":
        stream = ShardStream(train_set, runtime.ctx.rank, runtime.ctx.world_size, seed, batch_size=config.batch_size)
        # Not persistent: workers hold copies of the stream, and each epoch's set_epoch / skip
        # must reach them (EpochSampler carries the epoch in its keys instead).
        loader = DataLoader(stream, batch_size=config.batch_size, num_workers=config.num_workers,
                            pin_memory=runtime.device.type == "cuda", worker_init_fn=seed_worker,
                            prefetch_factor=4 if config.num_workers else None)
        return stream, loader
    sampler = EpochSampler(train_set, runtime.ctx.world_size, runtime.ctx.rank, seed)
    return sampler, make_loader(train_set, config.batch_size, sampler, runtime, config.num_workers, config.seed)
