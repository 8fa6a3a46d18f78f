"""Atomic file writes: temp file in the same folder, fsync, rename.

A reader (or a crash) sees either the old file or the new one, never a half-written one.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _name_error(exc: OSError, path: Path) -> None:
    """A failed write() (disk full, file too large) carries no file name; say which file it was."""
    if exc.filename is None:
        exc.filename = str(path)


def atomic_write(path: str | os.PathLike, write: Callable[[io.BufferedWriter], None]) -> Path:
    """Call ``write(fileobj)`` on a temp file beside ``path`` and rename it into place.

    On any failure (disk full, read-only folder, a signal) the temp file is removed and ``path``
    is left as it was; an OSError names ``path``.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        exc.filename = str(path)  # not the random temp name: the file the caller asked for
        raise
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError):
            _name_error(exc, path)
        raise
    _fsync_dir(path.parent)
    return path


def promote(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Rename a file written earlier (atomically) into its final place, and make the rename durable."""
    src, dst = Path(src), Path(dst)
    try:
        os.replace(src, dst)
    except OSError as exc:
        _name_error(exc, dst)
        raise
    _fsync_dir(dst.parent)
    return dst


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    def write(handle: io.BufferedWriter) -> None:
        handle.write(data)

    return atomic_write(path, write)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, allow_nan=True) + "\n")


def atomic_save_npy(path: str | os.PathLike, array: np.ndarray) -> Path:
    return atomic_write(path, lambda f: np.save(f, array, allow_pickle=False))


def append_line(path: str | os.PathLike, line: str) -> None:
    """Append one line and fsync: a JSON-lines log survives a kill -9 up to its last full line.

    A torn last line (a crash or a full disk in the middle of an earlier append) is cut off
    first; otherwise this line would be glued onto it and be unreadable too.
    """
    path = Path(path)
    data = (line.rstrip("\n") + "\n").encode("utf-8")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab+") as handle:
            _drop_torn_tail(handle)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        _name_error(exc, path)
        raise


def _drop_torn_tail(handle: io.BufferedRandom) -> None:
    """Truncate an append-mode file after its last newline (no-op when it ends with one)."""
    size = handle.seek(0, os.SEEK_END)
    if size == 0:
        return
    handle.seek(size - 1)
    if handle.read(1) == b"\n":
        return
    chunk = 1 << 16
    end = size
    while end > 0:  # search backwards so a long log is not read whole
        start = max(0, end - chunk)
        handle.seek(start)
        cut = handle.read(end - start).rfind(b"\n")
        if cut >= 0:
            handle.truncate(start + cut + 1)
            return
        end = start
    handle.truncate(0)


def read_json_lines(path: str | os.PathLike) -> list[dict]:
    """Read a JSON-lines file, ignoring a torn last line left by a crash."""
    path = Path(path)
    if not path.exists():
        return []
    records = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        if not raw.strip():
            continue
        try:
            records.append(json.loads(raw))
        except json.JSONDecodeError:
            continue
    return records
