"""View review: people confirm or correct the view classifier's calls on a prepared cohort.

A classifier trained on synthetic clips is not trusted on real ones, so real groups label some
clips, least certain first, and fine-tune on what they confirmed (``echocmr.view_finetune``).

Files, inside the prepared folder:

* ``view_review/predictions.csv``: clip_id, predicted, confidence, p_<label>… of the classifier
  whose SHA-256 is in ``view_review/predictions.json`` (recomputed when the classifier changes).
* ``view_labels.csv``: clip_id, view (one of ``targets.CLASSIFIER_LABELS``), confirmed_by,
  confirmed_at (UTC ISO time), predicted, confidence: one row per confirmed clip, rewritten
  atomically on every save.
"""

from __future__ import annotations

import io
import re
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from .atomic import atomic_write_json, atomic_write_text
from .clip_selection import MIN_VIEW_CONFIDENCE
from .errors import ConfigError
from .targets import CLASSIFIER_LABELS

# Below this softmax confidence a clip's view is not trusted: review puts it first, and predict
# keeps it out of fusion until someone confirms the view.
VIEW_CONFIDENCE_THRESHOLD = MIN_VIEW_CONFIDENCE  # one rule: echocmr.clip_selection
LABELS_FILE = "view_labels.csv"
LABEL_COLUMNS = ("clip_id", "view", "confirmed_by", "confirmed_at", "predicted", "confidence")
MAX_LABELS_BYTES = 64 << 20
_REVIEWER = re.compile(r"^[\w .@'-]{1,64}$")


def review_dir(prepared_dir: Path) -> Path:
    return Path(prepared_dir) / "view_review"


def classify_prepared(prepared_dir: Path, classifier, chunk: int = 32) -> pd.DataFrame:
    """The classifier's call on every ok clip of PREPARED, cached per classifier checksum."""
    from .model_runner import at_model_rate, classify_views
    from .prepared import open_clip, read_manifest

    prepared_dir = Path(prepared_dir)
    stamp = {"classifier_sha256": classifier.meta.get("sha256", "")}
    cache, cache_meta = review_dir(prepared_dir) / "predictions.csv", review_dir(prepared_dir) / "predictions.json"
    if cache.is_file() and cache_meta.is_file() and _read_json(cache_meta) == stamp:
        return pd.read_csv(cache, dtype={"clip_id": str, "predicted": str})
    manifest = read_manifest(prepared_dir)
    rows = manifest[manifest["status"] == "ok"].sort_values("clip_id").reset_index(drop=True)
    records = []
    for begin in range(0, len(rows), chunk):
        part = rows.iloc[begin:begin + chunk]
        frames = [at_model_rate(np.asarray(open_clip(prepared_dir, str(r.clip_id))), float(r.fps), classifier)
                  for r in part.itertuples()]
        for r, (label, confidence, probs) in zip(part.itertuples(), classify_views(classifier, frames)):
            records.append({"clip_id": str(r.clip_id), "predicted": label, "confidence": confidence,
                            **{f"p_{k}": v for k, v in probs.items()}})
    frame = pd.DataFrame(records, columns=["clip_id", "predicted", "confidence",
                                           *[f"p_{k}" for k in CLASSIFIER_LABELS]])
    atomic_write_text(cache, frame.to_csv(index=False))
    atomic_write_json(cache_meta, stamp)
    return frame


def _read_json(path: Path):
    import json

    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def read_labels(prepared_dir: Path) -> pd.DataFrame:
    """Confirmed labels (empty frame with LABEL_COLUMNS when none); bounded and validated."""
    path = Path(prepared_dir) / LABELS_FILE
    if not path.is_file():
        return pd.DataFrame(columns=list(LABEL_COLUMNS))
    if path.stat().st_size > MAX_LABELS_BYTES:
        raise ConfigError(f"{LABELS_FILE} is larger than {MAX_LABELS_BYTES >> 20} MiB")
    labels = pd.read_csv(path, dtype=str, keep_default_na=False)
    if list(labels.columns) != list(LABEL_COLUMNS) or not labels["view"].isin(CLASSIFIER_LABELS).all():
        raise ConfigError(f"{LABELS_FILE} is damaged (columns or views); fix or delete it")
    return labels


def save_labels(prepared_dir: Path, views: dict[str, str], reviewer: str, predictions: pd.DataFrame) -> pd.DataFrame:
    """Record ``views`` ({clip_id: view}) as confirmed by ``reviewer`` now; one atomic rewrite.

    A clip confirmed again replaces its earlier row (the latest reviewer and time win).
    """
    reviewer = reviewer.strip()
    if not _REVIEWER.match(reviewer):
        raise ConfigError("say who confirms the labels: a name or initials (letters, digits, space . @ ' -)")
    bad = sorted({v for v in views.values() if v not in CLASSIFIER_LABELS})
    if bad:
        raise ConfigError(f"views must be one of {', '.join(CLASSIFIER_LABELS)}")
    known = predictions.set_index("clip_id")
    unknown = [c for c in views if c not in known.index]
    if unknown:
        raise ConfigError(f"{len(unknown)} clip ids are not clips of this prepared cohort")
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    new = pd.DataFrame([{"clip_id": c, "view": v, "confirmed_by": reviewer, "confirmed_at": now,
                         "predicted": known.at[c, "predicted"], "confidence": f"{float(known.at[c, 'confidence']):.4f}"}
                        for c, v in views.items()], columns=list(LABEL_COLUMNS))
    old = read_labels(prepared_dir)
    merged = pd.concat([old[~old["clip_id"].isin(views)], new], ignore_index=True).sort_values("clip_id")
    buffer = io.StringIO()
    merged.to_csv(buffer, index=False)
    atomic_write_text(Path(prepared_dir) / LABELS_FILE, buffer.getvalue())
    return merged.reset_index(drop=True)


def review_queue(predictions: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """Clips least certain first: clip_id, predicted, confidence, confirmed (view or "")."""
    confirmed = labels.set_index("clip_id")["view"] if len(labels) else pd.Series(dtype=object)
    queue = predictions[["clip_id", "predicted", "confidence"]].copy()
    queue["confirmed"] = queue["clip_id"].map(confirmed).astype(object).fillna("")
    return queue.sort_values(["confidence", "clip_id"]).reset_index(drop=True)


def view_counts(predictions: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """Per view: clips the classifier assigns, clips confirmed as that view, of which corrected."""
    rows = []
    for view in CLASSIFIER_LABELS:
        mine = labels[labels["view"] == view]
        rows.append({"view": view, "predicted": int((predictions["predicted"] == view).sum()),
                     "confirmed": int(len(mine)), "corrected": int((mine["predicted"] != view).sum()),
                     "uncertain": int(((predictions["predicted"] == view)
                                       & (predictions["confidence"] < VIEW_CONFIDENCE_THRESHOLD)).sum())})
    return pd.DataFrame(rows)
