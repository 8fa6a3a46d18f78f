"""``echocmr compare``: paired comparison of two models on the same held-out test patients.

``echocmr compare RUN_A RUN_B`` compares the fused (global) AUROC of every binary finding between
two results bundles (a run's results folder, or a model bundle with results/). Both must have been
evaluated on the same test patients (else it refuses). ``echocmr compare RUN --views`` compares
each single view with the fused prediction of one bundle.

ΔAUROC = A − B with a paired patient-level bootstrap percentile interval (the same resampled
patients for both models) and DeLong's test (studies as units). Takes seconds.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser("compare", help="paired ΔAUROC (patient bootstrap) and DeLong test of two models",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_a", type=Path, help="results folder (or bundle) of model A")
    p.add_argument("run_b", type=Path, nargs="?", help="results folder (or bundle) of model B")
    p.add_argument("--views", action="store_true", help="compare each view of RUN_A with its fused prediction")
    p.add_argument("--view", default="global", help="which view to compare between two runs (default global)")
    p.add_argument("--n-bootstrap", type=int, default=2000, help="patient bootstrap resamples (default 2000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="folder to write comparison.json/.csv into")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..analyse import AnalysisError
    from ..analyse.report import run_comparison

    if (args.run_b is None) != bool(args.views):
        raise AnalysisError("bad_arguments", "give RUN_A and RUN_B, or RUN_A with --views")
    result = run_comparison(args.run_a, args.run_b, view=args.view, n_bootstrap=args.n_bootstrap,
                            seed=args.seed, out=args.out)
    print(result["title"])
    print(result["table"])
    if args.out:
        print(f"written to {args.out}")
    return 0
