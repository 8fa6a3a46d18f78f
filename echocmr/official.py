"""Import the published Sahashi et al. 2024 weights into a normal EchoCMR bundle.

The authors released six R(2+1)D-18 state dicts (WMA and LGE/"scar" for A4C, A2C and PLAX)
under an academic licence that forbids redistribution: EchoCMR never ships, downloads or needs
them; a user who has them runs ``echocmr import-official DIR --out BUNDLE``. Each file is
size-checked before it is read, read with ``torch.load(weights_only=True)`` (no code in it can
run), its ``m.`` prefix (their training wrapper) stripped, and checked key by key and shape by
shape against torchvision ``r2plus1d_18(num_classes=1)``. The bundle stores them as safetensors
(one ``r2plus1d_18_per_target`` checkpoint per view, outputs ``wma``/``lge``) with each source
file's SHA-256 and the published preprocessing (``PUBLISHED_RECIPE``), which
``echocmr.official_infer`` reproduces.
"""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import torch

from .atomic import atomic_write_json
from .config import ModelConfig, default_bundle_dir
from .errors import CheckpointError
from .targets import MODEL_VIEWS

MODEL_LABEL = "published weights, Sahashi et al. 2024, not retrained"
LICENCE_NOTE = ("Sahashi et al. 2024 weights: academic, non-commercial licence; redistribution is not "
                "permitted. This bundle must not be shared.")
PUBLISHED_ARCH = "r2plus1d_18_per_target"
PUBLISHED_TARGETS = ("wma", "lge")
# Their file names, their spelling ("WallMotoion").
PUBLISHED_FILES: dict[tuple[str, str], str] = {
    (view, target): f"{view}_{'WallMotoion' if target == 'wma' else 'Scar'}.pt"
    for view in MODEL_VIEWS for target in PUBLISHED_TARGETS
}
PUBLISHED_BYTES = 125_386_933
# Read bounds: a state dict of r2plus1d_18 cannot be much smaller or larger than the released size
# (a fabricated file with other key spellings differs by a few kB), so anything outside is refused
# before a byte of it is unpickled.
MIN_FILE_BYTES = 100_000_000
MAX_FILE_BYTES = 160_000_000
STRIPPED_PREFIXES = ("m.", "module.", "_orig_mod.")

PUBLISHED_RECIPE: dict = {
    "name": "published",
    "reference": "Sahashi et al. 2024, released inference script",
    "input": "112x112 AVI passed through unchanged: frames read with OpenCV, channel order B, G, R",
    "scale": "pixel / 255, no mean/std normalisation",
    "clip": "one clip per video: the first 32 frames at stride 2 (16 frames)",
    "layout": "(N, 3, 16, 112, 112)",
    "n_frames": 16,
    "period": 2,
    "min_frames": 32,
    "drop_rule": "videos with 31 frames or fewer are dropped",
    "other_inputs": ("DICOM, MP4 and other AVIs go through EchoCMR ingestion (sector mask, crop, "
                     "resize to 112x112 grey); the grey frame is given as B = G = R"),
    "frame_rate": "each file's own (the published pipeline does not resample)",
    "output": "one logit per target; probability = sigmoid",
}


class OfficialWeightsError(CheckpointError):
    """A published weight file was refused; ``code`` is stable, the message names the file only."""


@dataclass(frozen=True)
class PublishedFile:
    """One accepted weight file: its state dict (plain torchvision keys) and provenance."""

    view: str
    target: str
    file: str
    sha256: str
    n_bytes: int
    had_prefix: bool
    state: dict

    def provenance(self) -> dict:
        return {"file": self.file, "sha256": self.sha256, "bytes": self.n_bytes,
                "size_matches_published": self.n_bytes == PUBLISHED_BYTES, "had_m_prefix": self.had_prefix}


def reference_shapes() -> dict[str, tuple[int, ...]]:
    """Key -> shape of torchvision ``r2plus1d_18(num_classes=1)`` (what every file must hold)."""
    from torchvision.models.video import r2plus1d_18

    return {k: tuple(v.shape) for k, v in r2plus1d_18(weights=None, num_classes=1).state_dict().items()}


def _strip(key: str) -> tuple[str, bool]:
    stripped = False
    for prefix in STRIPPED_PREFIXES:
        if key.startswith(prefix):
            key, stripped = key[len(prefix):], True
    return key, stripped


def read_published_file(path: Path, view: str, target: str, shapes: dict[str, tuple[int, ...]]) -> PublishedFile:
    """Size check, SHA-256, ``weights_only`` load, prefix strip, strict key and shape check."""
    name = path.name
    if path.is_symlink() or not path.is_file():
        raise OfficialWeightsError(f"{name}: not a regular file", "not_a_file")
    size = path.stat().st_size
    if not MIN_FILE_BYTES <= size <= MAX_FILE_BYTES:
        raise OfficialWeightsError(f"{name}: {size} bytes, expected about {PUBLISHED_BYTES} "
                                   "(an r2plus1d_18 state dict)", "wrong_size")
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    try:
        import io

        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling refusals come in many types; all mean "refuse"
        raise OfficialWeightsError(f"{name}: not a plain tensor state dict, refused without running it "
                                   f"({type(exc).__name__})", "unsafe_weights") from None
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise OfficialWeightsError(f"{name}: does not hold a state dict", "not_state_dict")
    plain, had_prefix = {}, False
    for key, value in state.items():
        stripped, was = _strip(key)
        had_prefix |= was
        plain[stripped] = value
    _check_against(plain, shapes, name)
    return PublishedFile(view, target, name, digest, size, had_prefix, plain)


def _check_against(state: dict, shapes: dict[str, tuple[int, ...]], name: str) -> None:
    missing = sorted(set(shapes) - set(state))
    unexpected = sorted(set(state) - set(shapes))
    if missing or unexpected:
        raise OfficialWeightsError(f"{name}: keys do not match r2plus1d_18(num_classes=1): {len(missing)} "
                                   f"missing (e.g. {missing[:2]}), {len(unexpected)} unexpected", "wrong_keys")
    for key, shape in shapes.items():
        value = state[key]
        if not isinstance(value, torch.Tensor) or tuple(value.shape) != shape:
            got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise OfficialWeightsError(f"{name}: {key} has shape {got}, expected {shape}", "wrong_shape")
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise OfficialWeightsError(f"{name}: {key} holds non-finite values", "non_finite_weights")


def find_published_files(folder: Path) -> dict[tuple[str, str], Path]:
    """The published files present in ``folder`` (any subset), by (view, target)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise OfficialWeightsError("the weights folder does not exist", "no_folder")
    found = {key: folder / name for key, name in PUBLISHED_FILES.items() if (folder / name).exists()}
    if not found:
        expected = ", ".join(sorted(PUBLISHED_FILES.values()))
        raise OfficialWeightsError(f"none of the published weight files are in that folder (expected any of "
                                   f"{expected})", "no_files")
    return found


def view_checkpoint_meta(view: str, files: list[PublishedFile]) -> dict:
    """Checkpoint JSON of one view: published recipe, outputs in target order, provenance."""
    model = ModelConfig(arch=PUBLISHED_ARCH, n_frames=PUBLISHED_RECIPE["n_frames"], period=PUBLISHED_RECIPE["period"])
    return {
        "kind": "view_model",
        "model": dataclasses.asdict(model),
        "view": view,
        "outputs": [f.target for f in files],
        # /255 and nothing else: mean 0, std 255 in the (x - mean) / std every loader applies.
        "normalisation": {"mean": 0.0, "std": 255.0},
        "target_scaling": {},
        "preprocessing": PUBLISHED_RECIPE,
        "published": {f.target: f.provenance() for f in files},
        "data": {"synthetic": False, "dataset": "Sahashi et al. 2024 (published weights)", "target_fps": 0.0,
                 "jpeg_decode": "exact"},  # the published preprocessing decodes every frame in full
        "train": {},
    }


def mean_fusion(targets: list[str]):
    """Fusion before the user fits one: every view subset is the mean of the views' logits."""
    from .fusion import FusionModel, SubsetModel, all_subsets, subset_key

    return FusionModel(models={t: {subset_key(s): SubsetModel(s, "mean") for s in all_subsets()} for t in targets})


def import_official(weights_dir: Path, out_dir: Path, classifier_bundle: Path | None = None) -> Path:
    """Write BUNDLE from the published files in ``weights_dir``; returns ``out_dir``.

    The view classifier is copied from ``classifier_bundle`` (default: the shipped bundle): the
    authors released none, and bundle.json says whose it is. Built beside ``out_dir`` and renamed
    into place, so a half-written bundle is never visible.
    """
    from .bundle import BUNDLE_FILE, _copy_checkpoint, read_json
    from .checkpoint import save_checkpoint

    found = find_published_files(Path(weights_dir))
    shapes = reference_shapes()
    out_dir = Path(out_dir)
    staging = out_dir.with_name(f".{out_dir.name}.building")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    views: dict = {}
    provenance: dict = {}
    targets: set[str] = set()
    for view in MODEL_VIEWS:
        files = [read_published_file(found[(view, t)], view, t, shapes) for t in PUBLISHED_TARGETS if (view, t) in found]
        if not files:
            continue
        state = {f"nets.{k}.{key}": value for k, f in enumerate(files) for key, value in f.state.items()}
        save_checkpoint(staging / view, state, view_checkpoint_meta(view, files))
        views[view] = view
        provenance.update({f.file: {"view": view, "target": f.target, **f.provenance()} for f in files})
        targets.update(f.target for f in files)
        del state, files  # two networks at a time in memory, not six
    source = Path(classifier_bundle or default_bundle_dir())
    source_meta = read_json(source / BUNDLE_FILE, "view-classifier bundle description")
    _copy_checkpoint(source / source_meta["view_classifier"], staging / "view_classifier")
    fused_targets = [t for t in PUBLISHED_TARGETS if t in targets]
    atomic_write_json(staging / "fusion.json", mean_fusion(fused_targets).to_json())
    atomic_write_json(staging / BUNDLE_FILE, bundle_meta(views, provenance, source_meta, fused_targets))
    if out_dir.exists():
        shutil.rmtree(out_dir)
    staging.rename(out_dir)
    return out_dir


def bundle_meta(views: dict, provenance: dict, classifier_meta: dict, targets: list[str]) -> dict:
    return {
        "name": "Sahashi et al. 2024 (published weights)",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "preset": "published",
        "synthetic": False,
        "description": MODEL_LABEL,
        "views": views,
        "view_classifier": "view_classifier",
        "fusion": "fusion.json",
        "results": "results",
        "official": {
            "label": MODEL_LABEL,
            "licence": LICENCE_NOTE,
            "targets": targets,
            "files": provenance,
            "preprocessing": PUBLISHED_RECIPE,
            "fusion": {"method": "mean of the views' logits", "fitted": False},
            "view_classifier": {"from": classifier_meta.get("name", ""),
                                "synthetic": bool(classifier_meta.get("synthetic", False))},
        },
    }


def official_info(meta: dict) -> dict | None:
    """The ``official`` block of a bundle description, or None for bundles trained here."""
    info = meta.get("official")
    return info if isinstance(info, dict) else None


def fusion_note(meta: dict) -> str:
    """How the study value of a published bundle is made, for pages and the CLI."""
    info = official_info(meta) or {}
    fusion = info.get("fusion") or {}
    if fusion.get("fitted"):
        return (f"study value: fusion fitted by you on the validation split of {fusion.get('data', 'your data')} "
                f"({fusion.get('n_studies', '?')} studies)")
    return "study value: mean of the views (no fusion was released; fit one with `echocmr fit-fusion`)"
