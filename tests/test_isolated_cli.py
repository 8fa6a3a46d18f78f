"""The CLI decodes in isolated workers: real decoder faults fail one file, never the process.

``decoder_faults.aborting_jpeg_lossless`` is a real file on which GDCM aborts (verified below
in a forked child), not an injected fault.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time

import pandas as pd
import pytest

import decoder_faults as D
import dicom_factory as F
from echocmr.config import IngestLimits, PrepareConfig, SynthConfig
from echocmr.errors import InputError
from echocmr.ingest import read_clip, read_clip_isolated
from echocmr.ingest.decoder_pool import DecoderPool
from echocmr.prepare import PrepareSources, prepare_dataset
from test_ingest_phi import cli_main

SALT = b"isolated-cli"


@pytest.fixture(scope="module")
def aborting(tmp_path_factory):
    return D.aborting_jpeg_lossless(tmp_path_factory.mktemp("abort") / "bad.dcm")


def test_the_corrupt_jpeg_lossless_file_really_aborts_an_in_process_decoder(aborting):
    assert D.dies_in_a_child(aborting) == -6  # SIGABRT from GDCM's uncaught C++ exception


def test_preprocess_rejects_the_aborting_file_and_writes_the_others(aborting, tmp_path, capsys):
    good = F.write_dicom(tmp_path / "good.dcm", F.make_scene(120, 160, 4, seed=2), syntax="jpeg_baseline",
                         photometric="YBR_FULL_422")
    code = cli_main(["preprocess", str(good), str(aborting), str(good), "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert code == 1
    assert "rejected file 2: [decoder_crashed]" in out and out.count("accepted") == 2
    assert len(list((tmp_path / "out").glob("*.npy"))) == 1  # files 1 and 3 are the same clip


def test_a_frame_the_decoder_calls_corrupt_is_refused(tmp_path):
    path = D.scrambled_middle_frame(tmp_path / "scrambled.dcm")
    assert read_clip(str(path)).n_frames == 5  # in-process, libjpeg only prints a warning
    with pytest.raises(InputError) as err:
        read_clip_isolated(str(path), session="test")
    assert err.value.code == "corrupt_frame"


def test_sequence_items_are_counted_before_parsing(tmp_path):
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    scene = F.make_scene(64, 80, 2, seed=4)
    ds = F.base_dataset(scene)
    F.set_pixels(ds, scene, "RGB")
    ds.ReferencedImageSequence = Sequence([Dataset() for _ in range(300)])
    F._meta(ds, F.SYNTAXES["explicit_le"])
    data = F.to_bytes(ds)
    assert read_clip(data, limits=IngestLimits(max_dicom_items=1000)).n_frames == 2
    with pytest.raises(InputError) as err:
        read_clip(data, limits=IngestLimits(max_dicom_items=100))
    assert err.value.code == "too_many_items"
    from echocmr.ingest import ERROR_CODES

    assert "too_many_items" in ERROR_CODES and "corrupt_frame" in ERROR_CODES


@pytest.mark.slow  # in `make test`, not the quick run (> 5 s)
def test_prepare_records_the_aborting_file_once_completes_the_rest_and_resumes(aborting, tmp_path, monkeypatch):
    from echocmr.synth import generate_cohort
    import echocmr.prepare as prep

    cohort = tmp_path / "cohort"
    generate_cohort(dataclasses.replace(SynthConfig.small(seed=5), n_patients=4), cohort)
    index = pd.read_csv(cohort / "echo_index.csv", dtype=str)
    victim = index["file"].iloc[0]
    (cohort / victim).write_bytes(aborting.read_bytes())
    sources = PrepareSources.from_cohort(cohort, known_views=cohort / "ground_truth" / "clips.csv")
    out = tmp_path / "prepared"
    manifest = prepare_dataset(sources, out, PrepareConfig(use_known_views=True, workers=2), salt=SALT)
    journal = [json.loads(line) for line in (out / "ingest.jsonl").read_text().splitlines()]
    crashed = [r for r in journal if "decoder_crashed" in r["reason"]]
    assert len(crashed) == 1 and crashed[0]["status"] == "rejected"
    paired = manifest["status"] != "unpaired"
    assert (manifest.loc[paired, "status"] == "ok").sum() == paired.sum() - 1

    def fail(*_):
        raise AssertionError("a journalled file was decoded again")

    monkeypatch.setattr(prep, "_ingest_one", fail)
    again = prepare_dataset(sources, out, PrepareConfig(use_known_views=True, workers=2), salt=SALT)
    assert len(again) == len(manifest)
    assert len((out / "ingest.jsonl").read_text().splitlines()) == len(journal)


def test_the_pool_serves_sessions_in_turn(tmp_path):
    """One worker; session A queues three files before session B queues one: B is served
    second, not fourth."""
    data = _native(6)
    pool = DecoderPool(IngestLimits(), size=1)
    finished: list[str] = []
    try:
        held = pool._acquire("holder")
        threads = []
        for name in ("A1", "A2", "A3", "B1"):
            t = threading.Thread(target=lambda n=name: (pool.decode(data, session=n[0]), finished.append(n)))
            t.start()
            threads.append(t)
            time.sleep(0.2)  # queue in this order
        pool._release(held)
        for t in threads:
            t.join(120)
        assert finished.index("B1") == 1, finished
    finally:
        pool.close()


def _native(seed: int) -> bytes:
    scene = F.make_scene(64, 80, 2, seed=seed)
    ds = F.base_dataset(scene)
    F.set_pixels(ds, scene, "RGB")
    F._meta(ds, F.SYNTAXES["explicit_le"])
    return F.to_bytes(ds)


@pytest.mark.slow
def test_the_robustness_bench_fuzzes_every_gdcm_and_openjpeg_syntax():
    """The bench's per-syntax loop on a tiny count (the bench itself runs 10,000 per syntax)."""
    import sys

    from echocmr.config import REPO_ROOT

    sys.path.insert(0, str(REPO_ROOT / "bench"))
    import robustness as R

    rows = R.run_syntax_fuzz(4, seed=1)
    assert set(rows) == {"jpeg_lossless", "jpegls", "j2k", "rle"}
    for syntax, row in rows.items():
        assert row["tried"] == 4 and row["parent deaths"] == 0, (syntax, row)
        assert row["accepted"] + row["rejected"] + row["unexpected errors"] + row["worker deaths"] == 4
