"""Fuzzing ingestion: mutated corpus and valid files into ``read_study`` / ``read_clip``.

Only ``InputError`` may escape ``read_clip``; ``read_study`` reports every problem per item
with a code from ``ERROR_CODES``. Bounded by default (~60 s in all: ``make test`` runs it);
longer locally with ``ECHOCMR_FUZZ_SECONDS`` (the mutation loop) and ``ECHOCMR_FUZZ_EXAMPLES``
(the hypothesis test), e.g. ``ECHOCMR_FUZZ_SECONDS=1800 pytest tests/test_fuzz_ingest.py``.
Runs in-process on purpose: a Python exception of the wrong type is exactly what it looks for
(the isolated worker would turn it into ``decoder_failed``).
"""

from __future__ import annotations

import os
import random
import time

import pytest

import dicom_factory as F
import hostile_corpus as H
from echocmr.errors import InputError
from echocmr.ingest import ERROR_CODES, read_clip, read_study

FUZZ_SECONDS = float(os.environ.get("ECHOCMR_FUZZ_SECONDS", "40"))
FUZZ_EXAMPLES = int(os.environ.get("ECHOCMR_FUZZ_EXAMPLES", "120"))
# Values that tend to break parsers: lengths, counts and markers at their edges.
INTERESTING = [b"\xff\xff\xff\xff", b"\0\0\0\0", b"\xff\xd8\xff", b"\xff\xd9", b"\xfe\xff\x00\xe0",
               b"\xe0\x7f\x10\x00", b"PK\x03\x04", b"DICM", b"\x7f\xff\xff\xff", b"-1", b"99999999", b"\0"]


def seeds(ctx: H.Ctx) -> list[bytes]:
    """Valid files of several kinds plus the corpus's file cases (small ones)."""
    out = [ctx.good(), H.OLD._jpeg_ds(ctx.scene, F.encode_jpeg_frames(ctx.scene.rgb)),
           F.write_dicom(ctx.tmp / "rle.dcm", ctx.scene, syntax="rle").read_bytes(),
           F.write_dicom(ctx.tmp / "pal.dcm", ctx.scene, photometric="PALETTE COLOR").read_bytes(),
           F.write_dicom(ctx.tmp / "ybr.dcm", ctx.scene, photometric="YBR_FULL_422").read_bytes(),
           H._raw_zip([("a.dcm", ctx.good())]), H._video(ctx, "avi", "MJPG", 6)]
    for case in H.CASES:
        if case.target == "file" and "100,000" not in case.name and "repeated" not in case.name:
            data = case.build(ctx)
            if 0 < len(data) <= 2 * H.MiB:
                out.append(data)
    return out


def mutate(data: bytes, rng: random.Random, pool: list[bytes]) -> bytes:
    """One to four random edits: flips, interesting values, truncation, duplication, splicing."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(6)
        at = rng.randrange(len(buf) + 1)
        if op == 0 and buf:
            buf[min(at, len(buf) - 1)] = rng.randrange(256)
        elif op == 1:
            value = rng.choice(INTERESTING)
            buf[at:at + len(value)] = value
        elif op == 2:
            del buf[at:]
        elif op == 3:
            buf[at:at] = buf[at:at + rng.randint(1, 512)] * rng.randint(1, 8)
        elif op == 4:
            other = rng.choice(pool)
            start = rng.randrange(len(other) + 1)
            buf[at:] = other[start:start + rng.randint(1, 4096)]
        else:
            del buf[at:at + rng.randint(1, 64)]
        if not buf:
            buf = bytearray(b"\0")
    return bytes(buf)


def check_one(data: bytes) -> str:
    """Feed one input to both entry points; returns its outcome code. Fails on anything else."""
    try:
        read_clip(data)
        code = "accepted"
    except InputError as exc:
        assert exc.code in ERROR_CODES
        code = exc.code
    for item in read_study(data):
        assert (item.clip is None) != (item.error is None)
        if item.error is not None:
            assert item.error.code in ERROR_CODES
    return code


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    return seeds(H.Ctx(tmp_path_factory.mktemp("fuzz")))


@pytest.mark.slow
def test_mutation_loop_only_input_errors_escape(pool):
    rng = random.Random(int(os.environ.get("ECHOCMR_FUZZ_SEED", "0")))
    deadline = time.monotonic() + FUZZ_SECONDS
    tried = 0
    while time.monotonic() < deadline:
        data = mutate(rng.choice(pool), rng, pool)
        try:
            check_one(data)
        except BaseException as exc:  # report the failing input's recipe, not its bytes
            raise AssertionError(f"input #{tried} (seed {rng}) raised {type(exc).__name__}") from exc
        tried += 1
    assert tried > 0


def test_hypothesis_structured_mutations(pool):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    @settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(st.integers(0, len(pool) - 1), st.integers(0, 2**32 - 1))
    def check(which, seed):
        check_one(mutate(pool[which], random.Random(seed), pool))

    check()
