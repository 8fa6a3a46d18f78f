"""Decoding in a separate, resource-limited worker process (the upload path).

The decoders (libjpeg-turbo, OpenJPEG, GDCM, FFmpeg, pydicom) are large code bases fed bytes
from strangers. A persistent worker process runs them with an address-space cap (RLIMIT_AS),
no core dumps (a core file would hold the pixels) and a private temporary folder; the parent
waits at most ``worker_timeout_s`` per file. A segfault, an abort, a runaway allocation or a
hang then becomes an ``InputError`` (``decoder_crashed`` / ``decoder_memory`` /
``decoder_timeout``) for that one file: the caller's process stays up, the dead worker's
temporary files are removed and the next file gets a fresh worker.

One worker is reused for every file (starting one costs ~1 s of imports, forking one from the
pre-loaded forkserver a few ms). Calls to one ``IsolatedDecoder`` are serialised by its lock;
``ingest.decoder_pool`` runs several of them and shares them fairly between sessions.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import io
import multiprocessing
import os
import pickle
import shutil
import signal
import sys
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any

from ..clip import Clip
from ..config import IngestLimits
from ..errors import InputError
from . import gate

# Test hook: sha256 hex of an input → a fault the worker injects before decoding it
# ("abort", "segfault", "hang", "memory", "raise"). Empty in production; tests monkeypatch it
# to prove that a dying decoder fails its file only.
FAULTS: dict[str, str] = {}
_CONTEXT = multiprocessing.get_context("forkserver")
_MAIN_LOCK = threading.Lock()


@contextlib.contextmanager
def _main_module_hidden():
    """Start a worker without it re-running the parent's ``__main__``.

    multiprocessing re-imports the parent's main script in every spawned or forkserver child; in
    the dashboard that script is a Streamlit page (in tests, AppTest's), which must never run in
    a decoder process. Hiding its file for the instant of ``start()`` skips that step.
    """
    main = sys.modules.get("__main__")
    with _MAIN_LOCK:
        path = main.__dict__.pop("__file__", None) if main is not None else None
        try:
            yield
        finally:
            if path is not None:
                main.__dict__["__file__"] = path
_LIMIT_MESSAGES = {
    "decoder_crashed": "the decoder crashed on this file",
    "decoder_memory": "decoding this file needed more memory than the worker is allowed",
    "decoder_timeout": "decoding this file took longer than the time limit",
}


@dataclass
class Decoded:
    """One file's outcome; ``peak_rss_bytes`` is the worker's peak resident memory while it
    decoded this file (None when the worker died before it could say)."""

    clip: Clip | None
    error: InputError | None
    peak_rss_bytes: int | None
    seconds: float

    def clip_or_raise(self) -> Clip:
        """The clip, or the file's ``InputError``."""
        if self.error is not None:
            raise self.error
        if self.clip is None:  # a reply always holds one or the other
            raise InputError("decoder_failed", "the decoder returned neither a clip nor an error")
        return self.clip


# ---------------------------------------------------------------- worker side


def _confine(limits: IngestLimits, tmp: str) -> None:
    """Runs first in the worker: caps, no core files, temporary files in the parent's folder."""
    import resource

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    # C decoders (FFmpeg, GDCM, OpenJPEG) print to the inherited stdout/stderr whatever they
    # like, metadata included: stdout goes nowhere, stderr into a memory-only file that
    # _decoder_complaints reads after each file (libjpeg reports corrupt entropy data only there)
    # and empties; it never reaches a terminal, log or disk.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    messages = os.memfd_create("decoder-messages") if hasattr(os, "memfd_create") else os.open(os.devnull, os.O_WRONLY)
    os.dup2(messages, 2)
    os.close(messages)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if limits.worker_memory_bytes > 0:
        cap = int(limits.worker_memory_bytes)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    tempfile.tempdir = tmp


def _reset_peak() -> None:
    """Reset the kernel's peak-RSS mark (VmHWM) so each file's peak is its own (Linux ≥ 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def _peak_rss() -> int:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # lifetime peak, KiB on Linux


def _inject(fault: str, limits: IngestLimits) -> None:
    if fault == "abort":
        os.abort()
    if fault == "segfault":
        import ctypes

        ctypes.string_at(0)
    if fault == "hang":
        time.sleep(1e6)
    if fault == "memory":  # more than the cap allows: proves RLIMIT_AS is in force
        bytearray(2 * max(limits.worker_memory_bytes, 1 << 30))
    if fault == "raise":
        raise KeyError("unexpected")


# libjpeg(-turbo) warnings that mean a frame's compressed data is damaged: the decoder still
# returns an image (grey or smeared where the data was bad), so the file is refused instead.
CORRUPT_MARKS = (b"Corrupt JPEG data", b"Premature end of JPEG file", b"Invalid JPEG file structure")


def _decoder_complaints() -> bytes:
    """What the C decoders wrote to stderr since the last call (then emptied); b"" when none."""
    try:
        size = os.lseek(2, 0, os.SEEK_END)
        if size <= 0:
            return b""
        text = os.pread(2, min(size, 1 << 16), 0)
        os.ftruncate(2, 0)
        os.lseek(2, 0, os.SEEK_SET)
        return text
    except OSError:  # stderr is not a seekable file (no memfd): nothing to inspect
        return b""


def _decode_one(request: tuple, limits: IngestLimits) -> tuple:
    """('ok', clip, peak) or ('error', code, message, peak); never raises."""
    import cv2

    from .pipeline import clip_from_bytes

    data, salt, target_fps, study_key, fault = request
    _reset_peak()
    reply: tuple[Any, ...]
    try:
        if fault:
            _inject(fault, limits)
        _decoder_complaints()  # start from an empty message file
        with gate.quiet_pydicom():
            clip = clip_from_bytes(data, limits=limits, salt=salt, target_fps=target_fps, study_key=study_key)
        if any(mark in _decoder_complaints() for mark in CORRUPT_MARKS):
            raise InputError("corrupt_frame", "the JPEG decoder reported corrupt compressed data in a frame")
        reply = ("ok", clip)
    except InputError as exc:
        reply = ("error", exc.code, exc.args[0])
    except MemoryError:
        reply = ("error", "decoder_memory", _LIMIT_MESSAGES["decoder_memory"])
    except cv2.error as exc:  # OpenCV reports failed allocations as cv2.error, not MemoryError
        memory = "memory" in str(exc).lower() or "alloc" in str(exc).lower()
        code = "decoder_memory" if memory else "decoder_failed"
        reply = ("error", code, _LIMIT_MESSAGES.get(code, "the image decoder failed on this file"))
    except Exception as exc:  # a decoder bug: report its type only (its text may quote content)
        reply = ("error", "decoder_failed", f"the decoder failed unexpectedly ({type(exc).__name__})")
    return reply + (_peak_rss(),)


def _serve(conn, limits: IngestLimits, tmp: str) -> None:
    """The worker's loop: one request in, one reply out, until the parent closes the pipe."""
    _confine(limits, tmp)
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        except MemoryError:  # the input alone does not fit under the cap; the rest of it is
            conn.send(("error", "decoder_memory", _LIMIT_MESSAGES["decoder_memory"], _peak_rss()))
            return  # still in the pipe, so this worker cannot go on: the parent starts another
        reply = _decode_one(request, limits)
        request = None  # noqa: F841 — drop the input bytes before waiting for the next file
        try:
            conn.send(reply)
        except MemoryError:
            conn.send(("error", "decoder_memory", _LIMIT_MESSAGES["decoder_memory"], _peak_rss()))


# ---------------------------------------------------------------- parent side


class IsolatedDecoder:
    """A persistent decoding worker for one ``IngestLimits``; replaced whenever it dies."""

    def __init__(self, limits: IngestLimits = IngestLimits()):
        self.limits = limits
        self._lock = threading.Lock()
        self._proc: multiprocessing.process.BaseProcess | None = None
        self._conn: Any = None  # the parent end of the worker's Pipe while it runs
        self.tmp: str | None = None  # the current worker's private temporary folder
        _LIVE.add(self)  # stopped at interpreter exit, whoever created it

    def _start(self) -> None:
        # Forked workers start with the decoders already imported; not __main__ (a dashboard's
        # or test runner's main module has no business in a decoder process). Only takes effect
        # if the forkserver is not running yet.
        _CONTEXT.set_forkserver_preload(["echocmr.ingest.pipeline", "cv2", "pydicom"])
        self.tmp = tempfile.mkdtemp(prefix="echocmr-worker-")
        parent, child = _CONTEXT.Pipe()
        self._proc = _CONTEXT.Process(target=_serve, args=(child, self.limits, self.tmp), daemon=True)
        with _main_module_hidden():
            self._proc.start()
        child.close()  # only the worker holds its end: its death reads as EOF here
        self._conn = parent

    def _stop(self) -> int | None:
        """Kill the worker (if alive), reap it, remove its temporary files; its exit code."""
        proc, conn, tmp = self._proc, self._conn, self.tmp
        self._proc = self._conn = self.tmp = None
        if conn is not None:
            conn.close()
        code = None
        if proc is not None:
            if proc.is_alive():
                proc.kill()
            proc.join(10)
            code = proc.exitcode
        if tmp:  # a killed worker cannot clean up after itself; the files may hold pixels
            shutil.rmtree(tmp, ignore_errors=True)
        return code

    def _last_words(self) -> tuple | None:
        """A reply the worker sent before dying while the parent was still sending, if any."""
        return _last_words_of(self._conn, self.limits)

    def close(self) -> None:
        with self._lock:
            self._stop()

    def decode(self, data: bytes, *, salt: bytes = b"", target_fps: float | None = None,
               study_key: str | None = None, fault: str | None = None) -> Decoded:
        """Decode one file's bytes (already through ``gate.read_bounded``) in the worker."""
        if fault is None and FAULTS:
            fault = FAULTS.get(hashlib.sha256(data).hexdigest())
        started = time.perf_counter()
        with self._lock:
            reply = self._exchange((bytes(data), salt, target_fps, study_key, fault))
        seconds = time.perf_counter() - started
        if reply[0] == "ok":
            return Decoded(reply[1], None, reply[2], seconds)
        return Decoded(None, InputError(reply[1], reply[2]), reply[3], seconds)

    def _exchange(self, request: tuple) -> tuple:
        if self._proc is None or not self._proc.is_alive():
            self._stop()
            self._start()
        proc, conn = self._proc, self._conn
        if proc is None or conn is None:  # _start sets both, or raises
            raise RuntimeError("the decoder worker did not start")
        try:
            conn.send(request)
            if not conn.poll(self.limits.worker_timeout_s):
                peak = _proc_peak(proc.pid) if proc.pid is not None else None
                self._stop()
                return ("error", "decoder_timeout", _LIMIT_MESSAGES["decoder_timeout"], peak)
            return _safe_loads(conn.recv_bytes(_reply_cap(self.limits)))
        except (EOFError, OSError, pickle.UnpicklingError):  # the worker died mid-file (BrokenPipeError is an OSError)
            last = self._last_words()
            code = self._stop()
            if last is not None:  # it said why before going (an input too big to receive)
                return last
            # SIGKILL we did not send: the kernel's out-of-memory killer.
            kind = "decoder_memory" if code == -signal.SIGKILL else "decoder_crashed"
            return ("error", kind, _LIMIT_MESSAGES[kind], None)


class _ReplyUnpickler(pickle.Unpickler):
    """Replies are unpickled with an allow-list: a worker subverted by a decoder exploit must
    not be able to run code in the parent through a crafted pickle."""

    ALLOWED = {("echocmr.clip", "Clip"), ("echocmr.clip", "SectorGeometry"), ("numpy", "ndarray"),
               ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "scalar"),
               ("numpy._core.numeric", "_frombuffer"), ("numpy.core.numeric", "_frombuffer")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError("the decoder worker sent an unexpected object")
        return super().find_class(module, name)


def _safe_loads(blob: bytes) -> tuple:
    reply = _ReplyUnpickler(io.BytesIO(blob)).load()
    if not (isinstance(reply, tuple) and reply and reply[0] in ("ok", "error")):
        raise pickle.UnpicklingError("the decoder worker sent a malformed reply")
    return reply


def _reply_cap(limits: IngestLimits) -> int:
    """Largest reply a healthy worker sends: the clip's frames, its preview and some metadata."""
    return limits.max_frames * limits.clip_size ** 2 + limits.max_rows * limits.max_cols * 3 + (1 << 20)


def _last_words_of(conn, limits: IngestLimits) -> tuple | None:
    try:
        if conn is not None and conn.poll(0):
            return _safe_loads(conn.recv_bytes(_reply_cap(limits)))
    except (EOFError, OSError, pickle.UnpicklingError):
        pass
    return None


def _proc_peak(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


_LIVE: "weakref.WeakSet[IsolatedDecoder]" = weakref.WeakSet()
_DECODERS: dict[IngestLimits, IsolatedDecoder] = {}
_DECODERS_LOCK = threading.Lock()


def decoder_for(limits: IngestLimits) -> IsolatedDecoder:
    """The shared worker for ``limits`` (started on first use, kept for the next upload)."""
    with _DECODERS_LOCK:
        if limits not in _DECODERS:
            _DECODERS[limits] = IsolatedDecoder(limits)
        return _DECODERS[limits]


def shutdown() -> None:
    """Stop every worker and remove its temporary folder (also registered at interpreter exit)."""
    with _DECODERS_LOCK:
        for decoder in list(_LIVE):
            decoder.close()
        _DECODERS.clear()


def read_clip_isolated(source, *, limits: IngestLimits = IngestLimits(), salt: bytes = b"",
                       target_fps: float | None = None, session: str = "default") -> Clip:
    """``read_clip`` with the decoding done in a pooled isolated worker; raises ``InputError``."""
    from .decoder_pool import pool_for

    data = gate.read_bounded(source, limits)  # size checks before any byte crosses the pipe
    return pool_for(limits).decode(data, session=session, salt=salt, target_fps=target_fps).clip_or_raise()


def read_study_isolated(source, *, name: str = "upload", limits: IngestLimits = IngestLimits(),
                        salt: bytes = b"", session: str = "default") -> list:
    """``read_study`` with each file (or zip member) decoded in a pooled isolated worker;
    ``session`` names the caller for the pool's fair turn order (one per dashboard session)."""
    from .decoder_pool import pool_for
    from .pipeline import read_study_with

    pool = pool_for(limits)

    def decode(blob: bytes, *, limits: IngestLimits, salt: bytes, study_key: str | None = None) -> Clip:
        return pool.decode(blob, session=session, salt=salt, study_key=study_key).clip_or_raise()

    return read_study_with(decode, source, name, limits, salt)


atexit.register(shutdown)
