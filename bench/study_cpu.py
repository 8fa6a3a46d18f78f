"""Seconds for a full-size (60-file) study from files to fused prediction on the CPU, after the
model is loaded (goal: <= 10 s on 2 cores).

The study is synthetic (``echocmr synth --full-studies``: several clips per view, other views,
colour and Doppler clips, stills; 480 x 640 frames) and written once to a temporary folder; its
generation is not timed. Timed: reading the files, ingestion (decode, de-identify, resize),
view classification of every clip, the view models on the clips that feed them, fusion.
Per run it prints each stage's wall seconds and the CPU-seconds of ingestion (this process plus
the isolated decoder workers) and of prediction, with the load average: on a shared machine the
wall clock measures the other tenants too, the CPU-seconds much less so.
Last line: ``seconds: <median over runs>``.

    python bench/study_cpu.py [--files 60] [--runs 3] [--size 480x640]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from echocmr.bundle import active_bundle_dir, load_bundle
from echocmr.study_prediction import ingest_study, predict_study
from echocmr.synth.full_study import write_one_full_study


def cpu_seconds() -> float:
    """CPU time of this process and its live children (the isolated decoder worker): on a shared
    machine it shows how much of the wall time was this benchmark's own work."""
    import psutil

    me = psutil.Process()
    total = sum(me.cpu_times()[:2])
    for child in me.children(recursive=True):
        try:
            total += sum(child.cpu_times()[:2])
        except psutil.Error:
            pass
    return total


def one_run(files: list[Path], bundle) -> tuple[float, dict, object]:
    cpu = cpu_seconds()
    started = time.perf_counter()
    sources = [(f"file {k}", f.read_bytes()) for k, f in enumerate(files, start=1)]
    items = ingest_study(sources)
    ingested, ingest_cpu = time.perf_counter(), cpu_seconds()
    result = predict_study(items, bundle)
    total = time.perf_counter() - started
    return total, {"ingest": ingested - started, **result.timings, "cpu_ingest": ingest_cpu - cpu,
                   "cpu_models": cpu_seconds() - ingest_cpu}, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=60)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--size", default="480x640", help="frame rows x cols")
    args = parser.parse_args()
    torch.set_num_threads(2)  # the target machine: 2 cores
    rows, cols = map(int, args.size.split("x"))
    with tempfile.TemporaryDirectory(prefix="echocmr-study-bench-") as tmp:
        files = write_one_full_study(Path(tmp), args.files, native_size=(rows, cols))
        started = time.perf_counter()
        bundle = load_bundle(str(active_bundle_dir()))
        print(f"model load: {time.perf_counter() - started:.2f} s (not counted)")
        one_run(files[:3], bundle)  # warm-up: the decoder worker and first-call allocations
        times = []
        for _ in range(args.runs):
            load = os.getloadavg()[0]
            total, parts, result = one_run(files, bundle)
            times.append(total)
            print(f"run: {total:.2f} s (" + ", ".join(f"{k} {v:.2f}" for k, v in parts.items())
                  + f"); load average {load:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    fed = sum(1 for c in result.clips if c.used_for)
    print(f"files: {len(files)}; clips read: {len(result.clips)}; rejected: {len(result.rejected)}; "
          f"fed a view model: {fed} ({', '.join(f'{v} {len(n)}' for v, n in result.to_json()['views_fed'].items())})")
    print(f"seconds: {statistics.median(times):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
