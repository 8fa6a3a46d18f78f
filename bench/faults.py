"""Fault benchmark: a randomised kill -9 loop on a tiny training run, then the other faults.

1. Trains an uninterrupted reference (tiny compact model, CPU, one thread), then runs
   ``echocmr train`` and SIGKILLs it at a random moment of training, ``--resume``s, and again,
   ``--kills`` times (default 20); the last session finishes. After every kill the commit point
   (``A4C/last.state.pt``) must load and at most the epoch in progress may be lost; at the end
   metrics.jsonl must hold every epoch exactly once and the weights equal the reference's.
2. Runs the other fault tests of tests/test_faults.py (kills inside checkpoint writes, the Stop
   button, disk full, read-only folder, NaN, two runs at once, recycled pid, DDP rank killed
   under torchrun) and reports each as pass / fail (``--skip-others`` to leave them out).

Usage: ``python bench/faults.py [--kills 20] [--seed 0] [--skip-others]``. Last line: a summary.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import fault_helpers as fh  # noqa: E402
from prepared_factory import make_prepared  # noqa: E402


@dataclasses.dataclass
class LoopResult:
    stats: fh.KillStats
    epochs_once: bool
    weights_equal: bool
    seconds: float


def kill_loop(kills: int, seed: int, work: Path) -> LoopResult:
    import torch

    from echocmr.atomic import read_json_lines
    from echocmr.train import train_model

    torch.set_num_threads(1)  # like the children (OMP_NUM_THREADS=1): bit-identical results
    epochs = kills + 4  # a session gets through ~0.6 epoch before its kill
    data = make_prepared(work / "prepared")
    reference = train_model(fh.tiny_config(epochs), data, work / "reference")
    epoch_s = max(r["seconds"] for r in read_json_lines(reference / "metrics.jsonl"))
    started = time.monotonic()
    stats = fh.kill_loop(data, work, "killed", kills, epochs, max_delay=epoch_s + 0.3,
                         rng=random.Random(seed), timeout=300)
    run = work / "killed"
    ref_lines = [(r["epoch"], r["train_loss"], r["val_loss"]) for r in read_json_lines(reference / "metrics.jsonl")]
    run_lines = [(r["epoch"], r["train_loss"], r["val_loss"]) for r in read_json_lines(run / "metrics.jsonl")]
    once = fh.metric_epochs(run) == list(range(1, epochs + 1)) and run_lines == ref_lines
    unequal = [s for s in ("last", "best")
               if not fh.same_weights(run / "A4C" / f"{s}.safetensors", reference / "A4C" / f"{s}.safetensors")]
    if unequal:
        from echocmr.checkpoint import read_meta

        epochs_of = {s: (read_meta(run / "A4C" / s)["epoch"], read_meta(reference / "A4C" / s)["epoch"]) for s in unequal}
        print(f"differ from the uninterrupted run (epoch here, there): {epochs_of}; files in {work}")
    if fh.checkpoint_problems(run) or fh.temp_files(run):
        stats.corrupted.append(f"after the final resume: {fh.checkpoint_problems(run) + fh.temp_files(run)}")
    return LoopResult(stats, once, not unequal, time.monotonic() - started)


def other_faults(work: Path) -> dict[str, str]:
    """tests/test_faults.py without its kill loop (done above): test name -> pass/fail/xfail."""
    report = work / "junit.xml"
    cmd = [sys.executable, "-m", "pytest", str(REPO / "tests" / "test_faults.py"), "-q", "-p", "no:cacheprovider",
           "-k", "not random_kill9", f"--junitxml={report}"]
    subprocess.run(cmd, cwd=REPO, env=fh.child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = {}
    if not report.exists():
        return {"tests/test_faults.py": "fail (pytest did not run)"}
    for case in ET.parse(report).iter("testcase"):
        name = case.get("name", "?").removeprefix("test_").replace("_", " ")
        skipped = case.find("skipped")
        if case.find("failure") is not None or case.find("error") is not None:
            results[name] = "FAIL"
        elif skipped is not None:
            xfail = "xfail" in (skipped.get("type", "") + skipped.get("message", "")).lower()
            results[name] = "known issue (xfail)" if xfail else "skipped"
        else:
            results[name] = "pass"
    return results


def report(loop: LoopResult, others: dict[str, str] | None) -> bool:
    s = loop.stats
    lost_max = max(s.lost, default=0)
    print(f"faults injected (kill -9): {s.kills}")
    print(f"runs resumed: {s.resumes}")
    print(f"epochs lost per kill: max {lost_max}, mean {statistics.fmean(s.lost) if s.lost else 0:.2f} (must be <= 1)")
    print(f"checkpoints corrupted: {len(s.corrupted)} (must be 0){'  ' + '; '.join(s.corrupted) if s.corrupted else ''}")
    print(f"metrics.jsonl has every epoch exactly once, same losses as uninterrupted: {'yes' if loop.epochs_once else 'NO'}")
    print(f"final weights equal the uninterrupted run's: {'yes' if loop.weights_equal else 'NO'}")
    print(f"kill loop time: {loop.seconds:.0f} s")
    ok = s.kills > 0 and lost_max <= 1 and not s.corrupted and loop.epochs_once and loop.weights_equal
    failed = []
    if others is not None:
        print("other faults (tests/test_faults.py):")
        for name, result in others.items():
            print(f"  {name}: {result}")
        failed = [n for n, r in others.items() if r.startswith(("FAIL", "fail"))]
    ok = ok and not failed
    other_text = "" if others is None else f"; other fault checks {len(others) - len(failed)}/{len(others)} not failing"
    print(f"summary: {'PASS' if ok else 'FAIL'} - {s.kills} kills, {s.resumes} resumes, max {lost_max} epoch lost "
          f"per kill, {len(s.corrupted)} checkpoints corrupted{other_text}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-others", action="store_true")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (for a post-mortem)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="echocmr-faults-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        loop = kill_loop(args.kills, args.seed, work)
        others = None if args.skip_others else other_faults(work)
        return 0 if report(loop, others) else 1


if __name__ == "__main__":
    sys.exit(main())
