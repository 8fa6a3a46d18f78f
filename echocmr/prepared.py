"""The prepared format, read in one place: ``manifest.csv``, ``prepare.json`` and ``clips/``.

``echocmr prepare`` writes a prepared folder (layout in docs/ARCHITECTURE.md); everything that
reads one — training, evaluation, inference, the app — goes through this module, so missing
values, ids and frame rates are interpreted one way. It imports nothing else of the project
but errors, targets and the JSON reader: a leaf every layer may use.

Missing values: ids (clip, patient, study, view, split, status) are strings and an empty cell
is missing (NaN), never the text ``"NA"``; target columns are floats with NaN for missing.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import ConfigError, InputError
from .jsonfile import read_json
from .targets import GLOBAL_TARGETS, SEGMENT_OUTPUTS, TARGETS

MANIFEST_FILE = "manifest.csv"
PREPARE_JSON = "prepare.json"
CLIPS_DIR = "clips"
CLIP_SIZE = 112
MANIFEST_BASE = ["clip_id", "patient", "study", "view", "view_source", "view_confidence", "split",
                 "n_frames", "fps", "echo_cmr_days", "status", "reason"]
ID_COLUMNS = ("clip_id", "patient", "study", "view", "view_source", "split", "status")
REQUIRED_COLUMNS = ("clip_id", "view", "split", "status")


def read_manifest(prepared_dir: str | os.PathLike) -> pd.DataFrame:
    """manifest.csv with ids as strings and target columns as float (missing = NaN)."""
    path = Path(prepared_dir) / MANIFEST_FILE
    if not path.is_file():
        raise ConfigError(f"no {MANIFEST_FILE} in the prepared folder {Path(prepared_dir).name!r}: "
                          "run `echocmr prepare` first")
    manifest = pd.read_csv(path, dtype={c: str for c in ID_COLUMNS}, keep_default_na=False, na_values=[""])
    missing = [c for c in REQUIRED_COLUMNS if c not in manifest.columns]
    if missing:
        raise ConfigError(f"{MANIFEST_FILE} lacks columns {missing}")
    for t in TARGETS:
        manifest[t.name] = pd.to_numeric(manifest[t.name], errors="coerce") if t.name in manifest else np.nan
    # Per-segment labels: an older manifest has none (its runs train no segment outputs).
    for name in SEGMENT_OUTPUTS:
        if name in manifest:
            manifest[name] = pd.to_numeric(manifest[name], errors="coerce")
    return manifest


def has_manifest(folder: str | os.PathLike) -> bool:
    """True for a folder whose manifest can be read (its clips may still be missing)."""
    return (Path(folder) / MANIFEST_FILE).is_file()


def list_prepared(root: str | os.PathLike) -> list[Path]:
    """Prepared folders directly under ``root`` (``echocmr prepare`` writes prepare.json last), by name."""
    return sorted((p.parent for p in Path(root).glob(f"*/{PREPARE_JSON}")), key=lambda p: p.name)


def read_prepare_json(prepared_dir: str | os.PathLike) -> dict:
    """prepare.json of a prepared set ({} when absent); a damaged one is an error, not a default."""
    path = Path(prepared_dir) / PREPARE_JSON
    if not path.is_file():
        return {}
    try:
        data = read_json(path)
    except ConfigError as exc:
        raise ConfigError(f"{PREPARE_JSON} of {Path(prepared_dir).name!r} is damaged; "
                          "run `echocmr prepare` again") from exc
    return data if isinstance(data, dict) else {}


def is_synthetic(prepared_dir: str | os.PathLike) -> bool | None:
    """Whether the set was made from a synthetic cohort (None when prepare.json does not say)."""
    value = read_prepare_json(prepared_dir).get("synthetic")
    return None if value is None else bool(value)


def prepared_target_fps(prepared_dir: str | os.PathLike) -> float:
    """The frame rate a prepared set was resampled to (0.0: each file kept its own)."""
    return float((read_prepare_json(prepared_dir).get("config") or {}).get("target_fps") or 0.0)


def prepared_jpeg_decode(prepared_dir: str | os.PathLike) -> str:
    """The JPEG decode recipe of a prepared set ("exact" for sets made before it was recorded)."""
    return str((read_prepare_json(prepared_dir).get("config") or {}).get("jpeg_decode") or "exact")


def check_jpeg_decode(model_mode: str, data_mode: str, what: str) -> None:
    """A model sees clips decoded the way it was trained (``echocmr.ingest.reduced``), or none."""
    if model_mode != data_mode:
        flag = "--exact-decode" if model_mode == "exact" else "no --exact-decode"
        raise ConfigError(f"{what} was trained on clips with the {model_mode!r} JPEG decode, but these clips were "
                          f"prepared with {data_mode!r}; prepare the data again with {flag}")


def check_frame_rate(model_fps: float, data_fps: float, what: str) -> None:
    """A model sees clips at the rate it was trained at, or not at all."""
    if abs(float(model_fps) - float(data_fps)) > 1e-6:
        raise ConfigError(f"{what} was trained on clips at {_rate_text(model_fps)}, but these clips are at "
                          f"{_rate_text(data_fps)}; prepare the data with --target-fps {model_fps:g}")


def _rate_text(fps: float) -> str:
    return f"{fps:g} frames/s" if fps else "each file's own frame rate"


def clip_path(prepared_dir: str | os.PathLike, clip_id: str) -> Path:
    """Where the clip ``clip_id`` is stored; refuses ids that are not plain file names."""
    if not clip_id or "/" in clip_id or "\\" in clip_id or clip_id.startswith("."):
        raise InputError("bad_clip_id", "clip id is not a plain file name")
    return Path(prepared_dir) / CLIPS_DIR / f"{clip_id}.npy"


def open_clip(prepared_dir: str | os.PathLike, clip_id: str) -> np.ndarray:
    """clips/<clip_id>.npy memory-mapped (only the frames used are read); uint8 (T, 112, 112)."""
    array = np.load(clip_path(prepared_dir, clip_id), mmap_mode="r", allow_pickle=False)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[1:] != (CLIP_SIZE, CLIP_SIZE) or not len(array):
        raise InputError("bad_clip", f"clip array must be uint8 (T, {CLIP_SIZE}, {CLIP_SIZE}), got "
                                     f"{array.dtype} {tuple(array.shape)}")
    return array


def summarise(prepared_dir: str | os.PathLike) -> dict:
    """The cohort behind a model, as the Data page shows it (JSON-ready, PHI-free)."""
    manifest = read_manifest(prepared_dir)
    ok = manifest[manifest["status"] == "ok"]
    studies = ok.drop_duplicates("study")
    prevalence = {
        split: {t: _mean_or_none(group[t]) for t in GLOBAL_TARGETS}
        for split, group in studies.groupby("split")
    }
    days = pd.to_numeric(studies["echo_cmr_days"], errors="coerce").dropna().to_numpy()
    counts, edges = np.histogram(days, bins=np.arange(-30.5, 31.5, 1.0)) if len(days) else (np.zeros(0), np.zeros(0))
    return {
        "synthetic": bool(read_prepare_json(prepared_dir).get("synthetic", False)),
        "patients": ok.groupby("split")["patient"].nunique().to_dict(),
        "studies": studies.groupby("split").size().to_dict(),
        "clips_per_view": ok["view"].value_counts().to_dict(),
        "files": manifest["status"].value_counts().to_dict(),
        "prevalence": prevalence,
        "continuous": {t: _describe(studies[t]) for t in ("t1", "t2", "ecv")},
        "interval_days": {"counts": list(map(int, counts)), "edges": [float(e) for e in edges],
                          "median": float(np.median(days)) if len(days) else None},
    }


def _mean_or_none(values: pd.Series) -> float | None:
    values = values.dropna()
    return round(float(values.mean()), 4) if len(values) else None


def _describe(values: pd.Series) -> dict:
    values = values.dropna()
    if values.empty:
        return {"n": 0}
    return {"n": int(len(values)), "mean": round(float(values.mean()), 2), "sd": round(float(values.std()), 2)}


# -- sharded layout (``echocmr shard``; written by echocmr.shards, read only here) ---------------
SHARDS_DIR = "shards"
SHARD_INDEX = "index.json"
SHARD_FORMAT = "echocmr-shards-1"
MAX_SHARD_INDEX_BYTES = 64 * 1024**2  # ~1 M clips; checked before the index is parsed
_SHARD_NAME = re.compile(r"shard-\d{5}\.bin")
_FRAME_BYTES = CLIP_SIZE * CLIP_SIZE


@dataclass(frozen=True)
class ShardEntry:
    """One shard file: raw uint8 clips (T, 112, 112) back to back; ``clips``: (clip_id, byte
    offset, n_frames) in file order."""

    file: str
    size: int
    clips: tuple[tuple[str, int, int], ...]


def read_shard_index(prepared_dir: str | os.PathLike) -> list[ShardEntry]:
    """shards/index.json, validated: bounded before it is read, plain shard names confined to
    shards/, every clip inside its shard file, no overlaps; [] when the set has no shards."""
    folder = Path(prepared_dir) / SHARDS_DIR
    path = folder / SHARD_INDEX
    if not path.is_file():
        return []
    if path.stat().st_size > MAX_SHARD_INDEX_BYTES:
        raise InputError("bad_shard_index", f"{SHARD_INDEX} is larger than {MAX_SHARD_INDEX_BYTES} bytes")
    data = read_json(path)
    if not isinstance(data, dict) or data.get("format") != SHARD_FORMAT or not isinstance(data.get("shards"), list):
        raise InputError("bad_shard_index", f"{SHARD_INDEX} is not an {SHARD_FORMAT} index")
    return [_shard_entry(folder, raw) for raw in data["shards"]]


def _shard_entry(folder: Path, raw: object) -> ShardEntry:
    bad = InputError("bad_shard_index", f"{SHARD_INDEX} holds a malformed shard entry")
    if not isinstance(raw, dict) or not isinstance(raw.get("file"), str) or not isinstance(raw.get("clips"), list):
        raise bad
    name = raw["file"]
    if not _SHARD_NAME.fullmatch(name) or not (folder / name).is_file():
        raise InputError("bad_shard_index", "a shard index entry names no shard file of this folder")
    size = (folder / name).stat().st_size
    clips, end = [], 0
    for item in raw["clips"]:
        if not (isinstance(item, list) and len(item) == 3 and isinstance(item[0], str)
                and all(type(v) is int for v in item[1:])):
            raise bad
        clip_id, offset, n_frames = item
        clip_path(folder.parent, clip_id)  # a plain id, like every clip id
        if offset < end or n_frames < 1 or offset + n_frames * _FRAME_BYTES > size:
            raise InputError("bad_shard_index", "a clip of the shard index lies outside its shard or overlaps another")
        end = offset + n_frames * _FRAME_BYTES
        clips.append((clip_id, offset, n_frames))
    return ShardEntry(name, size, tuple(clips))


def read_shard(prepared_dir: str | os.PathLike, entry: ShardEntry, chunk_bytes: int = 8 * 1024**2):
    """Yield (clip_id, uint8 (T, 112, 112)) of one shard in file order, read sequentially through a
    ``chunk_bytes`` buffer: large forward reads, no seeks, what a cold disk or a network file
    system serves fastest."""
    path = Path(prepared_dir) / SHARDS_DIR / entry.file
    with open(path, "rb", buffering=chunk_bytes) as fh:
        position = 0
        for clip_id, offset, n_frames in entry.clips:
            if offset != position:
                fh.seek(offset)
            data = fh.read(n_frames * _FRAME_BYTES)
            if len(data) != n_frames * _FRAME_BYTES:
                raise InputError("bad_shard", "a shard file is shorter than its index says")
            position = offset + len(data)
            yield clip_id, np.frombuffer(data, np.uint8).reshape(n_frames, CLIP_SIZE, CLIP_SIZE)
