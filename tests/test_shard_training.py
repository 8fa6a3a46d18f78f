"""``echocmr train --shards``: training reads the sharded cache, in one process and under torchrun
(two gloo processes, the project's train_dist plumbing)."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from echocmr import prepared as P
from echocmr.atomic import read_json_lines
from echocmr.config import ModelConfig, TrainConfig
from echocmr.model_runner import load_view_model
from echocmr.shards import write_shards
from echocmr.train import train_model

REPO = Path(__file__).resolve().parent.parent
TINY = TrainConfig(preset="test", model=ModelConfig(arch="compact", width=4, n_frames=8, period=2),
                   views=("A4C",), batch_size=2, epochs=1, patience=5, num_workers=0, device="cpu",
                   view_classifier=False, classifier_width=4, data_layout="shards")


@pytest.fixture(scope="module")
def sharded(tiny_prepared, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sharded") / "prepared"
    shutil.copytree(tiny_prepared, root)
    write_shards(root, shard_mb=2 * 24 * 112 * 112 / 1024**2)  # a few clips per shard
    assert len(P.read_shard_index(root)) >= 4
    return root


@pytest.mark.slow  # one epoch of training (~35 s on the shared 2-core machine)
def test_training_reads_the_shards(sharded, tmp_path, monkeypatch):
    read = []
    original = P.read_shard

    def counting(prepared_dir, entry, *args, **kwargs):
        read.append(entry.file)
        yield from original(prepared_dir, entry, *args, **kwargs)

    monkeypatch.setattr("echocmr.shards.read_shard", counting)
    run = train_model(TINY, sharded, tmp_path / "run")
    assert read and [r["epoch"] for r in read_json_lines(run / "metrics.jsonl")] == [1]
    load_view_model(run / "A4C" / "last")


@pytest.mark.slow  # two training processes under torchrun
def test_two_gloo_processes_train_from_the_shards(sharded, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    env.pop("WORLD_SIZE", None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "echocmr.cli",
           "train", "--data", str(sharded), "--out", str(tmp_path / "runs"), "--run-name", "ddp", "--shards",
           "--epochs", "2", "--preset", "cpu-demo", "--views", "A4C", "--no-view-classifier", "--width", "4",
           "--frames", "8", "--batch-size", "2", "--num-workers", "1", "--device", "cpu"]
    result = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    run = tmp_path / "runs" / "ddp"
    assert json.loads((run / "status.json").read_text())["state"] == "finished"
    assert [r["epoch"] for r in read_json_lines(run / "metrics.jsonl")] == [1, 2]  # rank 0 writes, once per epoch
    assert json.loads((run / "A4C" / "last.json").read_text())["train"]["data_layout"] == "shards"
    load_view_model(run / "A4C" / "last")


def test_the_layout_is_validated():
    from echocmr.commands.train import _validate
    from echocmr.errors import ConfigError

    with pytest.raises(ConfigError, match="data_layout"):
        _validate(dataclasses.replace(TINY, data_layout="tape"))


def test_each_epoch_reaches_the_loader_workers(sharded):
    """Loader workers hold copies of the stream: a new epoch (and a resumed one's skip) must reach
    them, so the shard loader is rebuilt per epoch, never persistent."""
    from echocmr.shards import train_input
    from echocmr.train import make_runtime
    from echocmr.train_dist import DistContext
    from echocmr.train_tasks import build_task_data, plan_tasks

    config = dataclasses.replace(TINY, num_workers=1)
    manifest = P.read_manifest(sharded)
    task = plan_tasks(config, manifest.columns)[0]  # the view models' outputs this manifest labels
    data = build_task_data(task, config, sharded, manifest, None)
    stream, loader = train_input(data.train_set, config, make_runtime(config, DistContext()), 0)
    orders = []
    for epoch in (1, 2):
        stream.set_epoch(epoch)
        orders.append([int(v) for batch in loader for v in batch[4]])
    assert sorted(orders[0]) == sorted(orders[1]) == list(range(len(data.train_set))) and orders[0] != orders[1]
    stream.skip = 2
    assert [int(v) for batch in loader for v in batch[4]] == orders[1][2:]
