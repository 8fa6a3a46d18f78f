"""``echocmr synth``: generate a synthetic paired echo–CMR cohort."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from ..config import SynthConfig


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "synth",
        help="generate a synthetic paired echo-CMR cohort (DICOM + CSVs)",
        description="Write a synthetic cohort: echo DICOM files, echo_index.csv, cmr_reports.csv "
                    "and ground truth, in the layout of a hospital export (docs/ARCHITECTURE.md).",
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--patients", type=int, default=None, help="number of patients")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same cohort)")
    parser.add_argument("--tissue-signal", type=float, default=None,
                        help="0: T1/T2/ECV never touch the pixels; >0: myocardial texture shifts")
    parser.add_argument("--tissue-confounded", action="store_true",
                        help="T1/T2/ECV follow each patient's disease and scar (anatomy then predicts "
                             "them); by default they are independent of everything the echo shows")
    parser.add_argument("--small", action="store_true", help="a few small patients (tests, demos)")
    parser.add_argument("--echonet", action="store_true", help="also write the EchoNet-Dynamic layout")
    parser.add_argument("--full-studies", nargs="?", const="40-120", metavar="MIN-MAX",
                        help="write full-size studies of MIN-MAX files (default 40-120): several clips per "
                             "view, other views, colour and Doppler clips, stills")
    parser.add_argument("--workers", type=int, default=None, help="processes (0: one per core)")
    parser.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> SynthConfig:
    config = SynthConfig.small(seed=args.seed) if args.small else SynthConfig(seed=args.seed)
    changes = {}
    if args.patients is not None:
        changes["n_patients"] = args.patients
    if args.tissue_signal is not None:
        changes["tissue_signal"] = args.tissue_signal
    if args.tissue_confounded:
        changes["tissue_confounded"] = True
    if args.echonet:
        changes["echonet_layout"] = True
    if args.workers is not None:
        changes["workers"] = args.workers
    if args.full_studies:
        changes["full_study_files"] = _file_range(args.full_studies)
    return dataclasses.replace(config, **changes)


def _file_range(text: str) -> tuple[int, int]:
    from ..errors import ConfigError

    low, _, high = text.partition("-")
    try:
        bounds = int(low), int(high or low)
    except ValueError:
        raise ConfigError(f"--full-studies takes MIN-MAX (e.g. 40-120); got {text!r}") from None
    if not 20 <= bounds[0] <= bounds[1] <= 500:
        raise ConfigError("--full-studies needs 20 <= MIN <= MAX <= 500 files per study")
    return bounds


def run(args: argparse.Namespace) -> int:
    from ..synth import generate_cohort  # heavy imports only when the command runs

    summary = generate_cohort(config_from_args(args), args.out)
    print(json.dumps(summary, indent=2))
    return 0
