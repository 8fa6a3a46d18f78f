"""``echocmr fit-fusion --model BUNDLE --data PREPARED``: fit a bundle's view fusion on your labelled data.

Runs the bundle's per-view models on the validation split of PREPARED, fits the study-level
fusion there (logistic regression per view subset, mean of the views where too few studies) and
writes it into the bundle. Then `echocmr evaluate --model BUNDLE --data PREPARED` gives Table 2
on the test split. For the published weights, which came with no fusion.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser("fit-fusion", help="fit a bundle's view fusion on the validation split of your data",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, type=Path, metavar="BUNDLE", help="model bundle folder")
    p.add_argument("--data", required=True, type=Path, metavar="PREPARED", help="prepared dataset (manifest.csv)")
    p.add_argument("--windows", type=int, default=0, metavar="N",
                   help="published-weights models: average N windows per clip (default 0: the exact published clip)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..bundle_eval import fit_bundle_fusion

    summary = fit_bundle_fusion(args.model, args.data, windows=max(0, args.windows))
    print(f"fusion fitted on {summary['n_studies']} validation studies")
    for target, subsets in summary["methods"].items():
        print(f"  {target}: " + ", ".join(f"{key} {method}" for key, method in subsets.items()))
    print(f"written into {args.model}")
    return 0
