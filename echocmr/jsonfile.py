"""JSON files: the project's one reader, and strict writing of numeric payloads.

Every JSON file the project reads (prepare.json, config.json, status files, results bundles)
goes through :func:`read_json`, so a damaged file is reported the same way everywhere: a
:class:`ConfigError` naming the file (never its contents), or the caller's ``default``.
"""

from __future__ import annotations

import json
import math
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_write_text
from .errors import ConfigError

_MISSING = object()


def now_iso() -> str:
    """The current time as ISO 8601 in UTC (``2026-01-31T12:00:00+00:00``); strings sort by time."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def read_json(path: str | os.PathLike, default: Any = _MISSING) -> Any:
    """The parsed JSON in ``path``.

    Without ``default``, a missing or damaged file raises :class:`ConfigError`; with it, either
    returns ``default`` (for status files that may be half-written by a process that died).
    """
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        if default is not _MISSING:
            return default
        reason = "missing" if isinstance(exc, FileNotFoundError) else "unreadable or damaged"
        raise ConfigError(f"{path.name} in {path.parent.name!r} is {reason}") from exc


def read_json_object(path: str | os.PathLike) -> dict:
    """A JSON object from ``path``; {} when the file is missing, damaged or not an object."""
    data = read_json(path, default={})
    return data if isinstance(data, dict) else {}


def jsonable(obj: Any) -> Any:
    """Numpy → Python, non-finite floats → None, recursively (strict JSON a browser can parse)."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    return obj


def nan_for_null(obj: Any) -> Any:
    """Inverse of :func:`jsonable` for numeric payloads: None → NaN, recursively."""
    if isinstance(obj, dict):
        return {k: nan_for_null(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [nan_for_null(v) for v in obj]
    return math.nan if obj is None else obj


def write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> Path:
    """Atomically write ``obj`` as strict JSON (NaN/inf → null)."""
    text = json.dumps(jsonable(obj), indent=indent, allow_nan=False)
    return atomic_write_text(path, text + "\n")
