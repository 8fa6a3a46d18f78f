"""Seconds to explain one clip's WMA output on 2 CPU cores (goal: a few seconds).

Integrated gradients (``echocmr.attribution``, default ``AttributionConfig``) on each model view's
example clip of the active bundle (``examples/<view>.npy``), after the model is loaded and one
warm-up run. Prints the median per view, the load average (other work on the machine slows it),
and last ``seconds: <median over views and repeats>``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from echocmr.attribution import AttributionConfig, explain_clip  # noqa: E402
from echocmr.bundle import active_bundle_dir, load_bundle  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=AttributionConfig().n_steps)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)  # the target machine: 2 cores
    bundle_dir = active_bundle_dir()
    bundle = load_bundle(str(bundle_dir))
    config = AttributionConfig(n_steps=args.steps)
    times = []
    for view, model in sorted(bundle.view_models.items()):
        example = bundle_dir / "examples" / f"{view}.npy"
        if not example.exists():
            continue
        frames = np.load(example, allow_pickle=False)
        explain_clip(model, frames, config=config)  # warm-up: first-call allocations
        runs = [explain_clip(model, frames, config=config).seconds for _ in range(max(1, args.repeats))]
        times += runs
        print(f"{view}: {statistics.median(runs):.2f} s ({', '.join(f'{t:.2f}' for t in runs)}), "
              f"{config.n_steps} steps, window of {model.sampling.n_frames} frames")
    if not times:
        print("the bundle has no example clips (examples/<view>.npy)", file=sys.stderr)
        return 1
    print(f"load average (1 min): {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"seconds: {statistics.median(times):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
