"""Benchmark: does ``prepare`` cost the same per file at 1x, 4x and 16x a base cohort?

A base synthetic cohort is generated once; the k-x cohort holds k copies of it under new patient,
study and CMR IDs (files hard-linked under new paths, so each is a distinct file to ingest; equal
pixels make the copies duplicate clips in the manifest, which costs the same bookkeeping). Each
size runs ``prepare`` in a fresh process (so its peak memory is its own), timed end to end:
reading the index, pairing, ingesting every file, views, labels, split, manifest.
``echocmr index`` is not in this branch; when it is, it belongs in the same loop.

Prints files/s, wall and CPU ms per file and peak resident memory per size, then
``per_file_cost_ratio: <r>`` last: CPU time per file at the largest size over that at the
smallest (goal <= 1.1: linear, no quadratic bookkeeping). CPU time, not wall time, because on a
shared machine the wall clock measures the other tenants; run it with ``--workers 1`` (default).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402


def replicate(base: Path, out: Path, copies: int) -> Path:
    """``copies`` renamed copies of the cohort ``base`` in ``out`` (the layout prepare reads)."""
    index = pd.read_csv(base / "echo_index.csv", dtype=str)
    reports = pd.read_csv(base / "cmr_reports.csv", dtype={"patient_id": str, "cmr_id": str})
    known = pd.read_csv(base / "ground_truth" / "clips.csv", dtype=str)[["file", "view"]]
    frames: dict[str, list[pd.DataFrame]] = {"index": [], "reports": [], "known": []}
    for r in range(copies):
        suffix, prefix = f"R{r}", f"copy{r}/"
        frames["index"].append(index.assign(patient_id=index["patient_id"] + suffix,
                                            study_id=index["study_id"] + suffix, file=prefix + index["file"]))
        frames["reports"].append(reports.assign(patient_id=reports["patient_id"] + suffix,
                                                cmr_id=reports["cmr_id"] + suffix))
        frames["known"].append(known.assign(file=prefix + known["file"]))
        for name in index["file"]:
            target = out / prefix / name
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(base / name, target)
    (out / "ground_truth").mkdir(parents=True, exist_ok=True)
    pd.concat(frames["index"]).to_csv(out / "echo_index.csv", index=False)
    pd.concat(frames["reports"]).to_csv(out / "cmr_reports.csv", index=False)
    pd.concat(frames["known"]).to_csv(out / "ground_truth" / "clips.csv", index=False)
    return out


def child(cohort: Path, out: Path, workers: int) -> None:
    """One prepare in this process; prints a JSON line (seconds, files, peak memory)."""
    from echocmr.config import PrepareConfig
    from echocmr.prepare import PrepareSources, prepare_dataset

    os.environ["ECHOCMR_HOME"] = str(out.parent / "home")
    sources = PrepareSources.from_cohort(cohort, known_views=cohort / "ground_truth" / "clips.csv")
    t0, cpu0 = time.perf_counter(), _cpu_seconds()
    manifest = prepare_dataset(sources, out, PrepareConfig(use_known_views=True, workers=workers), salt=b"bench")
    seconds, cpu = time.perf_counter() - t0, _cpu_seconds() - cpu0
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    child_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "files": len(manifest), "peak_mib": peak_kib / 1024,
                      "worker_peak_mib": child_kib / 1024}))


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children: the cost, whatever else the machine runs."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=2, help="patients in the base cohort")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--workers", type=int, default=1, help="ingest processes (1: in-process, cleanest)")
    parser.add_argument("--child", nargs=3, metavar=("COHORT", "OUT", "WORKERS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(Path(args.child[0]), Path(args.child[1]), int(args.child[2]))
        return 0
    from echocmr.config import SynthConfig
    from echocmr.synth import generate_cohort

    print(f"machine: {os.cpu_count()} cores (shared: other load depresses the figures; the ratio holds)")
    print(f"{'size':>5s} {'files':>6s} {'seconds':>8s} {'files/s':>8s} {'ms/file':>8s} {'cpu ms/file':>11s} {'peak MiB':>9s} {'worker MiB':>10s}")
    per_file = {}
    with tempfile.TemporaryDirectory(prefix="echocmr-scale-") as d:
        base = Path(d) / "base"
        generate_cohort(dataclasses.replace(SynthConfig.small(seed=1), n_patients=args.patients), base)
        for k in args.sizes:
            cohort = replicate(base, Path(d) / f"x{k}", k)
            run = subprocess.run([sys.executable, __file__, "--child", str(cohort), str(Path(d) / f"prep{k}"),
                                  str(args.workers)], check=True, capture_output=True, text=True)
            result = json.loads(run.stdout.strip().splitlines()[-1])
            per_file[k] = result["cpu_seconds"] / result["files"]
            print(f"{k:4d}x {result['files']:6d} {result['seconds']:8.2f} {result['files'] / result['seconds']:8.1f} "
                  f"{1000 * result['seconds'] / result['files']:8.1f} {1000 * per_file[k]:11.1f} "
                  f"{result['peak_mib']:9.0f} {result['worker_peak_mib']:10.0f}")
    print(f"per_file_cost_ratio: {per_file[max(per_file)] / per_file[min(per_file)]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
