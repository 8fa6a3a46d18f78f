"""``echocmr prepare``: echo files + CMR reports → a labelled, split, cached training set.

Steps: read the echo index and the CMR report table → pair each study with the nearest CMR
within the window → ingest every paired file in parallel (a bad file is recorded, never fatal)
→ views (given, known, or from the view classifier) → labels per clip → patient-level split →
``manifest.csv`` + ``clips/<clip_id>.npy`` (layout in docs/ARCHITECTURE.md).

Re-running skips files already done: each finished file appends one line to ``ingest.jsonl``
keyed by a salted hash of its path, so a killed run resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import multiprocessing
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from . import labels as lab
from .atomic import append_line, atomic_save_npy, atomic_write_json, atomic_write_text, read_json_lines
from .config import IngestLimits, PrepareConfig, data_home, to_dict
from .errors import ConfigError, InputError
from .ingest.reduced import check_mode
from .jsonfile import read_json
from .prepared import CLIPS_DIR, MANIFEST_BASE, MANIFEST_FILE, PREPARE_JSON, clip_path
from .splits import split_balance
from .targets import BINARY_TARGETS, GLOBAL_TARGETS, MODEL_VIEWS, OTHER_VIEWS, SEGMENT_OUTPUTS, TARGETS
from .trust import csv_text

log = logging.getLogger(__name__)
# One decode thread per file: the workers already keep every core busy.
PREPARE_LIMITS = IngestLimits(decode_threads=1)


def prepare_limits(jpeg_decode: str) -> IngestLimits:
    """PREPARE_LIMITS with the recipe's JPEG decode (``echocmr.ingest.reduced``)."""
    return dataclasses.replace(PREPARE_LIMITS, jpeg_decode=check_mode(jpeg_decode))


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


def _ingest_one(task: tuple[str, str, str, bytes, float, str]) -> dict:
    """Ingest one file and write its clip; returns a PHI-free record for ingest.jsonl.

    The file is decoded in an isolated worker (``ingest.decoder_pool``) with memory and time
    caps: a decoder that aborts (GDCM on some corrupt JPEG-lossless frames), hangs or runs out
    of memory rejects this file with a stable code, and the batch goes on.
    """
    from .archive_index import open_location  # zip members ("export.zip::IM1") from echocmr index
    from .ingest import read_clip_isolated

    key, path, clips_dir, salt, target_fps, jpeg_decode = task
    limits = prepare_limits(jpeg_decode)
    recipe = {"target_fps": target_fps, "jpeg_decode": jpeg_decode}
    if multiprocessing.current_process().daemon:  # e.g. a Dask worker left at its default
        raise ConfigError("this worker is a daemonic process and cannot start isolated decoders: start "
                          "Dask workers with DASK_DISTRIBUTED__WORKER__DAEMON=False (docs/SCALE.md)")
    try:
        source = open_location(path, limits.max_file_bytes)
        clip = read_clip_isolated(source, salt=salt, limits=limits, target_fps=target_fps or None, session="prepare")
    except InputError as exc:
        return {"key": key, "status": "rejected", "reason": str(exc), **recipe}
    atomic_save_npy(clip_path(Path(clips_dir).parent, clip.clip_id), clip.frames)
    return {"key": key, "status": "ok", "clip_id": clip.clip_id, "n_frames": clip.n_frames,
            "fps": round(float(clip.fps), 3), "reason": "", **recipe, "decode_scale": clip.decode_scale}


def _ingest_all(files: pd.DataFrame, out: Path, salt: bytes, workers: int, recipe: tuple[float, str],
                cluster: str = "") -> pd.DataFrame:
    """Ingest ``files`` (columns key, path) → one record per key, resuming from ingest.jsonl.

    ``recipe``: (target_fps, jpeg_decode). A file journalled with another recipe (an earlier
    prepare with another ``--target-fps`` or ``--exact-decode``) is ingested again: one folder
    never mixes rates or decodes (journal lines from before ``jpeg_decode`` existed were exact). ``cluster``: a Dask
    scheduler address (``echocmr.executor``); the records and clips are the same either way.
    """
    from .executor import make_executor

    journal = out / "ingest.jsonl"
    target_fps, jpeg_decode = recipe
    done = {r["key"]: r for r in read_json_lines(journal)
            if r.get("target_fps", 0.0) == target_fps and r.get("jpeg_decode", "exact") == jpeg_decode}
    todo = [(k, p, str(out / CLIPS_DIR), salt, target_fps, jpeg_decode)
            for k, p in zip(files["key"], files["path"]) if k not in done]
    (out / CLIPS_DIR).mkdir(parents=True, exist_ok=True)
    bar = tqdm(total=len(todo), desc="ingest", unit="file", disable=not todo)
    if not cluster and workers != 1:  # threads only wait: the decoding runs in isolated processes
        from .ingest.decoder_pool import pool_for

        pool_for(prepare_limits(jpeg_decode), size=workers or os.cpu_count() or 1)  # sized before the threads ask
    executor = make_executor(workers, cluster, n_items=len(todo), threads=True)
    try:
        for record in executor.map(_ingest_one, todo):
            append_line(journal, json.dumps(record))
            done[record["key"]] = record
            bar.update()
    finally:
        bar.close()
        executor.close()
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
    from .model_runner import at_model_rate, classify_views, load_view_classifier

    classifier = load_view_classifier(stem)
    ok = files["status"] == "ok"
    # Views are anatomy seen in a few frames, so any rate works; a classifier that was trained
    # at a common rate still gets it. Likewise either JPEG recipe (echocmr.ingest.reduced): the
    # shipped classifier (exact) classifies clips prepared with the reduced decode.
    frames = [at_model_rate(np.load(clip_path(out, c), mmap_mode="r"), fps, classifier)
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
    with_targets = lab.clip_targets(files, labels)
    splits = _patient_splits(with_targets, config)
    with_targets["split"] = with_targets["patient"].astype(str).map(splits)
    columns = MANIFEST_BASE + [t.name for t in TARGETS] + list(SEGMENT_OUTPUTS) + lab.COVARIATE_COLUMNS
    return with_targets.reindex(columns=columns)


def _patient_splits(files: pd.DataFrame, config: PrepareConfig) -> dict[str, str]:
    """Patient → split, by ``config.split_method`` (README, "How the data are split")."""
    from .splits import SPLIT_METHODS, patient_findings, stratified_splits

    if config.split_method not in SPLIT_METHODS:
        raise ConfigError(f"split_method must be one of {SPLIT_METHODS}; got {config.split_method!r}")
    if config.split_method == "random":
        return lab.assign_splits(files["patient"].astype(str), config.split_fractions, config.seed)
    usable = files[files["status"] == "ok"]
    findings = patient_findings(usable, [t for t in GLOBAL_TARGETS if t in BINARY_TARGETS])
    everyone = pd.Index(sorted(set(files["patient"].astype(str))))
    findings = findings.reindex(everyone, fill_value=False)
    return stratified_splits(findings, config.split_fractions, config.seed)


def prepare_dataset(sources: PrepareSources, out: Path, config: PrepareConfig = PrepareConfig(),
                    salt: bytes | None = None, cluster: str = "") -> pd.DataFrame:
    """Build (or resume building) a prepared dataset in ``out``; returns the manifest.

    ``cluster``: ingest on the Dask scheduler at this address instead of the local pool (where
    the work runs is not part of the recipe, so it is not recorded in prepare.json)."""
    if not (math.isfinite(config.target_fps) and config.target_fps >= 0):
        raise ConfigError("target_fps must be 0 (keep each file's frame rate) or a positive number")
    check_mode(config.jpeg_decode)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    salt = dataset_salt() if salt is None else salt
    files, labels = _read_inputs(sources, config)
    base = Path(sources.echo_index).parent
    files["path"] = [str(base / f) for f in files["file"]]
    files["key"] = [_file_key(f, salt) for f in files["file"]]
    paired = files["cmr_id"].notna()
    recipe = (float(config.target_fps), config.jpeg_decode)
    records = _ingest_all(files.loc[paired, ["key", "path"]], out, salt, config.workers, recipe, cluster)
    files = files.merge(records, on="key", how="left")
    files = _assign_views(files, sources, config, out)
    manifest = _manifest(_pseudonymise(files, salt), labels, config)
    atomic_write_text(out / MANIFEST_FILE, csv_text(manifest))
    synthetic = _is_synthetic(Path(sources.echo_index).parent)
    atomic_write_json(out / PREPARE_JSON, {
        "config": to_dict(config), "synthetic": synthetic,
        "split_balance": split_balance(manifest, [t for t in GLOBAL_TARGETS if t in BINARY_TARGETS]),
        "counts": manifest["status"].value_counts().to_dict(),
    })
    return manifest


def _is_synthetic(cohort: Path) -> bool:
    meta = cohort / "cohort.json"
    return bool(meta.exists() and read_json(meta).get("synthetic", False))
