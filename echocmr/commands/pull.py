"""``echocmr pull --dicomweb URL (--patient|--accession|--study|--since [--until]) --out ARCHIVE``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_pacs_arguments(p: argparse.ArgumentParser, required: bool = True) -> None:
    """The connection flags ``pull`` and ``predict --dicomweb`` share (secrets from the environment)."""
    p.add_argument("--dicomweb", metavar="URL", required=required,
                   help="DICOMweb root of the PACS, e.g. https://pacs.example.org/dicom-web")
    p.add_argument("--auth", choices=("none", "basic", "bearer"), default="none",
                   help="authentication: basic reads ECHOCMR_PACS_PASSWORD, bearer ECHOCMR_PACS_TOKEN "
                        "from the environment (never from the command line)")
    p.add_argument("--user", default="", help="username for --auth basic")
    p.add_argument("--ca-bundle", default="", help="CA certificate file for the PACS's TLS certificate")
    p.add_argument("--insecure", action="store_true", help="do not verify the TLS certificate (testing only)")


def pacs_config(args: argparse.Namespace):
    from ..pacs import PacsConfig

    return PacsConfig.from_cli(args.dicomweb, args.auth, args.user, args.insecure, args.ca_bundle)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "pull", help="retrieve the ultrasound instances of matching studies from a PACS (DICOMweb)",
        description="Search a PACS over QIDO-RS and retrieve (WADO-RS) the ultrasound instances of the matching "
                    "studies into ARCHIVE/<study>/<series>/<instance>.dcm; other modalities are skipped. "
                    "Resumable: a rerun fetches only what is missing. Then run `echocmr index ARCHIVE`.")
    add_pacs_arguments(p)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--patient", help="patient id")
    which.add_argument("--accession", help="accession number")
    which.add_argument("--study", help="study instance UID")
    which.add_argument("--since", help="first study date (YYYY-MM-DD)")
    p.add_argument("--until", help="last study date (YYYY-MM-DD), with --since")
    p.add_argument("--out", type=Path, required=True, help="archive folder")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..pacs import StudyQuery, dicom_date
    from ..pull import pull

    if args.until and not args.since:
        from ..errors import ConfigError
        raise ConfigError("--until needs --since")
    query = StudyQuery(args.patient or "", args.accession or "", args.study or "",
                       dicom_date(args.since or ""), dicom_date(args.until or ""))
    bar = tqdm(desc="pull", unit="instance")

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(1)

    try:
        summary = pull(pacs_config(args), query, args.out, progress)
    finally:
        bar.close()
    print(json.dumps({"studies": summary.studies, "ultrasound_instances": summary.instances,
                      "fetched": summary.fetched, "already_there": summary.already_there}, indent=2))
    return 0
