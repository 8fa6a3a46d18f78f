"""A model bundle on a prepared cohort: fit its fusion on validation, evaluate it on test.

``echocmr fit-fusion --model BUNDLE --data PREPARED`` and ``echocmr evaluate --model BUNDLE
--data PREPARED``. Made for bundles that were not trained here (the published weights, which came
without fusion or thresholds), and work for any bundle. Per-view models run as their checkpoint
says: the published recipe (``official_infer``) or EchoCMR's test-time clips.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from .atomic import atomic_write_json
from .config import EvalConfig
from .errors import ConfigError

log = logging.getLogger(__name__)
LABEL_DTYPES = {"clip_id": str, "patient": str, "study": str, "view": str, "split": str, "status": str}


def predict_prepared_published(model, prepared_dir: Path, split: str, view: str, windows: int = 0) -> pd.DataFrame:
    """Like ``model_runner.predict_prepared`` for a published-recipe model; clips of 31 frames or
    fewer are dropped (the published rule) and counted in the log."""
    from .dataset import select_rows
    from .official_infer import predict_frames
    from .prepared import check_jpeg_decode, open_clip, prepared_jpeg_decode, read_manifest

    # The published preprocessing decodes every frame in full: data prepared with --exact-decode.
    check_jpeg_decode(model.jpeg_decode, prepared_jpeg_decode(prepared_dir), f"the published {view} model")
    rows = select_rows(read_manifest(prepared_dir), split, view)
    frame = rows.reindex(columns=["clip_id", "study", "patient", "split", "view"]).copy()
    preds = np.full((len(rows), len(model.outputs)), np.nan)
    for begin in range(0, len(rows), 32):
        ids = rows["clip_id"].iloc[begin:begin + 32]
        preds[begin:begin + len(ids)] = predict_frames(model, [np.asarray(open_clip(prepared_dir, str(c))) for c in ids],
                                                       windows)
    for k, name in enumerate(model.outputs):
        frame[name] = preds[:, k]
    kept = ~np.isnan(preds).any(axis=1)
    if (~kept).any():
        log.info("%s %s: %d clips of 31 frames or fewer dropped (published rule)", view, split, int((~kept).sum()))
    return frame[kept].reset_index(drop=True)


def bundle_clip_predictions(bundle, prepared_dir: Path, splits: tuple[str, ...], tta_clips: int | str = 4,
                            windows: int = 0) -> pd.DataFrame:
    """Per-clip predictions of every view model of ``bundle`` on ``splits`` of PREPARED."""
    from .model_runner import predict_prepared
    from .official_infer import is_published

    frames = []
    for view, model in bundle.view_models.items():
        for split in splits:
            if is_published(model):
                frames.append(predict_prepared_published(model, prepared_dir, split, view, windows))
            else:
                frames.append(predict_prepared(model, prepared_dir, split, view, n_clips=tta_clips))
    frames = [f for f in frames if len(f)]
    if not frames:
        raise ConfigError(f"no usable clips of the bundle's views in the {'/'.join(splits)} split(s) of the data")
    return pd.concat(frames, ignore_index=True)


def read_labels(prepared_dir: Path) -> pd.DataFrame:
    path = Path(prepared_dir) / "manifest.csv"
    if not path.is_file():
        raise ConfigError("no manifest.csv in the prepared dataset folder: run `echocmr prepare` first")
    return pd.read_csv(path, dtype=LABEL_DTYPES)


def fit_bundle_fusion(bundle_dir: Path, prepared_dir: Path, windows: int = 0) -> dict:
    """Fit the bundle's fusion on PREPARED's validation split and write it into the bundle.

    Returns ``{target: {subset: method}}`` plus counts. The bundle's fusion.json is replaced
    atomically; bundle.json records what it was fitted on.
    """
    from .bundle import BUNDLE_FILE, load_bundle, read_json
    from .evaluate import aggregate_per_study, fit_fusion

    bundle_dir, prepared_dir = Path(bundle_dir), Path(prepared_dir)
    bundle = load_bundle(str(bundle_dir))
    per_study = aggregate_per_study(bundle_clip_predictions(bundle, prepared_dir, ("val",), windows=windows))
    labels = read_labels(prepared_dir)
    fusion = fit_fusion(per_study, labels[labels["split"] == "val"])
    atomic_write_json(bundle_dir / bundle.meta.get("fusion", "fusion.json"), fusion.to_json())
    n_studies = int(per_study["study"].nunique())
    record = {"method": "fitted on the validation split", "fitted": True, "data": prepared_dir.name,
              "n_studies": n_studies, "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    meta = read_json(bundle_dir / BUNDLE_FILE, "bundle description")
    if isinstance(meta.get("official"), dict):
        meta["official"]["fusion"] = record
    else:
        meta["fusion_fitted"] = record
    atomic_write_json(bundle_dir / BUNDLE_FILE, meta)
    methods = {t: {key: m.method for key, m in subsets.items()} for t, subsets in fusion.models.items()}
    return {"n_studies": n_studies, "methods": methods}


def evaluate_bundle(bundle_dir: Path, prepared_dir: Path, out_dir: Path | None = None,
                    config: EvalConfig = EvalConfig(), windows: int = 0):
    """Table 2 of the bundle as it is (its own fusion) on PREPARED's test split; thresholds are
    chosen on validation. Writes the results bundle to ``out_dir`` (default BUNDLE/results)."""
    from .bundle import load_bundle
    from .evaluate import aggregate_per_study, evaluate_split, write_results
    from .prepared import read_prepare_json

    bundle_dir, prepared_dir = Path(bundle_dir), Path(prepared_dir)
    bundle = load_bundle(str(bundle_dir))
    clip_preds = bundle_clip_predictions(bundle, prepared_dir, ("val", "test"), config.tta_clips, windows)
    per_study = aggregate_per_study(clip_preds)
    synthetic = read_prepare_json(prepared_dir).get("synthetic")
    results = evaluate_split(per_study, read_labels(prepared_dir), bundle.fusion, config, synthetic=synthetic)
    results.summary["model"] = bundle.meta.get("description") or bundle.meta.get("name", "")
    results.summary["evaluated_on"] = prepared_dir.name
    out = Path(out_dir) if out_dir else bundle.results_dir
    write_results(results, out)
    return results, out
