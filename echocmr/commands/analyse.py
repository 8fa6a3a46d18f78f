"""``echocmr analyse``: is the signal real?

  confounders     AUROC of each finding within strata (WMA-negative, LVEF ≥ 50 %, wall < 12 mm) and
                  the echo model's incremental value over LVEF + WMA (+ wall thickness): ΔAUROC with
                  a patient-bootstrap interval and a likelihood-ratio test. Seconds to a minute.
  learning-curve  train at fractions of the training patients, held-out AUROC with intervals vs n.
  power           cohorts with a planted tissue signal of known strength at several sizes: the
                  smallest signal detected (AUROC interval above 0.5) per size.

Each writes <name>.json (+ .csv) into --out, which the dashboard's Results page reads.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser("analyse", help="confounders, learning curve, detectable-signal power",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="analysis", metavar="ANALYSIS", required=True)
    c = sub.add_parser("confounders", help="is it just function? strata and incremental value over LVEF + WMA",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("--run", required=True, type=Path, help="results folder (or bundle) to analyse")
    c.add_argument("--data", type=Path, default=None,
                   help="prepared dataset the results were computed on (manifest with lvef_pct, wall_thickness_mm)")
    c.add_argument("--demo-cohort", default=None, metavar="N_PATIENTS,SEED",
                   help="instead of --data: the shipped demo cohort, rebuilt from its size and seed (e.g. 400,0)")
    c.add_argument("--n-bootstrap", type=int, default=500, help="patient bootstrap resamples (default 500)")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--out", type=Path, default=None, help="folder to write confounders.json into")
    c.set_defaults(func=run_confounders)


def run_confounders(args) -> int:
    from ..analyse import AnalysisError
    from ..analyse.report import format_confounders, run_confounders as run

    demo = None
    if args.demo_cohort:
        try:
            n, seed = (int(v) for v in args.demo_cohort.split(","))
        except ValueError:
            raise AnalysisError("bad_arguments", "--demo-cohort takes N_PATIENTS,SEED, e.g. 400,0") from None
        demo = (n, seed)
    record = run(args.run, args.data, demo, n_bootstrap=args.n_bootstrap, seed=args.seed, out=args.out)
    print(format_confounders(record))
    return 0
