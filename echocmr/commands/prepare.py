"""``echocmr prepare``: pair, label, split and cache a cohort for training."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..config import LabelConfig, PrepareConfig


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "prepare",
        help="pair echo studies with CMR reports, label, split by patient, cache 112x112 clips",
        description="Build a prepared dataset (manifest.csv + clips/) from an echo index and a CMR report table.",
    )
    p.add_argument("--cohort", type=Path, help="folder with echo_index.csv and cmr_reports.csv (e.g. from `echocmr synth`)")
    p.add_argument("--echo-index", type=Path, help="echo index CSV (patient_id, study_id, study_date, file)")
    p.add_argument("--cmr-reports", type=Path, help="CMR report CSV (cmr_id, patient_id, cmr_date, wma_1..17, lge_1..17, t1_ms, t2_ms, ecv_pct)")
    p.add_argument("--out", type=Path, required=True, help="prepared dataset folder")
    p.add_argument("--window-days", type=int, default=30, help="pair an echo with the nearest CMR within this many days (default 30)")
    p.add_argument("--t1-ms", type=float, default=1060.0, help="native T1 abnormal above (ms)")
    p.add_argument("--t2-ms", type=float, default=58.0, help="T2 abnormal above (ms)")
    p.add_argument("--ecv-pct", type=float, default=33.0, help="ECV abnormal above (%%)")
    p.add_argument("--seed", type=int, default=0, help="patient-level split seed")
    p.add_argument("--split-method", choices=("stratified", "random"), default="stratified",
                   help="patient split: stratified by the findings' prevalence (default) or random")
    p.add_argument("--workers", type=int, default=0, help="ingestion processes (0: one per core)")
    p.add_argument("--cluster", default="", metavar="ADDRESS",
                   help="ingest on a running Dask scheduler (tcp://host:port; pip install 'echocmr[cluster]'); "
                        "paths must be visible on every worker")
    p.add_argument("--target-fps", type=float, default=0.0,
                   help="resample every clip to this frame rate (default 0: keep each file's own); "
                        "models trained on it resample uploads the same way")
    p.add_argument("--exact-decode", action="store_true",
                   help="decode JPEG frames at full resolution (default: libjpeg's reduced-scale decode where the "
                        "sector stays >= 112 px); the recipe of the shipped and published models")
    p.add_argument("--view-classifier", type=Path, help="checkpoint stem of the view classifier that assigns views")
    p.add_argument("--use-known-views", action="store_true",
                   help="synthetic cohort only: take views from ground_truth/clips.csv instead of the classifier")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import ConfigError
    from ..prepare import PrepareSources, prepare_dataset

    if args.cohort:
        sources = PrepareSources.from_cohort(
            args.cohort, known_views=args.cohort / "ground_truth" / "clips.csv", view_classifier=args.view_classifier)
    elif args.echo_index and args.cmr_reports:
        sources = PrepareSources(args.echo_index, args.cmr_reports, view_classifier=args.view_classifier)
    else:
        raise ConfigError("give --cohort DIR, or both --echo-index and --cmr-reports")
    config = PrepareConfig(
        labels=LabelConfig(pairing_window_days=args.window_days, t1_abnormal_ms=args.t1_ms,
                           t2_abnormal_ms=args.t2_ms, ecv_abnormal_pct=args.ecv_pct),
        seed=args.seed, use_known_views=args.use_known_views, workers=args.workers, target_fps=args.target_fps,
        split_method=args.split_method, jpeg_decode="exact" if args.exact_decode else "reduced",
    )
    manifest = prepare_dataset(sources, args.out, config, cluster=args.cluster)
    counts = manifest["status"].value_counts().to_dict()
    ok = manifest[manifest["status"] == "ok"]
    print(f"prepared {len(ok)} clips from {ok['study'].nunique()} studies of {ok['patient'].nunique()} patients; "
          f"files by status: {counts}")
    print(f"split (studies): {ok.drop_duplicates('study')['split'].value_counts().to_dict()}")
    return 0
