"""What a training run trains: its tasks (the view classifier, then one model per view) and their data.

A task's data are the manifest rows of its split (status ok; the view classifier takes every
view whose label is known), turned into :class:`echocmr.dataset.ClipDataset` objects with the
pixel normalisation and target scaling of its training split.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .config import ModelConfig, TrainConfig
from .dataset import (
    ClipDataset,
    ClipSampling,
    classifier_arrays,
    classifier_label,
    classifier_rows,
    compute_normalisation,
    compute_target_scaling,
    select_rows,
    subsample,
    target_arrays,
)
from .errors import ConfigError
from .prepared import prepared_jpeg_decode, prepared_target_fps, read_prepare_json
from .targets import CLASSIFIER_LABELS, MODEL_VIEWS, SEGMENT_OUTPUTS, TARGETS, output_kind

VIEW_CLASSIFIER = "view_classifier"
# A view model's outputs: the targets, then one per finding and AHA segment (masked where the
# clip's view does not show the segment).
OUTPUTS: tuple[str, ...] = tuple(t.name for t in TARGETS) + SEGMENT_OUTPUTS


@dataclass(frozen=True)
class Task:
    """One model of the run: ``name`` is also its folder (``A4C`` …, ``view_classifier``)."""

    name: str
    kind: str  # "view_model" | "view_classifier"
    outputs: tuple[str, ...]
    model: ModelConfig
    index: int  # position in the run; offsets the seed so models start differently
    epochs: int  # the classifier may get fewer than the view models: views are easy to tell apart


@dataclass
class TaskData:
    train_set: ClipDataset
    val_set: ClipDataset
    normalisation: dict[str, float]
    target_scaling: dict[str, dict[str, float]]


def view_outputs(manifest_columns: Iterable[str] | None = None) -> tuple[str, ...]:
    """The view models' outputs for a manifest with these columns: a manifest prepared before
    segment labels existed has none, and its models get the targets only."""
    if manifest_columns is None:
        return OUTPUTS
    present = set(manifest_columns)
    return tuple(name for name in OUTPUTS if name not in SEGMENT_OUTPUTS or name in present)


def plan_tasks(config: TrainConfig, manifest_columns: Iterable[str] | None = None) -> list[Task]:
    unknown = [v for v in config.views if v not in MODEL_VIEWS]
    if unknown:
        raise ConfigError(f"unknown views {unknown}; choose from {', '.join(MODEL_VIEWS)}")
    tasks = []
    if config.view_classifier:
        clf_model = ModelConfig(arch="compact", width=config.classifier_width,
                                n_frames=config.classifier_frames, period=config.model.period)
        tasks.append(Task(VIEW_CLASSIFIER, "view_classifier", CLASSIFIER_LABELS, clf_model, 0,
                          config.classifier_epochs or config.epochs))
    outputs = view_outputs(manifest_columns)
    _check_map_outputs(config.model, outputs)
    for i, view in enumerate(config.views, start=1):
        tasks.append(Task(view, "view_model", outputs, config.model, i, config.epochs))
    return tasks


def _check_map_outputs(model: ModelConfig, outputs: tuple[str, ...]) -> None:
    """A score map is pooled into a logit: only binary outputs can be map-pooled."""
    mapped = outputs[:max(0, int(model.map_outputs))]
    kinds = {name: output_kind(name) for name in mapped}
    if not 0 <= int(model.map_outputs) < len(outputs) or any(kind != "binary" for kind in kinds.values()):
        raise ConfigError(f"map_outputs={model.map_outputs}: the map-pooled outputs must be binary and leave one "
                          f"output to pool from the whole clip; the first ones are {list(kinds.items())}")


def task_rows(task: Task, manifest: pd.DataFrame, split: str) -> pd.DataFrame:
    if task.kind == "view_classifier":
        return classifier_rows(manifest, split)
    return select_rows(manifest, split, task.name)


def build_task_data(task: Task, config: TrainConfig, data_dir: Path, manifest: pd.DataFrame,
                    saved: dict | None) -> TaskData | None:
    """Datasets of one task; None when it has nothing to train on. ``saved`` (a resumed state)
    supplies the normalisation and target scaling so they never drift between sessions."""
    train_rows = subsample(task_rows(task, manifest, "train"), config.max_train_clips, config.seed)
    val_rows = task_rows(task, manifest, "val")
    if len(train_rows) == 0:
        return None
    if task.kind == "view_classifier" and train_rows["view"].map(classifier_label).nunique() < 2:
        return None
    if saved is not None:
        normalisation, scaling = saved["normalisation"], saved["target_scaling"]
    else:
        normalisation = compute_normalisation(data_dir, list(train_rows["clip_id"]), config.seed)
        scaling = compute_target_scaling(train_rows) if task.kind == "view_model" else {}

    def arrays(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        return classifier_arrays(rows) if task.kind == "view_classifier" else target_arrays(rows, task.outputs, scaling)

    sampling = ClipSampling(task.model.n_frames, task.model.period)
    train_set = ClipDataset(data_dir, train_rows, *arrays(train_rows), sampling, normalisation, train=True,
                            seed=config.seed + task.index, uint8_output=True)
    val_set = ClipDataset(data_dir, val_rows, *arrays(val_rows), sampling, normalisation, train=False,
                          uint8_output=True)
    return TaskData(train_set, val_set, normalisation, scaling)


def dataset_info(data_dir: Path) -> dict[str, Any]:
    """What the checkpoints record of their data: synthetic or not, and the clips' frame rate."""
    return {"synthetic": bool(read_prepare_json(data_dir).get("synthetic", False)), "dataset": data_dir.name,
            "target_fps": prepared_target_fps(data_dir), "jpeg_decode": prepared_jpeg_decode(data_dir)}
