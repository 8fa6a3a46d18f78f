"""``echocmr index ARCHIVE… --out echo_index.csv``: index a PACS export from DICOM headers only."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

HELP = """\
Scan folders, DICOMDIR files and zips of a PACS export and write echo_index.csv (one row per
multi-frame ultrasound cine) for `echocmr prepare`. Only headers are read (never pixel data),
in parallel; an interrupted run resumes from OUT.partial.jsonl. Skipped files are counted by
reason (not_dicom, not_ultrasound, single_frame, unreadable, duplicate_sop_instance, dicomdir).

The index keeps PATIENT IDS (needed to pair studies with CMR reports): it belongs on the
hospital side, next to the export. Everything `prepare` writes from it is pseudonymous."""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("index", help="index a PACS export (folders, DICOMDIR, zips) into echo_index.csv",
                              description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("archives", nargs="+", type=Path, metavar="ARCHIVE",
                   help="export folder, DICOMDIR file or zip (repeatable)")
    p.add_argument("--out", type=Path, required=True, help="the CSV to write (e.g. echo_index.csv)")
    p.add_argument("--workers", type=int, default=0, help="processes (0: one per core)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..archive_index import build_index, process_mapper

    workers = args.workers or os.cpu_count() or 1
    with tqdm(desc="index", unit="file") as bar:
        summary = build_index(args.archives, args.out, process_mapper(workers), progress=bar.update)
    print(json.dumps({"rows": summary.rows, "files_seen": summary.files_seen,
                      "resumed_from": summary.resumed, "skipped": summary.skipped}, indent=2))
    return 0
