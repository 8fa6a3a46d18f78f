"""The hostile corpus (tests/hostile_corpus.py) through the isolated decoder and the loaders.

Each case must give its own stable code (or be accepted), with a message free of patient data,
file names and tracebacks, while the decoder worker's peak memory stays under the case's cap.
Then: a decoder that aborts, segfaults, hangs or runs out of memory fails its file only.
"""

from __future__ import annotations

import hashlib
import os
import time

import pytest

import dicom_factory as F
import hostile_corpus as H
from echocmr.checkpoint import CHECKPOINT_ERROR_CODES
from echocmr.config import IngestLimits
from echocmr.ingest import ERROR_CODES, read_study
from echocmr.ingest import isolated
from echocmr.ingest.isolated import IsolatedDecoder

# Warnings raised while *building* cases (pydicom writing an unknown charset, torch reading a
# protocol-4 pickle it then refuses); ingestion itself is silenced by gate.quiet_pydicom.
pytestmark = [pytest.mark.filterwarnings("ignore:Unknown encoding:UserWarning"),
              pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")]


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    return H.Ctx(tmp_path_factory.mktemp("hostile"))


@pytest.fixture(scope="module")
def decoder():
    dec = IsolatedDecoder(H.LIMITS)
    yield dec
    dec.close()


def test_corpus_size_and_codes():
    assert len(H.CASES) >= 40 and len(H.BY_NAME) == len(H.CASES)
    known = set(ERROR_CODES) | set(CHECKPOINT_ERROR_CODES) | {"accepted"}
    for case in H.CASES:
        assert set(case.expect.split(",")) <= known, case.name
    assert len({c.category for c in H.CASES}) >= 12


@pytest.mark.parametrize("name", list(H.BY_NAME))
def test_hostile_case(name, ctx, decoder):
    case = H.BY_NAME[name]
    out = H.run_case(case, case.build(ctx), decoder)
    assert out.code == case.expect, f"{name}: {out.messages}"
    for message in out.messages:
        H.assert_clean_message(message, ctx)
    assert out.peak_rss_bytes <= case.max_peak_mib * H.MiB, f"{name}: worker peaked at {out.peak_rss_bytes >> 20} MiB"
    if case.check is not None:
        case.check(ctx, out)
    if case.target == "file":  # in-process ingestion agrees with the isolated worker
        assert [i.error.code if i.error else "accepted" for i in read_study(case.build(ctx))] == out.codes


def _good(ctx) -> bytes:
    return ctx.good()


@pytest.mark.parametrize("fault,code", [("abort", "decoder_crashed"), ("segfault", "decoder_crashed"),
                                        ("memory", "decoder_memory"), ("raise", "decoder_failed")])
def test_a_dying_decoder_fails_that_file_only(fault, code, ctx, decoder):
    good = _good(ctx)
    first = decoder.decode(good)
    tmp = decoder.tmp
    bad = decoder.decode(good, fault=fault)
    assert bad.clip is None and bad.error.code == code
    H.assert_clean_message(str(bad.error), ctx)
    after = decoder.decode(good)  # a fresh worker when the old one died
    assert first.clip is not None and after.clip is not None
    assert (after.clip.frames == first.clip.frames).all()
    if code == "decoder_crashed":
        assert decoder.tmp != tmp and not os.path.exists(tmp), "the dead worker's temp folder remains"


def test_a_hanging_decoder_times_out(ctx):
    dec = IsolatedDecoder(IngestLimits(worker_timeout_s=2.0))
    try:
        dec.decode(_good(ctx))  # worker warm
        started = time.perf_counter()
        result = dec.decode(_good(ctx), fault="hang")
        assert result.error.code == "decoder_timeout" and time.perf_counter() - started < 10
        assert dec.decode(_good(ctx)).clip is not None
    finally:
        dec.close()


def test_ingest_study_isolates_each_upload_file(ctx, monkeypatch):
    """Through the dashboard's entry point: file 2 makes the decoder abort (injected hook);
    files 1 and 3 still give clips, and nothing names the files."""
    from echocmr.study_prediction import ingest_study

    good = _good(ctx)
    crashing = F.to_bytes(H.OLD._ds(F.make_scene(64, 80, 4, seed=9)))
    monkeypatch.setitem(isolated.FAULTS, hashlib.sha256(crashing).hexdigest(), "abort")
    items = ingest_study([(H.NAME_CANARY + "_1.dcm", good), (H.NAME_CANARY + "_2.dcm", crashing),
                          ("../" + H.NAME_CANARY, good)])
    assert [i.display_name for i in items] == ["file 1", "file 2", "file 3"]
    assert items[0].clip is not None and items[2].clip is not None
    assert items[1].clip is None and items[1].error.code == "decoder_crashed"
    H.assert_clean_message(str(items[1].error), ctx)


def test_memory_cap_is_enforced_for_real_inputs(ctx):
    """A legal clip whose decoding needs more than a tiny worker cap: refused as decoder_memory,
    not a crash of the caller. (The cap counts mapped libraries, hence the odd-looking number.)"""
    dec = IsolatedDecoder(IngestLimits(worker_memory_bytes=700 * H.MiB))
    try:
        big = H._repeated_jpeg(ctx)  # fine under the default cap (test_hostile_case)
        result = dec.decode(big + b"\0" * (300 * H.MiB))  # pad: the worker must hold the bytes
        assert result.error is not None and result.error.code == "decoder_memory"
        assert dec.decode(_good(ctx)).clip is not None
    finally:
        dec.close()
