"""Robustness benchmark: the hostile corpus plus a short fuzz loop through the isolated decoder.

Prints one row per category (inputs tried, rejected with the expected code, accepted as
expected, wrong outcome, crashes, the decoder worker's peak RSS in MiB), a fuzz row, and last a
summary line ``crashes: N`` (must be 0). A crash is the worker dying (``decoder_crashed``,
``decoder_memory``, ``decoder_timeout``), an unexpected exception inside it
(``decoder_failed``), or any exception other than InputError / CheckpointError in this process.
``--fuzz-seconds`` sets the fuzz budget.

Then a per-syntax fuzz of the GDCM / OpenJPEG / RLE decoders (``--mutations``, default 10,000
per syntax: JPEG lossless, JPEG-LS, JPEG 2000, RLE), decoded as ``echocmr prepare`` does (a
decoder pool of isolated workers) in a child process per syntax: the table gives mutations
tried, worker deaths (contained: that file fails with decoder_crashed) and parent deaths (the
calling process died: must be 0). Exit status 0 only when there is no crash, no parent death
and every corpus case gave its expected outcome.
"""

from __future__ import annotations

import argparse
import collections
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

CRASH_CODES = {"decoder_crashed", "decoder_memory", "decoder_timeout", "decoder_failed"}


def run_corpus(ctx, decoder) -> tuple[dict, list[str], int]:
    """Per-category counters, the names of cases with a wrong outcome, the max worker peak."""
    import hostile_corpus as H

    rows: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    wrong, peak = [], 0
    for case in H.CASES:
        row = rows[case.category]
        row["tried"] += 1
        try:
            out = H.run_case(case, case.build(ctx), decoder)
        except Exception as exc:  # anything escaping the entry point counts as a crash
            row["crashes"] += 1
            wrong.append(f"{case.name}: {type(exc).__name__}")
            continue
        peak = max(peak, out.peak_rss_bytes or 0)
        row["peak"] = max(row["peak"], out.peak_rss_bytes or 0)
        row["crashes"] += sum(code in CRASH_CODES for code in out.codes)
        if out.code != case.expect:
            row["wrong"] += 1
            wrong.append(f"{case.name}: got {out.code}, expected {case.expect}")
        elif case.expect.split(",")[0] == "accepted":
            row["accepted"] += 1
        else:
            row["rejected"] += 1
    return rows, wrong, peak


def run_fuzz(ctx, decoder, seconds: float, seed: int) -> collections.Counter:
    """Mutated inputs through the isolated worker (a real crash must not take this process down)."""
    import test_fuzz_ingest as Z

    pool = Z.seeds(ctx)
    rng = random.Random(seed)
    row = collections.Counter()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        data = Z.mutate(rng.choice(pool), rng, pool)
        row["tried"] += 1
        result = decoder.decode(data)
        row["peak"] = max(row["peak"], result.peak_rss_bytes or 0)
        if result.error is None:
            row["accepted"] += 1
        elif result.error.code in CRASH_CODES:
            row["crashes"] += 1
        else:
            row["rejected"] += 1
    return row


# Syntaxes decoded by GDCM (JPEG lossless, JPEG-LS), OpenJPEG (JPEG 2000) and pylibjpeg-rle.
FUZZ_SYNTAXES = ("jpeg_lossless", "jpegls", "j2k", "rle")


def syntax_seed(tmp: Path, syntax: str) -> bytes:
    import dicom_factory as F

    return F.write_dicom(tmp / f"{syntax}.dcm", F.make_scene(64, 80, 3, seed=11), syntax=syntax).read_bytes()


def mutate_pixels(data: bytes, rng: random.Random, pool: list[bytes]) -> bytes:
    """Mostly edits inside the compressed frames (where the C decoders read), sometimes anywhere."""
    import test_fuzz_ingest as Z

    pixels = data.rfind(b"\xe0\x7f\x10\x00")
    if pixels < 0 or rng.random() < 0.2:
        return Z.mutate(data, rng, pool)
    head, body = data[:pixels + 12], bytearray(data[pixels + 12:])
    for _ in range(rng.randint(1, 3)):
        at = rng.randrange(len(body))
        body[at] = rng.randrange(256) if rng.random() < 0.7 else rng.choice((0xFF, 0x00, 0xD7, 0xD9, 0xDA))
    return head + bytes(body)


def fuzz_syntax(syntax: str, mutations: int, seed: int) -> collections.Counter:
    """``mutations`` mutated files of one syntax through a decoder pool, as ``echocmr prepare``
    decodes them; runs in a child process of the bench, whose death is a parent death."""
    import hostile_corpus as H

    from echocmr.ingest.decoder_pool import DecoderPool

    rng = random.Random(f"{syntax}-{seed}")
    row = collections.Counter()
    pool = DecoderPool(H.LIMITS, size=1)
    try:
        with tempfile.TemporaryDirectory(prefix="echocmr-fuzz-") as tmp:
            seeds = [syntax_seed(Path(tmp), syntax)]
            for _ in range(mutations):
                result = pool.decode(mutate_pixels(seeds[0], rng, seeds), session="fuzz")
                row["tried"] += 1
                if result.error is None:
                    row["accepted"] += 1
                elif result.error.code in ("decoder_crashed", "decoder_memory", "decoder_timeout"):
                    row["worker deaths"] += 1  # contained: the file fails, this process goes on
                elif result.error.code == "decoder_failed":
                    row["unexpected errors"] += 1  # a Python exception in the decoder: a bug to fix
                else:
                    row["rejected"] += 1
    finally:
        pool.close()
    return row


def run_syntax_fuzz(mutations: int, seed: int) -> dict[str, collections.Counter]:
    """Each syntax's loop in its own child process (all at once); a child that dies is a parent death."""
    import json
    import subprocess

    children = {syntax: subprocess.Popen([sys.executable, __file__, "--syntax-child", syntax, "--mutations",
                                          str(mutations), "--seed", str(seed)],
                                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
                for syntax in FUZZ_SYNTAXES}
    rows = {}
    for syntax, child in children.items():
        out, _ = child.communicate()
        row = collections.Counter()
        if child.returncode == 0 and out.strip():
            row.update(json.loads(out.strip().splitlines()[-1]))
        else:
            row["parent deaths"] += 1
        rows[syntax] = row
    return rows


def print_syntax_table(rows: dict[str, collections.Counter]) -> int:
    head = (f"{'syntax':<16}{'mutations':>10}{'accepted':>10}{'rejected':>10}{'unexpected':>12}{'worker deaths':>15}"
            f"{'parent deaths':>15}")
    print(head)
    print("-" * len(head))
    for syntax, r in rows.items():
        print(f"{syntax:<16}{r['tried']:>10}{r['accepted']:>10}{r['rejected']:>10}{r['unexpected errors']:>12}"
              f"{r['worker deaths']:>15}{r['parent deaths']:>15}")
    return sum(r["parent deaths"] for r in rows.values())


def print_table(rows: dict, fuzz: collections.Counter) -> None:
    head = f"{'category':<24}{'tried':>7}{'rejected ok':>13}{'accepted ok':>13}{'wrong':>7}{'crashes':>9}{'peak MiB':>10}"
    print(head)
    print("-" * len(head))
    total = collections.Counter()
    for name in sorted(rows):
        r = rows[name]
        total.update({k: v for k, v in r.items() if k != "peak"})
        total["peak"] = max(total["peak"], r["peak"])
        print(f"{name:<24}{r['tried']:>7}{r['rejected']:>13}{r['accepted']:>13}{r['wrong']:>7}{r['crashes']:>9}"
              f"{r['peak'] / 2**20:>10.0f}")
    print("-" * len(head))
    print(f"{'corpus total':<24}{total['tried']:>7}{total['rejected']:>13}{total['accepted']:>13}{total['wrong']:>7}"
          f"{total['crashes']:>9}{total['peak'] / 2**20:>10.0f}")
    print(f"{'fuzz (mutations)':<24}{fuzz['tried']:>7}{fuzz['rejected']:>13}{fuzz['accepted']:>13}{'-':>7}"
          f"{fuzz['crashes']:>9}{fuzz['peak'] / 2**20:>10.0f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fuzz-seconds", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mutations", type=int, default=10_000, help="per syntax (JPEG lossless, JPEG-LS, JPEG 2000, RLE)")
    parser.add_argument("--syntax-child", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.syntax_child:
        import json

        print(json.dumps(fuzz_syntax(args.syntax_child, args.mutations, args.seed)))
        return 0

    import hostile_corpus as H

    from echocmr.ingest.isolated import IsolatedDecoder

    started = time.perf_counter()
    decoder = IsolatedDecoder(H.LIMITS)
    try:
        with tempfile.TemporaryDirectory(prefix="echocmr-robustness-") as tmp:
            ctx = H.Ctx(Path(tmp))
            rows, wrong, peak = run_corpus(ctx, decoder)
            fuzz = run_fuzz(ctx, decoder, args.fuzz_seconds, args.seed)
    finally:
        decoder.close()
    print_table(rows, fuzz)
    for line in wrong:
        print("wrong outcome:", line)
    print()
    parent_deaths = print_syntax_table(run_syntax_fuzz(args.mutations, args.seed))
    crashes = sum(r["crashes"] for r in rows.values()) + fuzz["crashes"]
    print(f"max decoder worker peak RSS: {max(peak, fuzz['peak']) / 2**20:.0f} MiB; "
          f"wall time: {time.perf_counter() - started:.0f} s")
    print(f"parent deaths: {parent_deaths}")
    print(f"crashes: {crashes}")
    return 0 if crashes == 0 and parent_deaths == 0 and not wrong else 1


if __name__ == "__main__":
    sys.exit(main())
