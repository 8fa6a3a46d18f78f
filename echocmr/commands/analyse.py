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

from ..analyse import LEARNING_CURVE_TIME, POWER_TIME


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
    register_curves(sub)


def run_confounders(args) -> int:
    from ..analyse import AnalysisError
    from ..analyse.report import format_confounders
    from ..analyse.report import run_confounders as run

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


CELL_TIME = "Time on the cpu-demo preset, one view, 2 CPU cores shared with another analysis"


def _floats(text: str) -> list[float]:
    from ..analyse import AnalysisError

    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise AnalysisError("bad_arguments", f"expected comma-separated numbers, got {text!r}") from None


def _curve_args(p) -> None:
    p.add_argument("--out", required=True, type=Path, help="analysis folder (cells/ and the result JSON)")
    p.add_argument("--work", type=Path, default=None, help="intermediate data (default OUT/work; deleted per cell)")
    p.add_argument("--keep-work", action="store_true", help="keep each cell's cohort, clips and run")
    p.add_argument("--preset", default="cpu-demo", help="training preset (default cpu-demo)")
    p.add_argument("--views", default="A4C", help="views to train, comma-separated (default A4C)")
    p.add_argument("--epochs", type=int, default=0, help="epochs per cell (default: the preset's)")
    p.add_argument("--max-train-clips", type=int, default=0, help="cap on training clips per view (0: all)")
    p.add_argument("--n-bootstrap", type=int, default=1000, help="patient bootstrap resamples (default 1000)")
    p.add_argument("--seed", type=int, default=0)


def _curve_config(args, **extra):
    from ..analyse.curves import CurveConfig
    from ..config import PRESETS
    from ..errors import ConfigError

    if args.preset not in PRESETS:
        raise ConfigError(f"unknown preset {args.preset!r}; known: {', '.join(PRESETS)}")
    return CurveConfig(preset=args.preset, views=tuple(v.strip() for v in args.views.split(",")),
                       epochs=args.epochs, max_train_clips=args.max_train_clips, n_bootstrap=args.n_bootstrap,
                       seed=args.seed, keep_work=args.keep_work, **extra)


def register_curves(sub) -> None:
    lc = sub.add_parser("learning-curve", help="held-out AUROC vs number of training patients",
                        description=("Train at fractions of the training patients (nested subsets) and "
                                     "evaluate each on the same test split. Resumes: finished cells are "
                                     f"skipped. {CELL_TIME}: {LEARNING_CURVE_TIME}."))
    lc.add_argument("--data", required=True, type=Path, help="prepared dataset folder")
    lc.add_argument("--fractions", default="0.25,0.5,1", help="fractions of training patients (default 0.25,0.5,1)")
    _curve_args(lc)
    lc.set_defaults(func=run_learning_curve)
    pw = sub.add_parser("power", help="smallest planted tissue signal detected per cohort size",
                        description=("Generate cohorts with a planted tissue signal of known strength, train "
                                     "and evaluate each; detected = the AUROC interval lies above 0.5. "
                                     f"Resumes: finished cells are skipped. {CELL_TIME}: {POWER_TIME}."))
    pw.add_argument("--signal", default="0,0.25,0.5,1", help="tissue_signal values (default 0,0.25,0.5,1)")
    pw.add_argument("--patients", default="100,200,400", help="cohort sizes (default 100,200,400)")
    pw.add_argument("--target", default="t1_abnormal", choices=("t1_abnormal", "t2_abnormal", "ecv_abnormal"))
    pw.add_argument("--native-size", default="240,320", help="rendered frame rows,cols (default 240,320)")
    pw.add_argument("--workers", type=int, default=0, help="synth/prepare processes (0: all cores)")
    _curve_args(pw)
    pw.set_defaults(func=run_power)


def run_learning_curve(args) -> int:
    from ..analyse.report import run_learning_curve as run

    record = run(args.data, args.out, _floats(args.fractions), _curve_config(args), args.work)
    print(record["title"])
    for r in record["rows"]:
        print(f"  {r['n_train_patients']:>5} patients  {r['target']:<13} AUROC {r['auroc']}  "
              f"CI {r['ci_low']}–{r['ci_high']}")
    return 0


def run_power(args) -> int:
    from ..analyse.report import run_power as run

    rows, cols = (int(v) for v in _floats(args.native_size))
    config = _curve_config(args, native_size=(rows, cols), workers=args.workers)
    sizes = [int(v) for v in _floats(args.patients)]
    record = run(args.out, _floats(args.signal), sizes, config, args.target, args.work)
    print(record["title"])
    for n, s in record["smallest_detected"].items():
        print(f"  {n:>5} patients: smallest detected signal {'none' if s is None else s}")
    return 0
