"""Seconds to explain one clip's WMA output on 2 CPU cores (goal: a few seconds).

``echocmr.attribution`` (``--method``; default ``AttributionConfig``) on each model view's
example clip of the active bundle (``examples/<view>.npy``), after the model is loaded and one
warm-up run. Prints per view the median wall seconds and CPU seconds (CPU-s / 2 is what an idle
2-core machine would take), the load average (other work on the machine slows the wall time),
and last ``seconds: <median wall seconds over views and repeats>``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from echocmr.attribution import explain_clip  # noqa: E402
from echocmr.bundle import active_bundle_dir, load_bundle  # noqa: E402
from echocmr.config import ATTRIBUTION_METHODS, AttributionConfig  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=AttributionConfig().n_steps, help="integrated gradients' nodes")
    parser.add_argument("--method", choices=ATTRIBUTION_METHODS, default=AttributionConfig().method)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)  # the target machine: 2 cores
    bundle_dir = active_bundle_dir()
    bundle = load_bundle(str(bundle_dir))
    config = AttributionConfig(method=args.method, n_steps=args.steps)
    times = []
    for view, model in sorted(bundle.view_models.items()):
        example = bundle_dir / "examples" / f"{view}.npy"
        if not example.exists():
            continue
        frames = np.load(example, allow_pickle=False)
        explain_clip(model, frames, config=config)  # warm-up: first-call allocations
        runs, cpu = [], []
        for _ in range(max(1, args.repeats)):
            before = time.process_time()
            runs.append(explain_clip(model, frames, config=config).seconds)
            cpu.append(time.process_time() - before)
        times += runs
        print(f"{view}: {statistics.median(runs):.2f} s wall ({', '.join(f'{t:.2f}' for t in runs)}), "
              f"{statistics.median(cpu):.2f} CPU-s over 2 threads, {config.description}, window of "
              f"{model.sampling.n_frames} frames")
    if not times:
        print("the bundle has no example clips (examples/<view>.npy)", file=sys.stderr)
        return 1
    print(f"load average (1 min): {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"seconds: {statistics.median(times):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
