"""Sharded clip cache (echocmr.shards, read by echocmr.prepared): round trip, hostile indexes,
the shard stream's items and its split between processes and workers."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from echocmr import prepared as P
from echocmr.dataset import ClipDataset, ClipSampling, select_rows
from echocmr.errors import ConfigError, InputError
from echocmr.shards import ShardStream, write_shards
from prepared_factory import make_prepared

NORM = {"mean": 100.0, "std": 50.0}
CLIP_MB = 24 * 112 * 112 / 1024**2  # one factory clip (24 frames)


@pytest.fixture(scope="module")
def sharded(tmp_path_factory) -> Path:
    root = make_prepared(tmp_path_factory.mktemp("sharded") / "prepared")
    summary = write_shards(root, shard_mb=1.2 * CLIP_MB)  # about two clips per shard
    assert summary["clips"] == 24 and summary["shards"] >= 8  # clip lengths vary
    return root


def train_set(root: Path) -> ClipDataset:
    rows = select_rows(P.read_manifest(root), "train")
    values, mask = np.zeros((len(rows), 1), np.float32), np.ones((len(rows), 1), bool)
    return ClipDataset(root, rows, values, mask, ClipSampling(8, 2), NORM, train=True, seed=7, uint8_output=True)


def test_shards_hold_every_clip_in_split_order(sharded):
    manifest = P.read_manifest(sharded)
    ok = manifest[manifest["status"] == "ok"]
    seen = [(clip_id, frames) for entry in P.read_shard_index(sharded) for clip_id, frames in P.read_shard(sharded, entry)]
    assert sorted(c for c, _ in seen) == sorted(ok["clip_id"])
    for clip_id, frames in seen:
        assert np.array_equal(frames, P.open_clip(sharded, clip_id))
    splits = ok.set_index("clip_id").loc[[c for c, _ in seen], "split"].tolist()
    assert splits == sorted(splits, key=["train", "val", "test"].index)  # a training epoch reads a prefix


def _corrupt(root: Path, tmp_path: Path, change) -> Path:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    index = copy / "shards" / "index.json"
    data = json.loads(index.read_text())
    change(data)
    index.write_text(json.dumps(data))
    return copy


@pytest.mark.parametrize("change", [
    lambda d: d["shards"][0].update(file="../manifest.csv"),
    lambda d: d["shards"][0].update(file="shard-00099.bin"),
    lambda d: d["shards"][0]["clips"][0].__setitem__(1, 10**12),
    lambda d: d["shards"][0]["clips"][1].__setitem__(1, 0),  # overlaps the first clip
    lambda d: d["shards"][0]["clips"][0].__setitem__(0, "../../etc/passwd"),
    lambda d: d["shards"][0]["clips"][0].__setitem__(2, "24"),
    lambda d: d.update(format="pickle"),
])
def test_hostile_shard_indexes_are_refused(sharded, tmp_path, change):
    with pytest.raises(InputError) as caught:
        P.read_shard_index(_corrupt(sharded, tmp_path, change))
    assert caught.value.code in ("bad_shard_index", "bad_clip_id")


def test_an_oversized_index_is_refused_before_it_is_read(sharded, monkeypatch):
    monkeypatch.setattr(P, "MAX_SHARD_INDEX_BYTES", 100)
    with pytest.raises(InputError, match="larger than 100 bytes"):
        P.read_shard_index(sharded)


def _keys(items) -> list[tuple[int, bytes]]:
    return [(int(v), clip.numpy().tobytes() + params.numpy().tobytes()) for clip, params, _, _, v in items]


def test_one_epoch_yields_every_clip_once_with_its_keyed_item(sharded):
    dataset = train_set(sharded)
    stream = ShardStream(dataset, seed=3, buffer=4)
    stream.set_epoch(2)
    items = list(stream)
    assert sorted(v for v, _ in _keys(items)) == list(range(len(dataset)))
    # The same item the per-file path gives for (epoch, clip): only the order differs.
    expected = dict(_keys(dataset[(2, v)] for v in range(len(dataset))))
    assert all(expected[v] == blob for v, blob in _keys(items))
    stream.set_epoch(3)
    assert [v for v, _ in _keys(stream)] != [v for v, _ in _keys(items)]


def test_two_ranks_with_two_workers_each_take_equal_steps_and_cover_the_epoch(sharded):
    dataset = train_set(sharded)
    per_rank = []
    for rank in range(2):
        stream = ShardStream(dataset, rank=rank, world=2, seed=3, buffer=2)
        loader = DataLoader(stream, batch_size=2, num_workers=2)
        per_rank.append([int(v) for batch in loader for v in batch[4]])
    assert len(per_rank[0]) == len(per_rank[1]) == -(-len(dataset) // 2)
    counts = Counter(per_rank[0] + per_rank[1])
    # Whole shards go to a rank; a rank short of its share pads by re-reading (as DistributedSampler pads).
    assert len(counts) >= len(dataset) - 4 and max(counts.values()) <= 2


def test_too_few_shards_for_the_processes_is_a_clear_error(tmp_path):
    root = make_prepared(tmp_path / "prepared")
    write_shards(root, shard_mb=1000)
    with pytest.raises(ConfigError, match="1 shards cannot feed 2 processes"):
        ShardStream(train_set(root), rank=0, world=2)
    stream = ShardStream(train_set(root))
    with pytest.raises(ConfigError, match="cannot feed 2 loader workers"):
        list(DataLoader(stream, batch_size=2, num_workers=2))
    assert torch.is_tensor(next(iter(stream))[0])


@pytest.mark.slow  # in `make test`, not the quick run (> 5 s)
def test_a_resumed_epoch_skips_the_batches_already_trained(sharded):
    dataset = train_set(sharded)
    stream = ShardStream(dataset, seed=3, buffer=4, batch_size=2)
    stream.set_epoch(1)
    whole = [v for v, _ in _keys(stream)]
    stream.skip = 4
    assert len(stream) == len(whole) - 4 and [v for v, _ in _keys(stream)] == whole[4:]


def test_a_buffer_larger_than_the_epoch_still_yields_each_clip_once(sharded):
    dataset = train_set(sharded)
    stream = ShardStream(dataset, seed=3, buffer=1000, batch_size=4)
    assert sorted(v for v, _ in _keys(stream)) == list(range(len(dataset)))


def test_resharding_replaces_the_shards(tmp_path):
    root = make_prepared(tmp_path / "prepared", views={"A4C": 6})
    write_shards(root, shard_mb=CLIP_MB)
    write_shards(root, shard_mb=1000)
    assert sorted(p.name for p in (root / "shards").iterdir()) == ["index.json", "shard-00000.bin"]
    assert len(P.read_shard_index(root)[0].clips) == 6  # the factory's rejected row is not packed
