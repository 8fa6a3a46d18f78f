"""Seconds per 3-clip study on the CPU, after the model is loaded (goal: ≤ 5 s on 2 cores).

Uses the shipped bundle's example study. Ingestion is timed too: it is part of what a user
waits for after uploading. Last line: ``seconds: <median seconds per study>``.
"""

from __future__ import annotations

import statistics
import sys
import time

import torch

from echocmr.bundle import active_bundle_dir, load_bundle
from echocmr.study_prediction import ingest_study, predict_study

REPEATS = 5


def main() -> int:
    torch.set_num_threads(2)  # the target machine: 2 cores
    bundle_dir = active_bundle_dir()
    files = sorted((bundle_dir / "examples" / "study1").glob("*.dcm"))[:3]
    if len(files) < 3:
        print(f"the bundle has {len(files)} example files; 3 are needed", file=sys.stderr)
        return 1
    started = time.perf_counter()
    bundle = load_bundle(str(bundle_dir))
    print(f"model load: {time.perf_counter() - started:.2f} s")
    sources = [(f.name, f.read_bytes()) for f in files]
    predict_study(ingest_study(sources), bundle)  # warm-up: first-call allocations
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        result = predict_study(ingest_study(sources), bundle)
        times.append(time.perf_counter() - started)
    print(f"clips per study: {len(result.clips)}; runs: {', '.join(f'{t:.2f}' for t in times)} s")
    print(f"seconds: {statistics.median(times):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
