"""Typed configuration shared by the CLI, training and the dashboard.

Nothing is read at import time: ``data_home()`` consults ``ECHOCMR_HOME`` when called.
Every config is a dataclass that round-trips through JSON (``to_dict`` / ``from_dict``), which
is how run directories and checkpoints describe themselves.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from .errors import ConfigError
from .targets import MODEL_VIEWS

REPO_ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


def data_home() -> Path:
    """Folder for generated cohorts, caches and training runs (``$ECHOCMR_HOME`` or ./data)."""
    home = os.environ.get("ECHOCMR_HOME")
    return Path(home).expanduser() if home else REPO_ROOT / "data"


def default_bundle_dir() -> Path:
    """The shipped default model bundle (``$ECHOCMR_MODEL`` overrides)."""
    override = os.environ.get("ECHOCMR_MODEL")
    return Path(override).expanduser() if override else REPO_ROOT / "checkpoints" / "default"


def to_dict(config: Any) -> dict:
    return dataclasses.asdict(config)


def from_dict(cls: type[T], data: dict) -> T:
    """Build a (possibly nested) dataclass from a dict, rejecting unknown keys."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls} is not a dataclass")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(data) - set(fields)
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} keys: {sorted(unknown)}")
    kwargs = {}
    for name, value in data.items():
        ftype = fields[name].type
        nested = _dataclass_type(ftype)
        if nested is not None and isinstance(value, dict):
            value = from_dict(nested, value)
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)


def _dataclass_type(annotation: Any) -> type | None:
    if isinstance(annotation, str):
        annotation = _CONFIG_TYPES.get(annotation)
    return annotation if isinstance(annotation, type) and dataclasses.is_dataclass(annotation) else None


@dataclass(frozen=True)
class SynthConfig:
    """The synthetic paired echo–CMR cohort (``echocmr synth``)."""

    n_patients: int = 300
    seed: int = 0
    # 0: T1/T2/ECV never touch the pixels (the paper's finding); >0: myocardial texture shifts.
    tissue_signal: float = 0.0
    # False: T1/T2/ECV are drawn for an independent "phantom" patient (same population
    # distribution), so at tissue_signal 0 an echo carries no information about them at all: the
    # null a model must not beat. True: they follow the patient's own disease and scar burden
    # (amyloid: thick walls *and* high T1), so a model can predict them through anatomy alone.
    tissue_confounded: bool = False
    native_size: tuple[int, int] = (480, 640)  # rows, cols of the written DICOM frames
    beats: float = 2.1  # cardiac cycles per clip (at least two)
    other_view_fraction: float = 0.5  # chance a study also has a PSAX / A3C clip
    echonet_layout: bool = False  # also write Videos/*.avi + FileList.csv
    workers: int = 0  # 0: one per CPU core
    # Share of DICOM files written uncompressed (Explicit VR Little Endian RGB) rather than JPEG
    # Baseline; kept low because an uncompressed 480x640 clip is ~70 MB.
    uncompressed_fraction: float = 0.04
    regions_fraction: float = 0.8  # files with a SequenceOfUltrasoundRegions
    fps_range: tuple[float, float] = (30.0, 60.0)  # frame rates drawn from this range
    # (0, 0): studies of 3–5 clips; (low, high): full studies of low–high files (extra views,
    # colour and Doppler clips, stills), as in a real examination (synth/full_study.py).
    full_study_files: tuple[int, int] = (0, 0)

    @staticmethod
    def small(seed: int = 0) -> "SynthConfig":
        """A few patients with small frames: for tests (a few seconds)."""
        return SynthConfig(n_patients=5, seed=seed, native_size=(192, 256), beats=2.0, workers=1,
                           uncompressed_fraction=0.15, fps_range=(30.0, 36.0))


@dataclass(frozen=True)
class IngestLimits:
    """Bounds checked *before* any pixel data is decoded."""

    max_file_bytes: int = 512 * 1024 * 1024
    max_rows: int = 2048
    max_cols: int = 2048
    max_frames: int = 2000
    max_decoded_bytes: int = 2 * 1024**3  # rows * cols * frames * samples * bytes per sample
    max_zip_entries: int = 2000
    max_zip_total_bytes: int = 2 * 1024**3
    max_zip_ratio: float = 200.0
    clip_size: int = 112
    min_side: int = 16  # frames smaller than this (e.g. 1×1) cannot hold an echo sector
    decode_threads: int = 0  # JPEG frame decoding threads; 0: min(4, CPU cores)
    # "exact": JPEG frames decoded at full resolution; "reduced": at 1/2-1/8 in the DCT domain
    # where the sector stays large enough (echocmr.ingest.reduced). Part of the recipe.
    jpeg_decode: str = "exact"
    # Isolated decoding (echocmr.ingest.isolated, the upload path): the worker's address-space
    # cap (RLIMIT_AS; it counts mapped libraries and thread stacks too, so it is generous) and
    # the wall-clock time one file may take before the worker is killed.
    worker_memory_bytes: int = 4 * 1024**3
    worker_timeout_s: float = 300.0
    # Sequence items (FFFE,E000) anywhere in a DICOM file, counted before pydicom parses it: 8 M
    # empty items cost pydicom 5.5 GB and minutes. Encapsulated frames use items too, so the
    # bound leaves room for max_frames frames of several fragments each.
    max_dicom_items: int = 50_000


@dataclass(frozen=True)
class LabelConfig:
    """How CMR reports become labels (PAPER.md thresholds by default)."""

    pairing_window_days: int = 30
    t1_abnormal_ms: float = 1060.0
    t2_abnormal_ms: float = 58.0
    ecv_abnormal_pct: float = 33.0
    # A wall-motion score at or above this counts as abnormal (1 = hypokinetic).
    wma_min_score: int = 1


@dataclass(frozen=True)
class PrepareConfig:
    """``echocmr prepare``: pair echo studies with CMRs, label, split, cache clips."""

    labels: LabelConfig = field(default_factory=LabelConfig)
    split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 0
    use_known_views: bool = False
    workers: int = 0
    # Resample every clip to this frame rate (0: keep each file's own). A model's clip spans
    # n_frames x period *frames*, so across exports at 30-100 frames/s only a common rate makes it
    # span the same time. The rate travels in the checkpoints; predict applies it to uploads.
    target_fps: float = 0.0
    # JPEG-baseline frames: "reduced" decodes at 1/2-1/8 in the DCT domain where the sector stays
    # >= 112 px (echocmr.ingest.reduced; several times cheaper), "exact" at full resolution (the
    # shipped and published models' recipe). Travels in the checkpoints like target_fps.
    jpeg_decode: str = "reduced"
    # "stratified": the patient split holds every binary finding's share (echocmr.splits);
    # "random": patients shuffled and cut (how datasets prepared before it were split).
    split_method: str = "stratified"


@dataclass(frozen=True)
class ModelConfig:
    """A per-view multi-task video model."""

    arch: str = "r2plus1d_18"  # or "compact"
    width: int = 64  # stem channels for "compact"; r2plus1d_18 ignores it
    n_frames: int = 32
    period: int = 2
    pretrained_path: str = ""  # optional local weights file; nothing is ever downloaded
    # The first map_outputs outputs (a view model's begin wma_view, lge_view) are each pooled from
    # a score map over layer3's places and times (echocmr.models.MapPooledNet), not from the
    # clip-wide average: the map says where and when, and is the "score-map" attribution.
    map_outputs: int = 0


SELECT_ON = ("loss", "auroc")  # TrainConfig.select_on


@dataclass(frozen=True)
class TrainConfig:
    """``echocmr train``; presets below. The paper's recipe is ``PRESETS["paper"]``."""

    preset: str = "paper"
    model: ModelConfig = field(default_factory=ModelConfig)
    views: tuple[str, ...] = MODEL_VIEWS
    lr: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 10
    epochs: int = 50
    patience: int = 10
    num_workers: int = 4
    device: str = "auto"  # "auto", "cpu" or "cuda"
    bf16: bool = True  # autocast on GPU only
    seed: int = 0
    max_train_clips: int = 0  # 0: all (used for learning curves and tiny test runs)
    # Learning-rate schedule: x lr_gamma every lr_step_epochs (EchoNet-Dynamic's StepLR); it does
    # not depend on ``epochs``, so extending a run with --resume --epochs N keeps the schedule.
    lr_step_epochs: int = 15
    lr_gamma: float = 0.1
    view_classifier: bool = True  # train the A4C/A2C/PLAX/other classifier first
    classifier_width: int = 16  # compact (2+1)D classifier over a few frames
    classifier_frames: int = 8
    classifier_epochs: int = 0  # 0: as many as the view models
    classifier_lr: float = 0.0  # 0: lr
    compile: bool = False  # torch.compile on CUDA (opt-in: compile time dominates short runs)
    # Training clips from "files" (clips/*.npy, keyed random order) or "shards" (`echocmr shard`,
    # read sequentially: echocmr.shards.ShardStream); the items are the same, the order differs.
    data_layout: str = "files"
    # Which epoch is "best" (and drives early stopping) for view models: "loss", the validation
    # loss as the paper selects; "auroc", the mean validation AUROC of the view-level findings
    # (wma_view, lge_view) — with 34 per-segment outputs in the loss, the loss can stop falling
    # long before the findings stop improving (echocmr.train_loop.validation_score).
    select_on: str = "loss"


# echocmr.attribution; "auto": "score-map" for an output pooled from a score map, else integrated gradients
ATTRIBUTION_METHODS = ("auto", "score-map", "integrated-gradients", "grad-cam", "motion-occlusion")
CAM_LAYER = "layer2"  # Grad-CAM's layer: VideoResNet's and CompactR2Plus1D's second residual stage


@dataclass(frozen=True)
class AttributionConfig:
    """How the attribution is computed (shared by the CLI, the app and the benches)."""

    method: str = "auto"  # or one of ATTRIBUTION_METHODS (echocmr.attribution)
    n_steps: int = 8  # integration nodes between baseline and clip
    internal_batch_size: int = 8  # windows per forward/backward pass (memory vs speed)
    baseline_grey: int = 0  # uint8 grey level of the baseline clip (0: black, no echo)
    threads: int = 0  # torch CPU threads while attributing (0: leave torch's setting)
    patch_px: int = 16  # motion occlusion: side of the square patch held still (model pixels)
    stride_px: int = 8  # motion occlusion: step between patches

    def __post_init__(self) -> None:
        if not 1 <= int(self.stride_px) <= int(self.patch_px) <= 112:
            raise ConfigError(f"motion occlusion needs 1 <= stride_px <= patch_px <= 112, got "
                              f"{self.stride_px} and {self.patch_px}")
        if self.method not in ATTRIBUTION_METHODS:
            raise ConfigError(f"attribution method must be one of {', '.join(ATTRIBUTION_METHODS)}, "
                              f"got {self.method!r}")
        if not 1 <= int(self.n_steps) <= 512:
            raise ConfigError(f"attribution n_steps must be 1..512, got {self.n_steps}")
        if not 1 <= int(self.internal_batch_size) <= 512:
            raise ConfigError(f"attribution internal_batch_size must be 1..512, got {self.internal_batch_size}")
        if not 0 <= int(self.baseline_grey) <= 255:
            raise ConfigError(f"attribution baseline_grey must be 0..255, got {self.baseline_grey}")

    @property
    def description(self) -> str:
        """What the map is, for captions and figure titles."""
        if self.method == "grad-cam":
            return f"Grad-CAM (Captum) on {CAM_LAYER}, upsampled to the window"
        if self.method == "motion-occlusion":
            return (f"motion occlusion (Captum), {self.patch_px}-px patches every {self.stride_px} px held still "
                    "over the window")
        if self.method == "score-map":
            return "the model's own WMA score map (layer3, log-mean-exp pooled): each place's weight in the output"
        if self.method == "auto":
            return "the model's own score map where it has one, else integrated gradients"
        return f"integrated gradients (Captum), black-clip baseline (grey {self.baseline_grey}), {self.n_steps} steps"


@dataclass(frozen=True)
class EvalConfig:
    """Held-out evaluation statistics."""

    n_bootstrap: int = 10_000
    ci_level: float = 0.95
    seed: int = 0
    resample_unit: str = "patient"  # "patient" or "study"
    ci_method: str = "percentile"  # "percentile" or "bca" (echocmr.bootstrap_ci)
    # Test-time windows per video averaged (an int), or "all": every start (echocmr.windows).
    tta_clips: int | str = 4
    unit: str = "study"  # unit of analysis: "study", or "patient" (one aggregated prediction each)
    # An AUROC interval needs this many resampling units (patients) with and without the finding.
    # Below it a percentile bootstrap is far too narrow (on pure noise, 2 positive patients gave
    # 0.73 (0.64-0.82)), so the interval is reported as undefined, with the reason.
    min_class_units: int = 5


PRESETS: dict[str, TrainConfig] = {
    "paper": TrainConfig(),
    # Sized so the shipped default (3 views x ~480 training clips) builds in <= 30 min on 2 CPU cores.
    # Period 4: 16 frames then span 61 source frames, a whole cardiac cycle in 97 % of clips at
    # 30-60 fps and 50-110 bpm (41 % at period 2, where many clips miss systole, the part that
    # shows wall motion). lr 3e-3: with ~300 optimiser steps in all, 1e-3 barely leaves the start.
    "cpu-demo": TrainConfig(
        preset="cpu-demo",
        model=ModelConfig(arch="compact", width=8, n_frames=16, period=4),
        lr=3e-3,
        batch_size=8,
        epochs=5,
        patience=3,
        lr_step_epochs=4,
        num_workers=0,
        device="cpu",
        bf16=False,
        classifier_width=8,
        classifier_frames=8,
        classifier_epochs=2,
        classifier_lr=1e-3,  # at 3e-3 two epochs left PSAX / A3C ("other") at 67 % recall; 1e-3: 100 %
    ),
}
# The shipped default's recipe: cpu-demo trained longer and kept by the findings' validation AUROC.
# Under cpu-demo the A4C model's validation loss was lowest after epoch 1 (34 segment outputs
# dominate it), so that model stopped there at chance for WMA, and A2C/PLAX were still improving at
# epoch 5. cpu-demo itself is unchanged: the learning-curve and power analyses were run with it.
# Its WMA output is pooled from a score map (ModelConfig.map_outputs): the Predict page shows that map,
# which points at a still segment where attribution of an average-pooled head points away (README).
PRESETS["cpu-default"] = dataclasses.replace(
    PRESETS["cpu-demo"], preset="cpu-default", model=dataclasses.replace(PRESETS["cpu-demo"].model, map_outputs=1),
    epochs=7, patience=7, lr_step_epochs=5, select_on="auroc")

_CONFIG_TYPES = {
    cls.__name__: cls
    for cls in (SynthConfig, IngestLimits, LabelConfig, PrepareConfig, ModelConfig, TrainConfig, EvalConfig)
}


def preset(name: str) -> TrainConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None
