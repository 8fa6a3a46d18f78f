"""Does the WMA attribution point at the akinetic segment? Synthetic clips with one planted.

For ``--clips`` cases (views A4C, A2C, PLAX in turn) a synthetic patient's heart gets exactly one
akinetic AHA segment among those the clip shows; the clip is rendered at the demo cohort's size,
written as a JPEG DICOM and ingested like any upload, and the view model's WMA output is explained
by ``--method`` (``echocmr.attribution_check``). Per clip:

    ratio = (share of the myocardium's positive attribution inside the akinetic segment)
            / (the segment's share of the myocardium's area)           1 = chance

and, with ``--control``, the same clip with every segment normal scored on the same segment.
Prints per-case rows, the share of positive attribution on the myocardium against its share of
the fan, and last the mean ratio with a 95 % percentile bootstrap interval over clips:
``ratio: M [LO, HI]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from echocmr.attribution_check import bootstrap_mean, localisation_case  # noqa: E402
from echocmr.bundle import active_bundle_dir  # noqa: E402
from echocmr.config import ATTRIBUTION_METHODS, AttributionConfig, SynthConfig  # noqa: E402
from echocmr.model_runner import load_view_model  # noqa: E402
from echocmr.synth import generate_patients  # noqa: E402

VIEWS = ("A4C", "A2C", "PLAX")


def run(bundle: Path, n_clips: int, seed: int, control: bool, config: AttributionConfig) -> list:
    import json

    stems = json.loads((bundle / "bundle.json").read_text())["views"]
    models = {v: load_view_model(bundle / stems[v]) for v in VIEWS if v in stems}
    patients = generate_patients(SynthConfig(n_patients=n_clips, seed=seed))
    rng = np.random.default_rng(seed)
    cases = []
    for i, patient in enumerate(patients):
        view = list(models)[i % len(models)]
        started = time.perf_counter()
        case = localisation_case(models[view], rng, patient.heart, view, None, config, control)
        cases.append(case)
        print(f"{i + 1:3d} {view:<5} segment {case.segment:2d}  ratio {case.ratio:5.2f}  control {case.control_ratio:5.2f}  "
              f"P(WMA) {case.probability:.2f} (normal {case.control_probability:.2f})  "
              f"on myocardium {case.on_myocardium:.0%} of the attribution, {case.myocardium_area:.0%} of the fan  "
              f"{time.perf_counter() - started:.1f} s", flush=True)
    return cases


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", type=Path, help="bundle folder (default: the active bundle)")
    parser.add_argument("--control", action="store_true", help="also score each clip's all-normal twin")
    parser.add_argument("--steps", type=int, default=AttributionConfig().n_steps, help="integrated gradients' nodes")
    parser.add_argument("--method", choices=ATTRIBUTION_METHODS, default=AttributionConfig().method)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    bundle = args.model or active_bundle_dir()
    cases = run(bundle, args.clips, args.seed, args.control, AttributionConfig(method=args.method, n_steps=args.steps))
    ratios = np.array([c.ratio for c in cases])
    concentration = np.array([c.on_myocardium / c.myocardium_area for c in cases])
    print(f"bundle: {bundle.name}; {args.method}; synthetic clips, one akinetic segment each; "
          "95 % percentile bootstrap over clips")
    print(f"clips scored: {int(np.isfinite(ratios).sum())} of {len(ratios)}")
    m, lo, hi = bootstrap_mean(concentration)
    print(f"myocardium concentration (share of positive attribution on the myocardium / its share of the fan): "
          f"{m:.2f} [{lo:.2f}, {hi:.2f}]")
    if args.control:
        controls = np.array([c.control_ratio for c in cases])
        m, lo, hi = bootstrap_mean(controls)
        print(f"control ratio (same clips, all segments normal): {m:.2f} [{lo:.2f}, {hi:.2f}]")
        m, lo, hi = bootstrap_mean(ratios - controls)
        print(f"paired difference, akinetic minus control: {m:+.2f} [{lo:+.2f}, {hi:+.2f}]")
    m, lo, hi = bootstrap_mean(ratios)
    print(f"ratio: {m:.2f} [{lo:.2f}, {hi:.2f}]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
