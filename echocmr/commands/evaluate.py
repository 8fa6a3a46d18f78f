"""``echocmr evaluate``: held-out evaluation of a training run → results bundle + fusion.json.

For each model view, load ``RUN/<view>/best`` and predict the validation and test clips of the
prepared dataset; fit view fusion on validation; evaluate the test split with bootstrap CIs;
write the results bundle (docs/ARCHITECTURE.md) and ``fusion.json`` into ``--out``; print Table 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="evaluate a training run on the held-out test split (bootstrap CIs, Table 2)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", type=Path, help="training run folder (RUN/<view>/best.*)")
    source.add_argument("--model", type=Path, metavar="BUNDLE",
                        help="evaluate a model bundle as it is (its own fusion; e.g. imported published weights)")
    p.add_argument("--data", required=True, type=Path, help="prepared dataset folder (manifest.csv)")
    p.add_argument("--out", type=Path, help="results folder to write (required with --run; default BUNDLE/results)")
    p.add_argument("--n-bootstrap", type=int, default=None, help="bootstrap resamples (default 10000)")
    p.add_argument("--resample", choices=("patient", "study"), default=None,
                   help="bootstrap unit: patient (cluster bootstrap, default) or study")
    p.add_argument("--ci-level", type=float, default=None, help="confidence level (default 0.95)")
    p.add_argument("--seed", type=int, default=None, help="bootstrap seed (default 0)")
    p.add_argument("--ci-method", choices=("percentile", "bca"), default=None,
                   help="bootstrap interval: percentile (default) or bca (bias-corrected and accelerated)")
    p.add_argument("--windows", "--tta-clips", dest="tta_clips", type=_windows, default=None,
                   help="test-time windows per video averaged: a number (default 4) or 'all' (every start)")
    p.add_argument("--unit", choices=("study", "patient"), default=None,
                   help="unit of analysis: study (default) or patient (one aggregated prediction each)")
    p.set_defaults(func=run)


def _windows(text: str) -> int | str:
    if text == "all":
        return "all"
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--windows takes a number or 'all'; got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"--windows must be at least 1; got {value}")
    return value


def config_from_args(args):
    from ..evaluate import eval_config

    return eval_config(n_bootstrap=args.n_bootstrap, resample_unit=args.resample,
                        ci_level=args.ci_level, seed=args.seed, tta_clips=args.tta_clips,
                        ci_method=args.ci_method, unit=args.unit)


def run(args) -> int:
    from .. import evaluate as E
    from ..bootstrap_ci import describe_intervals

    config = config_from_args(args)
    if args.model is not None:
        from ..bundle_eval import evaluate_bundle

        bundle, args.out = evaluate_bundle(args.model, args.data, args.out, config)
    elif args.out is None:
        raise E.EvaluationError("--out is required with --run")
    else:
        bundle, _ = E.run_evaluation(args.run, args.data, args.out, config)
    s = bundle.summary
    print(E.format_table2(
        bundle.metrics,
        f"Table 2 — held-out test set, {s['n_test_studies']} stud{'y' if s['n_test_studies'] == 1 else 'ies'} "
        f"({describe_intervals(s)}; unit of analysis: {s.get('unit', 'study')})",
    ))
    print(f"results written to {args.out}")
    return 0
