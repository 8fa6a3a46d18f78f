"""The files of one study decoded side by side in the shared pool of isolated decoders.

``ingest_study`` used to hand the pool one file at a time, so a study used one decoder while the
other (``ECHOCMR_DECODERS``, default 2) sat idle and each file's serial steps (header parse, the
item-count scan, sector fit, burned-text mask, the transfer over the pipe) left a core unused.
Here up to the pool's size of files are in flight at once, each still decoded in a capped,
time-limited worker process (``ingest.isolated``): the isolation is unchanged, and the pool's
round-robin still shares its workers fairly with other sessions (each waiting file is one ticket
of this session, served in turn with theirs).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..config import IngestLimits
from .decoder_pool import pool_for
from .isolated import read_study_isolated


def read_files_isolated(sources: Sequence[bytes | Path], *, salt: bytes, session: str = "default",
                        limits: IngestLimits = IngestLimits()) -> list[list]:
    """``read_study_isolated`` of each source (named "file N", N from 1), in the sources' order:
    one list of StudyItems per source. At most the pool's size of sources are read at once
    (each holds its bytes in memory until its worker has decoded it)."""
    def read(numbered: tuple[int, bytes | Path]) -> list:
        number, data = numbered
        return read_study_isolated(data, name=f"file {number}", limits=limits, salt=salt, session=session)

    parallel = min(pool_for(limits).size, len(sources))
    if parallel <= 1:
        return [read(pair) for pair in enumerate(sources, start=1)]
    with ThreadPoolExecutor(parallel, thread_name_prefix="echocmr-study-ingest") as threads:
        return list(threads.map(read, enumerate(sources, start=1)))
