"""A bounded pool of isolated decoders, shared fairly between sessions.

One decoder behind one lock let a single hostile upload (up to ``worker_timeout_s`` per file,
any number of files) hold up every other dashboard user. Here ``size`` isolated workers
(``ingest.isolated.IsolatedDecoder``) serve all callers, and a free worker goes to the *session*
whose turn it is (round robin over sessions with waiting files), not to whoever queued first:
a session with 50 queued files gets one worker per turn, the same as a session with one.

The CLI (``preprocess``, ``prepare``) uses the same pool with its own session name, so a
decoder that aborts (GDCM throws an uncaught C++ exception on some corrupt JPEG-lossless
frames), hangs or exhausts its memory cap fails that one file with a stable code.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict, deque

from ..config import IngestLimits
from .isolated import Decoded, IsolatedDecoder

DEFAULT_POOL_SIZE = 2  # decoders per IngestLimits unless ECHOCMR_DECODERS says otherwise
MAX_POOL_SIZE = 32


def configured_pool_size() -> int:
    """``ECHOCMR_DECODERS`` (1…32), default 2: each worker may use ``worker_memory_bytes``."""
    raw = os.environ.get("ECHOCMR_DECODERS", "")
    try:
        size = int(raw) if raw.strip() else DEFAULT_POOL_SIZE
    except ValueError:
        size = DEFAULT_POOL_SIZE
    return max(1, min(MAX_POOL_SIZE, size))


class DecoderPool:
    """``size`` isolated decoders; ``decode(..., session=)`` waits for a worker, fairly."""

    def __init__(self, limits: IngestLimits = IngestLimits(), size: int = DEFAULT_POOL_SIZE):
        self.limits = limits
        self.size = max(1, int(size))
        self._free = [IsolatedDecoder(limits) for _ in range(self.size)]
        self._cond = threading.Condition()
        # session → its waiting tickets (oldest first); the order of keys is the turn order.
        self._waiting: "OrderedDict[str, deque[object]]" = OrderedDict()

    def _head(self) -> object | None:
        for tickets in self._waiting.values():
            if tickets:
                return tickets[0]
        return None

    def _acquire(self, session: str) -> IsolatedDecoder:
        ticket = object()
        with self._cond:
            self._waiting.setdefault(session, deque()).append(ticket)
            while not (self._free and self._head() is ticket):
                self._cond.wait()
            tickets = self._waiting.pop(session)
            tickets.popleft()
            if tickets:  # back of the queue: every other waiting session goes first
                self._waiting[session] = tickets
            decoder = self._free.pop()
            self._cond.notify_all()  # another worker may still be free for the next session
            return decoder

    def _release(self, decoder: IsolatedDecoder) -> None:
        with self._cond:
            self._free.append(decoder)
            self._cond.notify_all()

    def decode(self, data: bytes, *, session: str = "default", salt: bytes = b"",
               target_fps: float | None = None, study_key: str | None = None) -> Decoded:
        """Decode one file's bytes (already through ``gate.read_bounded``) in a pooled worker."""
        decoder = self._acquire(session)
        try:
            return decoder.decode(data, salt=salt, target_fps=target_fps, study_key=study_key)
        finally:
            self._release(decoder)

    def close(self) -> None:
        with self._cond:
            for decoder in self._free:
                decoder.close()


    def grow(self, size: int) -> None:
        """At least ``size`` decoders from now on (never shrinks: busy ones cannot be taken)."""
        with self._cond:
            while self.size < min(MAX_POOL_SIZE, size):
                self._free.append(IsolatedDecoder(self.limits))
                self.size += 1
            self._cond.notify_all()


_POOLS: dict[IngestLimits, DecoderPool] = {}
_POOLS_LOCK = threading.Lock()


def pool_for(limits: IngestLimits, size: int | None = None) -> DecoderPool:
    """The shared pool for ``limits`` (workers start on first use and are kept); ``size``
    grows it (``prepare --workers N``), default ``configured_pool_size()`` on creation."""
    with _POOLS_LOCK:
        if limits not in _POOLS:
            _POOLS[limits] = DecoderPool(limits, configured_pool_size() if size is None else size)
        elif size is not None:
            _POOLS[limits].grow(size)
        return _POOLS[limits]
