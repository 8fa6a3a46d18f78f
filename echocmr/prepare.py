"""``echocmr prepare``: echo files + CMR reports → a labelled, split, cached training set.

Steps: read the echo index and the CMR report table → pair each study with the nearest CMR
within the window → ingest every paired file in parallel (a bad file is recorded, never fatal)
→ views (given, known, or from the view classifier) → labels per clip → patient-level split →
``manifest.csv`` + ``clips/<clip_id>.npy`` (layout in docs/ARCHITECTURE.md).

Re-running skips files already done: each finished file appends one line to ``ingest.jsonl``
keyed by a salted hash of its path, so a killed run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from . import labels as lab
from .atomic import append_line, atomic_save_npy, atomic_write_json, atomic_write_text, read_json_lines
from .config import IngestLimits, PrepareConfig, data_home, to_dict
from .errors import ConfigError, InputError
from .targets import MODEL_VIEWS, OTHER_VIEWS, TARGETS
from .trust import csv_text

log = logging.getLogger(__name__)
# One decode thread per file: the workers already keep every core busy.
PREPARE_LIMITS = IngestLimits(decode_threads=1)
MANIFEST_BASE = ["clip_id", "patient", "study", "view", "view_source", "view_confidence", "split",
                 "n_frames", "fps", "echo_cmr_days", "status", "reason"]


@dataclass(frozen=True)
class PrepareSources:
    """Where the inputs are: an echo index (files relative to its folder) and CMR reports."""

    echo_index: Path
    cmr_reports: Path
    known_views: Path | None = None  # ground_truth/clips.csv of a synthetic cohort (file, view)
    view_classifier: Path | None = None  # checkpoint stem

    @staticmethod
    def from_cohort(cohort: Path, **kwargs) -> "PrepareSources":
        """The synthetic cohort (or any export) laid out as docs/ARCHITECTURE.md describes."""
        return PrepareSources(cohort / "echo_index.csv", cohort / "cmr_reports.csv", **kwargs)


def dataset_salt(home: Path | None = None) -> bytes:
    """The secret that keys pseudonyms; kept in the data home, never beside the data it keys.

    Patient IDs are low-entropy, so a salt stored with the manifest would let anyone re-identify
    pseudonyms by hashing candidate IDs.
    """
    path = (home or data_home()) / "secret_salt"
    if not path.exists():
        atomic_write_text(path, secrets.token_hex(32))
        os.chmod(path, 0o600)
    return bytes.fromhex(path.read_text().strip())


def _file_key(relative: str, salt: bytes) -> str:
    return hashlib.sha256(salt + relative.encode("utf-8")).hexdigest()[:20]


def _ingest_one(task: tuple[str, str, str, bytes, float]) -> dict:
    """Ingest one file and write its clip; returns a PHI-free record for ingest.jsonl.

    The file is decoded in an isolated worker (``ingest.decoder_pool``) with memory and time
    caps: a decoder that aborts (GDCM on some corrupt JPEG-lossless frames), hangs or runs out
    of memory rejects this file with a stable code, and the batch goes on.
    """
    from .ingest import read_clip_isolated

    key, path, clips_dir, salt, target_fps = task
    try:
        clip = read_clip_isolated(path, salt=salt, limits=PREPARE_LIMITS, target_fps=target_fps or None,
                                  session="prepare")
    except InputError as exc:
        return {"key": key, "status": "rejected", "reason": str(exc), "target_fps": target_fps}
    atomic_save_npy(Path(clips_dir) / f"{clip.clip_id}.npy", clip.frames)
    return {"key": key, "status": "ok", "clip_id": clip.clip_id, "n_frames": clip.n_frames,
            "fps": round(float(clip.fps), 3), "reason": "", "target_fps": target_fps}


def _ingest_all(files: pd.DataFrame, out: Path, salt: bytes, workers: int, target_fps: float) -> pd.DataFrame:
    """Ingest ``files`` (columns key, path) → one record per key, resuming from ingest.jsonl.

    A file journalled at another target frame rate (an earlier prepare with another
    ``--target-fps``) is ingested again: one folder never mixes rates.
    """
    journal = out / "ingest.jsonl"
    done = {r["key"]: r for r in read_json_lines(journal) if r.get("target_fps", 0.0) == target_fps}
    todo = [(k, p, str(out / "clips"), salt, target_fps)
            for k, p in zip(files["key"], files["path"]) if k not in done]
    (out / "clips").mkdir(parents=True, exist_ok=True)
    workers = workers or os.cpu_count() or 1
    bar = tqdm(total=len(todo), desc="ingest", unit="file", disable=not todo)
    if workers == 1 or len(todo) < 4:
        results = map(_ingest_one, todo)
        pool = None
    else:  # threads only wait: the decoding runs in `workers` isolated processes
        from .ingest.decoder_pool import pool_for

        pool_for(PREPARE_LIMITS, size=workers)  # sized before the threads first ask for it
        pool = ThreadPoolExecutor(max_workers=workers)
        results = pool.map(_ingest_one, todo)
    try:
        for record in results:
            append_line(journal, json.dumps(record))
            done[record["key"]] = record
            bar.update()
    finally:
        bar.close()
        if pool is not None:
            pool.shutdown()
    return pd.DataFrame([done[k] for k in files["key"]])


def _read_inputs(sources: PrepareSources, config: PrepareConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    index = pd.read_csv(sources.echo_index, dtype={"patient_id": str, "study_id": str, "file": str})
    reports = pd.read_csv(sources.cmr_reports, dtype={"patient_id": str, "cmr_id": str})
    lab.require_columns(index, lab.INDEX_COLUMNS, "echo index")
    lab.require_columns(reports, lab.REPORT_COLUMNS, "CMR report table")
    check_views(index, "echo index")
    studies = index[["patient_id", "study_id", "study_date"]].drop_duplicates("study_id")
    paired = lab.pair_studies(studies, reports, config.labels.pairing_window_days)
    files = index.merge(paired[["study_id", "cmr_id", "echo_cmr_days"]], on="study_id", how="left")
    return files, lab.report_labels(reports, config.labels)


KNOWN_VIEWS = frozenset(MODEL_VIEWS + OTHER_VIEWS + ("other",))


def check_views(table: pd.DataFrame, what: str) -> None:
    """A ``view`` cell must be empty or a known view name: it is copied into manifest.csv, the
    bundle's data summary and the Data page, where a name, a date or ``=HYPERLINK(...)`` must
    never arrive. Refused rows are given by number, never by value."""
    if "view" not in table.columns:
        return
    views = table["view"]
    bad = views.notna() & ~views.astype(str).isin(KNOWN_VIEWS)
    if bad.any():
        rows = ", ".join(str(i + 2) for i in list(bad[bad].index)[:10])  # +2: header line, 1-based
        raise ConfigError(f"the {what} has {int(bad.sum())} row(s) whose view is not one of "
                          f"{', '.join(sorted(KNOWN_VIEWS))} (CSV lines {rows})")


def _assign_views(files: pd.DataFrame, sources: PrepareSources, config: PrepareConfig, out: Path) -> pd.DataFrame:
    """Fill ``view``, ``view_source`` and ``view_confidence`` for every accepted clip."""
    files = files.copy()
    if "view" in files.columns and files["view"].notna().all():
        files["view_source"], files["view_confidence"] = "given", 1.0
        return files
    if config.use_known_views:
        if sources.known_views is None or not Path(sources.known_views).exists():
            raise ConfigError("--use-known-views needs the cohort's ground_truth/clips.csv")
        known = pd.read_csv(sources.known_views, dtype={"file": str})[["file", "view"]]
        check_views(known, "known-views table")
        files = files.drop(columns=["view"], errors="ignore").merge(known, on="file", how="left")
        files["view_source"], files["view_confidence"] = "known", 1.0
        return files
    if sources.view_classifier is None:
        raise ConfigError("the views are unknown: give --view-classifier CHECKPOINT "
                          "(or, for the synthetic cohort only, --use-known-views)")
    return _classify_views(files, Path(sources.view_classifier), out)


def _classify_views(files: pd.DataFrame, stem: Path, out: Path) -> pd.DataFrame:
    from .inference import at_model_rate, classify_views, load_view_classifier

    classifier = load_view_classifier(stem)
    ok = files["status"] == "ok"
    # Views are anatomy seen in a few frames, so any rate works; a classifier that was trained
    # at a common rate still gets it.
    frames = [at_model_rate(np.load(out / "clips" / f"{c}.npy", mmap_mode="r"), fps, classifier)
              for c, fps in zip(files.loc[ok, "clip_id"], files.loc[ok, "fps"])]
    calls = classify_views(classifier, [np.asarray(f) for f in frames]) if frames else []
    files["view"], files["view_confidence"] = None, np.nan
    files.loc[ok, "view"] = [view for view, _, _ in calls]
    files.loc[ok, "view_confidence"] = [conf for _, conf, _ in calls]
    files["view_source"] = "classifier"
    return files


def _pseudonymise(files: pd.DataFrame, salt: bytes) -> pd.DataFrame:
    from .ingest import pseudonym

    files = files.copy()
    files["patient"] = [pseudonym(str(p), salt, "P") for p in files["patient_id"]]
    files["study"] = [pseudonym(str(s), salt, "S") for s in files["study_id"]]
    return files


def _manifest(files: pd.DataFrame, labels: pd.DataFrame, config: PrepareConfig) -> pd.DataFrame:
    """The manifest: one row per input file, PHI-free (no file names, IDs or dates)."""
    unpaired = files["cmr_id"].isna()
    files.loc[unpaired, "status"] = "unpaired"
    files.loc[unpaired, "reason"] = f"no CMR within {config.labels.pairing_window_days} days"
    duplicate = (files["status"] == "ok") & files["clip_id"].duplicated(keep="first")
    files.loc[duplicate, ["status", "reason"]] = ["rejected", "duplicate of another file's clip"]
    splits = lab.assign_splits(files["patient"], config.split_fractions, config.seed)
    files["split"] = files["patient"].map(splits)
    with_targets = lab.clip_targets(files, labels)
    columns = MANIFEST_BASE + [t.name for t in TARGETS]
    return with_targets.reindex(columns=columns)


def prepare_dataset(sources: PrepareSources, out: Path, config: PrepareConfig = PrepareConfig(),
                    salt: bytes | None = None) -> pd.DataFrame:
    """Build (or resume building) a prepared dataset in ``out``; returns the manifest."""
    if not (math.isfinite(config.target_fps) and config.target_fps >= 0):
        raise ConfigError("target_fps must be 0 (keep each file's frame rate) or a positive number")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    salt = dataset_salt() if salt is None else salt
    files, labels = _read_inputs(sources, config)
    base = Path(sources.echo_index).parent
    files["path"] = [str(base / f) for f in files["file"]]
    files["key"] = [_file_key(f, salt) for f in files["file"]]
    paired = files["cmr_id"].notna()
    records = _ingest_all(files.loc[paired, ["key", "path"]], out, salt, config.workers, float(config.target_fps))
    files = files.merge(records, on="key", how="left")
    files = _assign_views(files, sources, config, out)
    manifest = _manifest(_pseudonymise(files, salt), labels, config)
    atomic_write_text(out / "manifest.csv", csv_text(manifest))
    synthetic = _is_synthetic(Path(sources.echo_index).parent)
    atomic_write_json(out / "prepare.json", {
        "config": to_dict(config), "synthetic": synthetic,
        "counts": manifest["status"].value_counts().to_dict(),
    })
    return manifest


def _is_synthetic(cohort: Path) -> bool:
    meta = cohort / "cohort.json"
    return bool(meta.exists() and json.loads(meta.read_text()).get("synthetic", False))


def read_prepare_json(prepared: Path) -> dict:
    """prepare.json of a prepared set ({} when absent); a damaged one is an error, not a default."""
    path = Path(prepared) / "prepare.json"
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"prepare.json of {Path(prepared).name!r} is damaged; run `echocmr prepare` again") from exc


def prepared_target_fps(prepared: Path) -> float:
    """The frame rate a prepared set was resampled to (0.0: each file kept its own)."""
    return float((read_prepare_json(prepared).get("config") or {}).get("target_fps") or 0.0)


def check_frame_rate(model_fps: float, data_fps: float, what: str) -> None:
    """A model sees clips at the rate it was trained at, or not at all."""
    if abs(float(model_fps) - float(data_fps)) > 1e-6:
        raise ConfigError(f"{what} was trained on clips at {_rate_text(model_fps)}, but these clips are at "
                          f"{_rate_text(data_fps)}; prepare the data with --target-fps {model_fps:g}")


def _rate_text(fps: float) -> str:
    return f"{fps:g} frames/s" if fps else "each file's own frame rate"


def load_manifest(prepared: Path) -> pd.DataFrame:
    path = Path(prepared) / "manifest.csv"
    if not path.exists():
        raise ConfigError(f"no manifest.csv in the prepared folder {Path(prepared).name!r}: run `echocmr prepare` first")
    return pd.read_csv(path, dtype={"clip_id": str, "patient": str, "study": str})


def summarise(prepared: Path) -> dict:
    """The cohort behind a model, as the Data page shows it (JSON-ready, PHI-free)."""
    manifest = load_manifest(prepared)
    ok = manifest[manifest["status"] == "ok"]
    studies = ok.drop_duplicates("study")
    meta = read_prepare_json(prepared)
    prevalence = {
        split: {t: _mean_or_none(group[t]) for t in lab.TARGET_NAMES if t not in ("wma_view", "lge_view")}
        for split, group in studies.groupby("split")
    }
    days = studies["echo_cmr_days"].dropna().to_numpy()
    counts, edges = np.histogram(days, bins=np.arange(-30.5, 31.5, 1.0)) if len(days) else ([], [])
    return {
        "synthetic": bool(meta.get("synthetic", False)),
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
