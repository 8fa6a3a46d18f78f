"""Resource quotas for a shared install: training runs, syntheses, disk, uploads.

Defaults suit one workstation or a small shared server; each can be changed by an environment
variable (``ECHOCMR_MAX_TRAINING_RUNS`` …, see ``Quotas.from_env``). Every refusal is a
``QuotaExceeded`` with a stable code and a plain message that names the limit.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from .errors import EchoCMRError

MB = 1024 * 1024  # binary megabytes, as Streamlit counts its upload limit
# Measured: one synthetic patient (cohort DICOMs + prepared clips) takes about 43 MB.
SYNTH_BYTES_PER_PATIENT = 43 * MB


class QuotaExceeded(EchoCMRError):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Quotas:
    max_training_runs: int = 1
    max_syntheses: int = 1
    disk_margin_bytes: int = 5 * 1024 * MB
    session_upload_bytes: int = 1024 * MB  # all files one browser session holds at once
    total_upload_bytes: int = 2048 * MB  # all sessions together
    files_per_study: int = 64
    upload_session_ttl_s: float = 3600.0  # a session's claim lapses after this long unused

    @staticmethod
    def from_env() -> "Quotas":
        """``ECHOCMR_<FIELD>`` (upper case) overrides each field, e.g. ECHOCMR_MAX_TRAINING_RUNS=2."""
        values: dict[str, Any] = {}
        for f in fields(Quotas):
            raw = os.environ.get(f"ECHOCMR_{f.name.upper()}")
            if raw:
                try:
                    values[f.name] = int(float(raw)) if f.type in ("int", int) else float(raw)
                except ValueError:
                    raise EchoCMRError(f"ECHOCMR_{f.name.upper()} must be a number") from None
        return Quotas(**values)


def mb(n: int) -> str:
    return f"{n / MB:,.0f} MB"


def check_training_slot(active_runs: int, quotas: Quotas) -> None:
    if active_runs >= quotas.max_training_runs:
        raise QuotaExceeded("too_many_runs", f"{active_runs} training run(s) are already going; this server allows "
                                             f"{quotas.max_training_runs} at a time. Stop one or wait for it to finish.")


def free_bytes(path: Path) -> int:
    """Free disk space where ``path`` is (or would be created)."""
    path = Path(path)
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


def synthesis_bytes(patients: int) -> int:
    return int(patients) * SYNTH_BYTES_PER_PATIENT


def check_synthesis(running: int, patients: int, free: int, quotas: Quotas) -> None:
    """One synthesis at a time (by default), and only if it fits on disk with a margin."""
    if running >= quotas.max_syntheses:
        raise QuotaExceeded("synthesis_running", f"a synthetic data set is already being made; this server allows "
                                                 f"{quotas.max_syntheses} at a time")
    need = synthesis_bytes(patients)
    room = free - quotas.disk_margin_bytes
    if need > room:
        raise QuotaExceeded("disk_full", f"{patients} synthetic patients need about {mb(need)}, but only "
                                         f"{mb(max(room, 0))} can be used (free space minus a {mb(quotas.disk_margin_bytes)} margin)")


class UploadLedger:
    """Bytes each browser session holds in uploads, against per-session and total caps."""

    def __init__(self, quotas: Quotas):
        self.quotas = quotas
        self._lock = threading.Lock()
        self._claims: dict[str, tuple[int, float]] = {}  # session → (bytes, last used)

    def claim(self, session: str, sizes: list[int]) -> None:
        """This session now holds files of ``sizes`` (replacing its earlier claim), or refuse."""
        q = self.quotas
        total = sum(int(s) for s in sizes)
        if len(sizes) > q.files_per_study:
            raise QuotaExceeded("too_many_files", f"{len(sizes)} files; one study may have at most {q.files_per_study}")
        if total > q.session_upload_bytes:
            raise QuotaExceeded("session_upload_cap", f"these files add up to {mb(total)}; one session may upload "
                                                      f"at most {mb(q.session_upload_bytes)} at a time")
        now = time.monotonic()
        with self._lock:
            self._claims = {s: c for s, c in self._claims.items() if now - c[1] < q.upload_session_ttl_s}
            others = sum(b for s, (b, _) in self._claims.items() if s != session)
            if others + total > q.total_upload_bytes:
                raise QuotaExceeded("server_upload_cap", "the server is holding too many uploads from other users "
                                                         "right now; try again in a few minutes or upload fewer files")
            self._claims[session] = (total, now)

    def release(self, session: str) -> None:
        with self._lock:
            self._claims.pop(session, None)

    def held(self) -> int:
        with self._lock:
            return sum(b for b, _ in self._claims.values())


def upload_limits_text(quotas: Quotas, max_file_bytes: int) -> str:
    """What the uploader tells the user: the limits really enforced."""
    return (f"Limits: {mb(max_file_bytes)} per file, {quotas.files_per_study} files and "
            f"{mb(quotas.session_upload_bytes)} in all per study.")
