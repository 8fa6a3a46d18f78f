"""Does the WMA attribution point at the akinetic segment? Synthetic clips with one planted.

For ``--clips`` cases (views A4C, A2C, PLAX in turn) a synthetic patient's heart gets exactly one
akinetic AHA segment among those the clip shows; the clip is rendered at the demo cohort's size,
written as a JPEG DICOM and ingested like any upload, and the view model's WMA output is explained
by each of ``--methods`` (``echocmr.attribution_check``). Per clip:

    ratio = (share of the myocardium's positive attribution inside the akinetic segment)
            / (the segment's share of the myocardium's area)           1 = chance

and, with ``--control``, the same clip with every segment normal scored on the same segment.
The territory ratio is the same over the LV's cavity and wall, each pixel given to its nearest
segment. ``--positive-control`` first fine-tunes a copy of each view model on clips with one
akinetic segment or none (``echocmr.attribution_control``, ~9 min per view on 2 cores): a model
that does respond to a single still segment, to ask whether the *method* can point at one.
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

from echocmr.attribution_check import bootstrap_mean, localisation_cases  # noqa: E402
from echocmr.attribution_control import PositiveControlConfig, train_positive_control  # noqa: E402
from echocmr.bundle import active_bundle_dir, load_bundle  # noqa: E402
from echocmr.config import ATTRIBUTION_METHODS, AttributionConfig  # noqa: E402

VIEWS = ("A4C", "A2C", "PLAX")


def run(models: dict, n_clips: int, seed: int, control: bool, config: AttributionConfig) -> list:
    cases, started = [], time.perf_counter()
    for i, case in enumerate(localisation_cases(models, n_clips, seed, control, config)):
        cases.append(case)
        print(f"{i + 1:3d} {case.view:<5} segment {case.segment:2d}  ratio {case.ratio:5.2f} (control {case.control_ratio:5.2f})  "
              f"territory {case.territory_ratio:5.2f} (control {case.control_territory_ratio:5.2f})  "
              f"P(WMA) {case.probability:.2f} (normal {case.control_probability:.2f})  "
              f"P(segment) {case.segment_probability:.2f} (normal {case.control_segment_probability:.2f})  "
              f"on myocardium {case.on_myocardium:.0%} of the attribution, {case.myocardium_area:.0%} of the fan  "
              f"{time.perf_counter() - started:.1f} s", flush=True)
        started = time.perf_counter()
    return cases


def report(name: str, values: np.ndarray) -> None:
    m, lo, hi = bootstrap_mean(values)
    print(f"{name}: {m:.2f} [{lo:.2f}, {hi:.2f}]")


def summarise(cases: list, control: bool) -> None:
    """The figures, the headline last: ``ratio: M [LO, HI]``."""
    def field(name: str) -> np.ndarray:
        return np.array([getattr(c, name) for c in cases], dtype=np.float64)

    print(f"clips scored: {int(np.isfinite(field('ratio')).sum())} of {len(cases)}")
    report("myocardium concentration (share of positive attribution on the myocardium / its share of the fan)",
           field("on_myocardium") / field("myocardium_area"))
    if control:
        report("P(WMA), akinetic minus normal twin", field("probability") - field("control_probability"))
        report("P(WMA in the segment) from its own output, akinetic minus normal twin",
               field("segment_probability") - field("control_segment_probability"))
        report("the view's other segments' outputs (mean P), akinetic minus normal twin",
               field("others_probability") - field("control_others_probability"))
        report("territory ratio (LV cavity + wall, nearest segment), control",
               field("control_territory_ratio"))
        report("territory ratio, paired difference akinetic minus control",
               field("territory_ratio") - field("control_territory_ratio"))
        report("control ratio (same clips, all segments normal)", field("control_ratio"))
        report("paired difference, akinetic minus control", field("ratio") - field("control_ratio"))
    report("territory ratio", field("territory_ratio"))
    report("ratio", field("ratio"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", type=Path, help="bundle folder (default: the active bundle)")
    parser.add_argument("--views", default=",".join(VIEWS), help="comma-separated model views to draw clips of")
    parser.add_argument("--control", action="store_true", help="also score each clip's all-normal twin")
    parser.add_argument("--steps", type=int, default=AttributionConfig().n_steps, help="integrated gradients' nodes")
    parser.add_argument("--methods", default=AttributionConfig().method,
                        help=f"comma-separated, scored in turn on the same models: {', '.join(ATTRIBUTION_METHODS)}")
    parser.add_argument("--positive-control", action="store_true",
                        help="first fine-tune each view model on single-akinetic-segment clips "
                             "(echocmr.attribution_control) and score that copy")
    parser.add_argument("--control-clips", type=int, default=PositiveControlConfig().n_clips)
    parser.add_argument("--control-epochs", type=int, default=PositiveControlConfig().epochs)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    for method in methods:
        AttributionConfig(method=method)  # refuses an unknown one before any work
    bundle = args.model or active_bundle_dir()
    views = [v.strip() for v in args.views.split(",") if v.strip()]
    loaded = load_bundle(str(bundle)).view_models
    models = {v: loaded[v] for v in views if v in loaded}
    if args.positive_control:
        models = {v: train_positive_control(m, PositiveControlConfig(view=v, n_clips=args.control_clips,
                                                                     epochs=args.control_epochs))
                  for v, m in models.items()}
    for method in methods:  # the same clips for each (the seed fixes them)
        cases = run(models, args.clips, args.seed, args.control, AttributionConfig(method=method, n_steps=args.steps))
        print(f"bundle: {bundle.name}{' (positive control: fine-tuned copies)' if args.positive_control else ''}; "
              f"{method}; views {', '.join(models)}; synthetic clips, one akinetic segment each; "
              "95 % percentile bootstrap over clips")
        summarise(cases, args.control)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
