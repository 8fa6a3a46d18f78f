"""``echocmr train --view-classifier-only``: fine-tune the view classifier on confirmed labels.

Warm start from the active bundle's classifier (or any classifier checkpoint). Trains on the
confirmed clips of the prepared cohort's ``train`` split; the held-out set is the confirmed clips of
its ``val`` and ``test`` splits (the split is by patient, so no patient is on both sides). Reports
held-out accuracy per view with 95 % Wilson intervals (per clip) and a confusion matrix, before and
after fine-tuning. BatchNorm statistics stay frozen: a few dozen labelled clips cannot re-estimate
them.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from .atomic import atomic_write_json
from .errors import ConfigError
from .targets import CLASSIFIER_LABELS
from .view_review import read_labels, review_dir

REPORT_FILE = "finetune_report.json"


@dataclass(frozen=True)
class FineTuneConfig:
    """How the classifier is fine-tuned (shared by the CLI and the dashboard)."""

    epochs: int = 5
    lr: float = 1e-4
    batch_size: int = 8
    seed: int = 0


def wilson(correct: int, n: int, z: float = 1.959964) -> tuple[float, float, float]:
    """(share, low, high): the 95 % Wilson score interval of ``correct`` out of ``n``."""
    if n == 0:
        return math.nan, math.nan, math.nan
    p = correct / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return p, max(0.0, centre - half), min(1.0, centre + half)


def confirmed_rows(prepared_dir: Path) -> pd.DataFrame:
    """Confirmed labels joined with the manifest's split and frame rate (ok clips only)."""
    from .prepared import read_manifest

    labels = read_labels(prepared_dir)
    if labels.empty:
        raise ConfigError("no confirmed view labels yet: review some clips first (dashboard, View review)")
    manifest = read_manifest(prepared_dir)
    manifest = manifest[manifest["status"] == "ok"][["clip_id", "split", "fps"]]
    return labels.merge(manifest, on="clip_id", how="inner").reset_index(drop=True)


def _frames(prepared_dir: Path, rows: pd.DataFrame, model) -> list[np.ndarray]:
    from .dataset import open_clip
    from .model_runner import at_model_rate

    return [at_model_rate(np.asarray(open_clip(prepared_dir, str(clip_id))), float(fps), model)
            for clip_id, fps in zip(rows["clip_id"], rows["fps"])]


def heldout_report(model, frames: list[np.ndarray], truth: list[str]) -> dict:
    """Accuracy (Wilson CI), per-view recall and the confusion matrix (rows: confirmed view)."""
    from .model_runner import classify_views

    chosen = [label for label, _, _ in classify_views(model, frames)] if frames else []
    hits = int(sum(c == t for c, t in zip(chosen, truth)))
    value, low, high = wilson(hits, len(truth))
    per_view = {}
    for view in CLASSIFIER_LABELS:
        idx = [i for i, t in enumerate(truth) if t == view]
        if idx:
            v, lo, hi = wilson(sum(chosen[i] == view for i in idx), len(idx))
            per_view[view] = {"n": len(idx), "accuracy": v, "ci_low": lo, "ci_high": hi}
    matrix = [[int(sum(t == a and c == b for t, c in zip(truth, chosen))) for b in CLASSIFIER_LABELS]
              for a in CLASSIFIER_LABELS]
    return {"n": len(truth), "accuracy": value, "ci_low": low, "ci_high": high, "per_view": per_view,
            "confusion": {"labels": list(CLASSIFIER_LABELS), "matrix": matrix}}


def _train(model, frames: list[np.ndarray], truth: list[str], config: FineTuneConfig) -> list[float]:
    """Epochs of AdamW on random clips of the confirmed training videos; returns epoch losses."""
    from .dataset import frame_indices, to_tensor
    from .models import prepare_input

    rng = np.random.default_rng(config.seed)
    torch.manual_seed(config.seed)
    module = model.module
    optimiser = torch.optim.AdamW(module.parameters(), lr=config.lr)
    target = torch.tensor([CLASSIFIER_LABELS.index(t) for t in truth])
    sampling, norm = model.sampling, model.meta["normalisation"]
    losses = []
    for _ in range(config.epochs):
        module.train()
        for m in module.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()
        order, total = rng.permutation(len(frames)), 0.0
        for begin in range(0, len(order), config.batch_size):
            idx = order[begin:begin + config.batch_size]
            clips = []
            for i in idx:
                start = int(rng.integers(0, max(1, len(frames[i]) - sampling.span + 1)))
                clips.append(to_tensor(frames[i][frame_indices(len(frames[i]), sampling, start)], norm))
            loss = F.cross_entropy(module(prepare_input(torch.stack(clips), model.device)), target[idx])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * len(idx)
        losses.append(total / len(frames))
    module.eval()
    return losses


def fine_tune_view_classifier(prepared_dir: Path, start_stem: Path, out_dir: Path,
                              config: FineTuneConfig = FineTuneConfig()) -> dict:
    """Fine-tune, save ``OUT/view_classifier/best.*`` and the report; returns the report."""
    from .checkpoint import save_checkpoint
    from .model_runner import load_view_classifier
    from .prepared import read_prepare_json

    prepared_dir, out_dir = Path(prepared_dir), Path(out_dir)
    rows = confirmed_rows(prepared_dir)
    train, held = rows[rows["split"] == "train"], rows[rows["split"].isin(("val", "test"))]
    if train.empty or train["view"].nunique() < 2:
        raise ConfigError("confirm clips of at least two views in the train split before fine-tuning")
    model = load_view_classifier(start_stem)
    held_frames = _frames(prepared_dir, held, model)
    before = heldout_report(model, held_frames, list(held["view"]))
    losses = _train(model, _frames(prepared_dir, train, model), list(train["view"]), config)
    after = heldout_report(model, held_frames, list(held["view"]))
    report = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "data": prepared_dir.name, "synthetic": bool(read_prepare_json(prepared_dir).get("synthetic", False)),
        "n_train": int(len(train)), "n_heldout": int(len(held)), "train_loss": losses,
        "config": dataclasses.asdict(config), "start_sha256": model.meta.get("sha256", ""),
        "heldout": "confirmed clips of the val and test splits (patients never in train)",
        "interval": "95% Wilson score interval, per clip", "before": before, "after": after,
        "checkpoint": str(out_dir / "view_classifier" / "best"),
    }
    meta = {k: v for k, v in model.meta.items() if k not in ("sha256", "created", "format_version")}
    meta["fine_tuned"] = {k: report[k] for k in ("created", "data", "n_train", "start_sha256", "config")}
    save_checkpoint(out_dir / "view_classifier" / "best", model.module, meta)
    atomic_write_json(out_dir / "report.json", report)
    atomic_write_json(review_dir(prepared_dir) / REPORT_FILE, report)
    return report


def latest_report(prepared_dir: Path) -> dict | None:
    path = review_dir(prepared_dir) / REPORT_FILE
    if not path.is_file():
        return None
    import json

    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return None


def format_report(report: dict) -> str:
    """Terminal text: accuracy before/after with intervals, per view, and the confusion matrix."""
    def line(name: str, r: dict) -> str:
        return f"{name}: {r['accuracy']:.1%} (95% CI {r['ci_low']:.1%}–{r['ci_high']:.1%}), n={r['n']}"

    out = [f"fine-tuned on {report['n_train']} confirmed clips; held out: {report['n_heldout']} ({report['heldout']})",
           line("held-out accuracy before", report["before"]), line("held-out accuracy after", report["after"])]
    out += [line(f"  {view}", r) for view, r in report["after"]["per_view"].items()]
    labels = report["after"]["confusion"]["labels"]
    out.append("confusion (rows: confirmed view, columns: classifier) " + " ".join(f"{x:>6}" for x in labels))
    out += [f"{a:>6} " + " ".join(f"{n:>6}" for n in row) for a, row in zip(labels, report["after"]["confusion"]["matrix"])]
    if report.get("synthetic"):
        out.append("measured on a SYNTHETIC cohort")
    return "\n".join(out)
