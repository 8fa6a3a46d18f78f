"""``echocmr pull``: copy the ultrasound instances of matching studies from a PACS into an archive.

Layout: ``ARCHIVE/<study UID>/<series UID>/<SOP instance UID>.dcm`` (UIDs only, no names), which
``echocmr index`` and ``prepare`` read. Every instance is written atomically, so an interrupted
pull leaves only whole files, and a rerun fetches only the instances not yet there. The search runs
before anything is written: a server that is down or refuses the credentials leaves no folder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .atomic import atomic_write_bytes
from .pacs import InstanceRef, PacsConfig, PacsError, StudyQuery, connect, retrieve_bytes, search_studies, ultrasound_instances

UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")


@dataclass(frozen=True)
class PullSummary:
    studies: int
    instances: int
    fetched: int
    already_there: int


def instance_path(archive: Path, ref: InstanceRef) -> Path:
    """Where an instance goes; UIDs from the server are checked so none can leave the archive."""
    for uid in (ref.study_uid, ref.series_uid, ref.sop_uid):
        if not (0 < len(uid) <= 64 and UID.match(uid)):
            raise PacsError("pacs_bad_response", "the PACS returned a malformed UID")
    return archive / ref.study_uid / ref.series_uid / f"{ref.sop_uid}.dcm"


def plan(config: PacsConfig, query: StudyQuery) -> tuple[object, int, list[InstanceRef]]:
    client = connect(config)
    studies = search_studies(client, query)
    refs = [ref for study in studies for ref in ultrasound_instances(client, study.study_uid)]
    return client, len(studies), refs


def pull(config: PacsConfig, query: StudyQuery, archive: str | Path,
         progress: Callable[[int, int], None] | None = None) -> PullSummary:
    """Fetch what is missing; ``progress(done, total)`` after each instance."""
    archive = Path(archive)
    client, n_studies, refs = plan(config, query)
    fetched = already = 0
    for done, ref in enumerate(refs, start=1):
        target = instance_path(archive, ref)
        if target.exists():
            already += 1
        else:
            atomic_write_bytes(target, retrieve_bytes(client, ref))
            fetched += 1
        if progress:
            progress(done, len(refs))
    return PullSummary(n_studies, len(refs), fetched, already)
