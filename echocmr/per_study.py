"""Per-study predictions: per-clip model outputs → one row per (study, view), labels, fused rows.

The unit of every metric is the study: a study's per-view prediction is the mean over that
study's clips of that view (``clip`` here is one de-identified video of the study; the windows
sampled from a video are averaged earlier, by :mod:`echocmr.model_runner`).
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np
import pandas as pd

from .errors import EvaluationError
from .fusion import FusionModel, fit_fusion_frame
from .targets import GLOBAL, GLOBAL_TARGETS, MODEL_VIEWS, PER_VIEW_TARGETS, TARGETS

KEY_COLUMNS = ("study", "patient", "split", "view")
CLIP_COLUMNS = ("clip_id",) + KEY_COLUMNS
PREDICTION_COLUMNS = ("study", "patient", "split", "view", "target", "y_true", "y_pred")


def require_columns(frame: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise EvaluationError(f"{what} lacks columns {missing}; has {list(frame.columns)} (shape {frame.shape})")


def aggregate_per_study(clip_preds: pd.DataFrame) -> pd.DataFrame:
    """Per-clip predictions → one row per (study, view): the mean over that view's clips.

    clip_preds: ``clip_id, study, patient, split, view`` + one float column per target name.
    Returns ``study, patient, split, view, n_clips, <targets>`` (targets in ``TARGETS`` order),
    views outside ``MODEL_VIEWS`` dropped.
    """
    require_columns(clip_preds, CLIP_COLUMNS, "clip predictions")
    targets = [t.name for t in TARGETS if t.name in clip_preds.columns]
    if not targets:
        raise EvaluationError(f"clip predictions have no target columns; columns {list(clip_preds.columns)}")
    frame = clip_preds[clip_preds["view"].isin(MODEL_VIEWS)]
    frame = frame.astype({"study": str, "patient": str, "split": str, "view": str})
    grouped = frame.groupby(list(KEY_COLUMNS), sort=True)
    out = grouped[targets].mean()
    out.insert(0, "n_clips", grouped.size())
    return out.reset_index()


def study_labels(labels: pd.DataFrame) -> pd.DataFrame:
    """One row per study: ``study, patient, split`` + the global targets present (first non-null
    over the study's rows, i.e. clips). Rows with ``status != "ok"`` are ignored."""
    require_columns(labels, ("study",), "labels")
    lab = _ok_rows(labels)
    cols = [c for c in ("patient", "split") if c in lab.columns]
    targets = [t for t in GLOBAL_TARGETS if t in lab.columns]
    out = lab.groupby("study", sort=True)[cols + targets].first().reset_index()
    return out.astype({c: str for c in ["study"] + cols})


def view_labels(labels: pd.DataFrame) -> pd.DataFrame:
    """One row per (study, view) for the view-specific targets (``wma_view``, ``lge_view``).

    Needs a ``view`` column (per-clip labels such as ``manifest.csv``); empty otherwise.
    """
    targets = [t for t in PER_VIEW_TARGETS if t in labels.columns]
    if "view" not in labels.columns or not targets:
        return pd.DataFrame(columns=["study", "view"] + targets)
    lab = _ok_rows(labels)
    lab = lab[lab["view"].isin(MODEL_VIEWS)]
    out = lab.groupby(["study", "view"], sort=True)[targets].first().reset_index()
    return out.astype({"study": str, "view": str})


def _ok_rows(labels: pd.DataFrame) -> pd.DataFrame:
    lab = labels
    if "status" in lab.columns:
        lab = lab[lab["status"].astype(str) == "ok"]
    return lab.astype({"study": str})


def fit_fusion(per_study_val: pd.DataFrame, labels_val: pd.DataFrame, **kwargs: Any) -> FusionModel:
    """Fit view fusion on validation studies. per_study_val: output of
    :func:`aggregate_per_study` restricted to the validation split; labels_val: per-clip or
    per-study labels (``study`` + target columns). ``kwargs`` go to
    :func:`echocmr.fusion.fit_fusion_frame` (``min_studies``, ``min_per_class``, ``eps``)."""
    require_columns(per_study_val, ("study", "view"), "per-study predictions")
    splits = set(per_study_val["split"]) if "split" in per_study_val.columns else set()
    if splits - {"val"}:
        raise EvaluationError(f"fusion must be fitted on the validation split only; got splits {sorted(splits)}")
    return fit_fusion_frame(per_study_val, study_labels(labels_val), **kwargs)


def long_predictions(per_study: pd.DataFrame, labels: pd.DataFrame, fusion: FusionModel) -> pd.DataFrame:
    """Every (study, view, target) prediction with its label, views + fused ``"global"``.

    Returns ``study, patient, split, view, target, y_true, y_pred`` (y_true NaN = unlabelled).
    """
    require_columns(per_study, KEY_COLUMNS, "per-study predictions")
    slab = study_labels(labels).set_index("study")
    vlab = view_labels(labels).set_index(["study", "view"])
    meta = per_study.drop_duplicates("study").set_index("study")[["patient", "split"]]
    parts = []
    for t in (t.name for t in TARGETS):
        if t not in per_study.columns:
            continue
        rows = per_study[["study", "patient", "split", "view", t]].rename(columns={t: "y_pred"})
        if t in PER_VIEW_TARGETS:
            keys = pd.MultiIndex.from_arrays([rows["study"], rows["view"]])
            y = vlab[t].reindex(keys).to_numpy() if t in vlab.columns else np.nan
        else:
            y = slab[t].reindex(rows["study"]).to_numpy() if t in slab.columns else np.nan
        parts.append(rows.assign(target=t, y_true=y))
    fused = fusion.predict_frame(per_study)
    for t in fused.columns:
        rows = pd.DataFrame({"study": fused.index, "y_pred": fused[t].to_numpy()})
        rows = rows.join(meta, on="study").assign(view=GLOBAL, target=t)
        rows["y_true"] = slab[t].reindex(rows["study"]).to_numpy() if t in slab.columns else np.nan
        parts.append(rows)
    if not parts:
        return pd.DataFrame(columns=list(PREDICTION_COLUMNS))
    out = pd.concat(parts, ignore_index=True)[list(PREDICTION_COLUMNS)]
    return out.astype({"y_true": float, "y_pred": float})
