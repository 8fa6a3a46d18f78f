"""The executor: local pool by default, a real Dask cluster (scheduler + 2 worker processes on
127.0.0.1) when given an address; ``prepare`` gives byte-identical outputs either way."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from echocmr.config import PrepareConfig, SynthConfig
from echocmr.errors import ConfigError
from echocmr.executor import InProcess, LocalPool, make_executor
from echocmr.prepare import PrepareSources, prepare_dataset

distributed = pytest.importorskip("distributed")
SALT = b"executor-test-salt"


def _square(x: int) -> int:
    if x == 13:
        raise ValueError("unlucky")
    return x * x


@pytest.fixture(scope="module")
def cluster():
    import dask

    # As docs/SCALE.md asks of a real cluster: non-daemonic workers, so each can start the
    # isolated decoder processes that prepare decodes in.
    with dask.config.set({"distributed.worker.daemon": False}), distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address="127.0.0.1:0", silence_logs=40) as local:
        yield local.scheduler_address


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    from echocmr.synth import generate_cohort

    out = tmp_path_factory.mktemp("cohort")
    generate_cohort(dataclasses.replace(SynthConfig.small(seed=4), n_patients=6), out)
    victim = sorted((out / "dicom").rglob("*.dcm"))[0]
    victim.write_bytes(b"not a dicom file" * 64)  # one bad file: a per-file record, never fatal
    return out


def _prepare(cohort: Path, out: Path, cluster: str = "") -> None:
    sources = PrepareSources.from_cohort(cohort, known_views=cohort / "ground_truth" / "clips.csv")
    prepare_dataset(sources, out, PrepareConfig(use_known_views=True, workers=2), salt=SALT, cluster=cluster)


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != "ingest.jsonl"}


def _journal(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "ingest.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("executor", [InProcess(), LocalPool(2)])
def test_local_executors_map_every_item(executor):
    try:
        assert sorted(executor.map(_square, range(10))) == [i * i for i in range(10)]
        with pytest.raises(ValueError, match="unlucky"):
            list(executor.map(_square, range(20)))
    finally:
        executor.close()


def test_the_cluster_maps_every_item_with_a_bounded_window(cluster):
    executor = make_executor(cluster=cluster)
    try:
        assert executor.workers == 2
        items = [i for i in range(50) if i != 13]
        assert sorted(executor.map(_square, items)) == [i * i for i in items]
        with pytest.raises(ValueError, match="unlucky"):
            list(executor.map(_square, range(20)))
    finally:
        executor.close()


def test_an_unreachable_scheduler_is_a_config_error():
    with pytest.raises(ConfigError, match="cannot reach"):
        # Nothing listens on port 1: a short connect timeout says so without waiting the default 30 s.
        make_executor(cluster="tcp://127.0.0.1:1", connect_timeout_s=2.0)


@pytest.mark.slow
def test_prepare_on_the_cluster_is_byte_identical_and_resumes(cohort, cluster, tmp_path):
    _prepare(cohort, tmp_path / "local")
    _prepare(cohort, tmp_path / "cluster", cluster)
    local, remote = _files(tmp_path / "local"), _files(tmp_path / "cluster")
    assert any(name.startswith("clips/") for name in local)
    assert local == remote  # manifest.csv, prepare.json and every clip, byte for byte
    journal = _journal(tmp_path / "cluster")
    key = lambda r: r["key"]  # noqa: E731 - journal order is completion order
    assert sorted(journal, key=key) == sorted(_journal(tmp_path / "local"), key=key)
    assert [r["status"] for r in journal].count("rejected") == 1
    # Resume: a run killed after two files leaves their journal lines and clips; the next run
    # ingests only the rest and ends with the same outputs.
    resumed = tmp_path / "resumed"
    (resumed / "clips").mkdir(parents=True)
    (resumed / "ingest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in journal[:2]))
    for record in journal[:2]:
        if record["status"] == "ok":
            name = f"clips/{record['clip_id']}.npy"
            (resumed / name).write_bytes(local[name])
    _prepare(cohort, resumed, cluster)
    assert len(_journal(resumed)) == len(journal)
    assert _files(resumed) == local
