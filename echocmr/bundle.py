"""Model bundles: the per-view models, view classifier, fusion and held-out results as one folder.

A bundle is what the dashboard and ``echocmr predict`` run on. ``checkpoints/default`` is the
shipped one; ``build_bundle`` makes one from any training run and its evaluation. Layout in
docs/ARCHITECTURE.md. Everything is JSON or safetensors: a bundle from elsewhere is loaded
without executing anything it contains.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .atomic import atomic_write_json
from .config import REPO_ROOT, data_home, default_bundle_dir
from .errors import CheckpointError
from .targets import MODEL_VIEWS

BUNDLE_FILE = "bundle.json"
MAX_JSON_BYTES = 64 * 1024 * 1024


def read_json(path: Path, what: str) -> Any:
    """Read a JSON file of a bundle: a regular file, size-capped, errors naming only the part."""
    from .trust import read_json_file

    if not os.path.lexists(path):
        raise CheckpointError(f"{what} is missing ({path.name})")
    return read_json_file(path, what, MAX_JSON_BYTES)


def _part(root: Path, meta: dict, key: str, default: str, what: str) -> Path:
    """A path bundle.json names, confined to the bundle folder (trust.contained)."""
    from .trust import contained

    return contained(root, meta.get(key, default), what)


@dataclass
class ModelBundle:
    """A loaded bundle: models on CPU in eval mode, fusion coefficients, operating points."""

    path: Path
    meta: dict
    view_models: dict  # view -> inference.LoadedModel
    view_classifier: Any  # inference.LoadedModel
    fusion: Any  # fusion.FusionModel
    operating_points: dict = field(default_factory=dict)
    results_summary: dict = field(default_factory=dict)  # results/summary.json (interval level, method…)

    @property
    def synthetic(self) -> bool:
        return bool(self.meta.get("synthetic", False))

    @property
    def results_dir(self) -> Path:
        return _part(self.path, self.meta, "results", "results", "results folder")


def _stem(root: Path, meta: dict, key: str, what: str) -> Path:
    """A checkpoint stem bundle.json names: the stem and both its files stay inside the bundle."""
    from .trust import contained

    name = meta.get(key, key if key == "view_classifier" else "")
    stem = contained(root, name, what)
    for suffix in (".json", ".safetensors"):
        if os.path.lexists(f"{stem}{suffix}"):
            contained(root, f"{name}{suffix}", what)
    return stem


def content_stamp(path: str | Path) -> str:
    """Identity of a bundle's contents: sha256 over every file's relative path and, for the JSON
    files (description, fusion, results), their bytes; for the rest (weights, examples) size and
    modification time. A rebuilt or replaced bundle at the same path gets a new stamp, so cached
    predictions are never served from the previous model."""
    import hashlib

    root = Path(path)
    digest = hashlib.sha256()
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        stat = file.stat()
        digest.update(str(file.relative_to(root)).encode())
        if file.suffix == ".json" and stat.st_size <= 16 * 1024 * 1024:
            digest.update(file.read_bytes())
        else:
            digest.update(f"{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


def load_bundle(path: str | Path) -> ModelBundle:
    """Load every model of a bundle (CPU). ``path`` is a string so callers can cache by it."""
    from .fusion import FusionModel
    from .model_runner import load_view_classifier, load_view_model

    root = Path(path)
    meta = read_json(root / BUNDLE_FILE, "bundle description")
    if not isinstance(meta, dict):
        raise CheckpointError("bundle description is not a JSON object")
    views = meta.get("views", {})
    if not views or not isinstance(views, dict):
        raise CheckpointError("bundle description lists no view models")
    if not set(views) <= set(MODEL_VIEWS):
        raise CheckpointError(f"bundle description lists a view that is not one of {', '.join(MODEL_VIEWS)}")
    view_models = {view: load_view_model(_stem(root, views, view, f"{view} model")) for view in views}
    classifier = load_view_classifier(_stem(root, meta, "view_classifier", "view classifier"))
    fusion = FusionModel.from_json(read_json(_part(root, meta, "fusion", "fusion.json", "fusion model"), "fusion model"))
    results = _part(root, meta, "results", "results", "results folder")
    operating = read_json(results / "operating_points.json", "operating points") \
        if (results / "operating_points.json").exists() else {}
    summary = read_json(results / "summary.json", "results summary") if (results / "summary.json").exists() else {}
    return ModelBundle(root, meta, view_models, classifier, fusion, operating, summary)


def describe_bundle(path: str | Path) -> dict:
    """Cheap description for pages (no torch): bundle.json + headline global AUROCs."""
    root = Path(path)
    meta = read_json(root / BUNDLE_FILE, "bundle description")
    metrics_path = _part(root, meta, "results", "results", "results folder") / "metrics.json"
    headline = []
    if metrics_path.exists():
        headline = [m for m in read_json(metrics_path, "held-out metrics")
                    if m.get("view") == "global" and m.get("metric") == "auroc"]
    return {**meta, "path": str(root), "headline": headline}


def active_bundle_dir() -> Path:
    """The bundle the app uses: ``$ECHOCMR_HOME/active_model.json`` if set, else the default."""
    pointer = data_home() / "active_model.json"
    if pointer.exists():
        try:
            target = Path(json.loads(pointer.read_text())["bundle"])
        except (json.JSONDecodeError, KeyError, TypeError):
            target = None
        if target is not None and (target / BUNDLE_FILE).exists():
            return target
    return default_bundle_dir()


def set_active_bundle(path: str | Path | None) -> None:
    """Point the app at a bundle; ``None`` goes back to the shipped default."""
    pointer = data_home() / "active_model.json"
    if path is None:
        pointer.unlink(missing_ok=True)
        return
    if not (Path(path) / BUNDLE_FILE).exists():
        raise CheckpointError("that folder is not a model bundle (no bundle.json)")
    atomic_write_json(pointer, {"bundle": str(Path(path).resolve())})


def build_bundle(run_dir: Path, results_dir: Path, out_dir: Path, *, name: str | None = None,
                 description: str = "", data_summary: dict | None = None) -> Path:
    """Assemble a bundle from a training run (best checkpoints) and its evaluation results.

    Copies files (never moves): the run stays intact and resumable. The folder is built beside
    ``out_dir`` and renamed into place, so a half-built bundle is never visible.
    """
    from .checkpoint import checkpoint_exists

    run_dir, results_dir, out_dir = Path(run_dir), Path(results_dir), Path(out_dir)
    config = read_json(run_dir / "config.json", "run configuration")
    staging = out_dir.with_name(f".{out_dir.name}.building")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    views = {}
    for view in MODEL_VIEWS:
        if checkpoint_exists(run_dir / view / "best"):
            _copy_checkpoint(run_dir / view / "best", staging / view)
            views[view] = view
    _copy_checkpoint(run_dir / "view_classifier" / "best", staging / "view_classifier")
    shutil.copy2(results_dir / "fusion.json", staging / "fusion.json")
    shutil.copytree(results_dir, staging / "results", ignore=shutil.ignore_patterns("fusion.json"))
    summary = read_json(results_dir / "summary.json", "results summary")
    if data_summary is not None:
        atomic_write_json(staging / "data_summary.json", data_summary)
    meta = {
        "name": name or run_dir.name,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "preset": config.get("train", {}).get("preset", ""),
        "synthetic": bool(summary.get("synthetic", False)),
        "description": description,
        "views": views,
        "view_classifier": "view_classifier",
        "fusion": "fusion.json",
        "results": "results",
        "train": config.get("train", {}),
    }
    atomic_write_json(staging / BUNDLE_FILE, meta)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    staging.rename(out_dir)
    return out_dir


def _copy_checkpoint(source_stem: Path, dest_stem: Path) -> None:
    """Copy the committed pair (after a crash inside a save, its weights may still be in .next)."""
    from .checkpoint import committed_weights, read_meta, stem_paths

    meta = read_meta(source_stem)
    weights, _ = committed_weights(source_stem, meta["sha256"])
    weights_dest, meta_dest = stem_paths(dest_stem)
    shutil.copy2(weights, weights_dest)
    shutil.copy2(stem_paths(source_stem)[1], meta_dest)


def relative_to_repo(path: Path) -> str:
    """Paths written into committed files are repo-relative (never machine-specific)."""
    try:
        return str(Path(path).resolve().relative_to(REPO_ROOT))
    except ValueError:
        return Path(path).name
