"""Trust boundaries for files the project did not write itself: bundles, checkpoints, CSVs.

A model bundle or checkpoint may come from elsewhere (a colleague, a download). Everything it
names is checked before use: a path must resolve to a regular file inside the bundle's folder
(no ``../``, no absolute path, no symlink out, no ``/dev/zero``), its size is checked before it
is read (and the read itself is capped), and architecture numbers are bounded before any
tensor is allocated.

Output CSVs are opened in spreadsheets; a text cell starting with ``=``, ``+``, ``-``, ``@``,
tab or carriage return is a formula there (``=HYPERLINK(...)`` exfiltrates, DDE runs
commands). ``csv_text`` is the one writer every CSV goes through: such cells get a leading
apostrophe (the OWASP rule), numbers stay numbers.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import stat
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import CheckpointError

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
MAX_JSON_BYTES = 64 * 1024 * 1024
# Architecture numbers a checkpoint may declare (the largest shipped/trained model is far below).
ARCH_BOUNDS = {"width": (1, 256), "n_frames": (1, 256), "period": (1, 16), "map_outputs": (0, 64)}
MAX_OUTPUTS = 64


# ---------------------------------------------------------------- CSV output

def neutralise_cell(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula gets a leading apostrophe."""
    if not isinstance(value, str) or not value.startswith(FORMULA_STARTS):
        return value
    try:
        if math.isfinite(float(value)):  # "-1.5" is a number, not a formula
            return value
    except ValueError:
        pass
    return "'" + value


def neutralised(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells (and column names) are neutralised."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            out[column] = out[column].map(neutralise_cell)
    out.columns = [neutralise_cell(str(c)) if isinstance(c, str) else c for c in out.columns]
    return out


def csv_text(frame: pd.DataFrame, **kwargs) -> str:
    """``frame.to_csv`` (index off unless asked) with every text cell neutralised."""
    kwargs.setdefault("index", False)
    return neutralised(frame).to_csv(**kwargs)


def csv_rows_text(columns: list[str], rows: list[dict]) -> str:
    """CSV text of dict rows (``csv.DictWriter`` order), neutralised like ``csv_text``."""
    import csv

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: neutralise_cell(v) for k, v in row.items()})
    return buf.getvalue()


# ---------------------------------------------------------------- paths a bundle names

def _refuse(code: str, message: str) -> CheckpointError:
    return CheckpointError(message, code)


def contained(root: Path, name: Any, what: str) -> Path:
    """``root / name`` resolved, refused unless ``name`` is a relative path staying inside
    ``root`` (symlinks resolved). Messages name the part, never the value."""
    if not isinstance(name, str) or not name or "\x00" in name or len(name) > 255:
        raise _refuse("bad_path", f"{what}: the bundle names it with an invalid path")
    if os.path.isabs(name) or name.startswith(("~", "\\")):
        raise _refuse("path_escapes", f"{what}: the bundle names an absolute path")
    base = Path(root).resolve()
    target = (base / name).resolve()
    if target != base and base not in target.parents:
        raise _refuse("path_escapes", f"{what}: the path leaves the bundle folder")
    return target


def contained_file(root: Path, name: Any, what: str, max_bytes: int) -> Path:
    """``contained`` and a regular file of at most ``max_bytes``."""
    path = contained(root, name, what)
    check_regular(path, what, max_bytes)
    return path


def check_regular(path: Path, what: str, max_bytes: int) -> int:
    """Size of ``path`` after checking it is a regular file no larger than ``max_bytes``."""
    try:
        info = os.stat(path)
    except OSError:
        raise _refuse("missing", f"{what} is missing") from None
    if not stat.S_ISREG(info.st_mode):  # /dev/zero, a FIFO or a folder would read forever/fail
        raise _refuse("not_regular_file", f"{what} is not a regular file")
    if info.st_size > max_bytes:
        raise _refuse("too_large", f"{what} is larger than {max_bytes // 2**20} MiB")
    return info.st_size


def read_bounded_bytes(path: Path, what: str, max_bytes: int) -> bytes:
    """The file's bytes, checked regular and small enough first; the read itself is capped."""
    check_regular(path, what, max_bytes)
    with open(path, "rb") as fh:
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:  # grew after the check
        raise _refuse("too_large", f"{what} is larger than {max_bytes // 2**20} MiB")
    return data


def read_json_file(path: Path, what: str, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """JSON from a regular file of bounded size; errors name only the part."""
    data = read_bounded_bytes(path, what, max_bytes)
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise _refuse("bad_json", f"{what} is not valid JSON ({exc.__class__.__name__})") from None


# ---------------------------------------------------------------- architecture numbers

def check_architecture(model: Any, n_outputs: int) -> None:
    """Bound a checkpoint's architecture numbers before any model is built from them."""
    if not isinstance(model, dict):
        raise _refuse("bad_model_config", "checkpoint model config is not an object")
    for key, (low, high) in ARCH_BOUNDS.items():
        value = model.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise _refuse("bad_model_config", f"checkpoint model {key} must be an integer in {low}…{high}")
    if not 1 <= n_outputs <= MAX_OUTPUTS:
        raise _refuse("bad_outputs", f"a checkpoint may have 1…{MAX_OUTPUTS} outputs")


# ---------------------------------------------------------------- text shown on pages

_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/])(?:/[\w.@+~-]+)+/?")


def redact_paths(text: str) -> str:
    """Absolute paths in log text (server folders, command lines) cut to their last part:
    pages show what happened, never where the server keeps things."""
    return _ABSOLUTE_PATH.sub(lambda m: "…/" + m.group(0).rstrip("/").rsplit("/", 1)[-1], text or "")
