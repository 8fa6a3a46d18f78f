"""Would more data help? Learning curve and detectable-signal power, as resumable grids of cells.

A *cell* is one train + evaluate (learning curve: a fraction of the training patients; power: a
cohort of N patients with a planted tissue signal of strength S). Each finished cell writes
``OUT/cells/<cell>.json`` atomically and is skipped when the grid is run again, so an interrupted
grid resumes at the first unfinished cell (and that cell's training resumes from its last epoch).
Intermediate data (cohort, prepared clips, run) lives in a work folder, deleted once its cell is
written. A cell trains one view (A4C by default) without the view classifier, on the cpu-demo
preset: minutes on 2 cores rather than the half hour of the full three-view model.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..atomic import atomic_write_json, atomic_write_text
from ..config import PRESETS, PrepareConfig, SynthConfig, TrainConfig
from ..targets import GLOBAL
from . import AnalysisError

log = logging.getLogger(__name__)
TISSUE_TARGETS = ("t1_abnormal", "t2_abnormal", "ecv_abnormal")
CURVE_TARGETS = ("wma", "lge", *TISSUE_TARGETS)


@dataclass(frozen=True)
class CurveConfig:
    """How each cell trains and evaluates (shared by the CLI, the grid runners and the tests)."""

    preset: str = "cpu-demo"
    views: tuple[str, ...] = ("A4C",)
    epochs: int = 0  # 0: the preset's
    max_train_clips: int = 0  # 0: all
    n_bootstrap: int = 1000
    tta_clips: int = 1
    seed: int = 0
    native_size: tuple[int, int] = (240, 320)  # power cohorts: the shipped demo's frame size
    # Power cohorts hold out 30 % for testing: the interval on the held-out AUROC decides detection.
    split_fractions: tuple[float, float, float] = (0.6, 0.1, 0.3)
    workers: int = 0  # synth / prepare processes (0: all cores)
    keep_work: bool = False  # keep each cell's cohort, clips and run after its record is written


def train_config(config: CurveConfig) -> TrainConfig:
    base = PRESETS[config.preset]
    return dataclasses.replace(base, views=tuple(config.views), view_classifier=False, seed=config.seed,
                               epochs=config.epochs or base.epochs, max_train_clips=config.max_train_clips,
                               num_workers=0)


def _global_aurocs(bundle, targets: tuple[str, ...]) -> list[dict]:
    rows = []
    for target in targets:
        r = bundle.metric(target, GLOBAL, "auroc")
        if r is not None:
            rows.append({"target": target, "auroc": r.value, "ci_low": r.ci_low, "ci_high": r.ci_high,
                         "n_test_studies": r.n, "n_positive": r.n_positive, "note": r.note})
    return rows


def train_and_evaluate(prepared: Path, work: Path, config: CurveConfig, targets=CURVE_TARGETS) -> list[dict]:
    """Train (resuming) into ``work/run`` and evaluate the test split; global AUROC rows."""
    from ..evaluate import eval_config, run_evaluation
    from ..train import train_model

    run = work / "run"
    train_model(train_config(config), prepared, run, resume=(run / "config.json").exists())
    evaluation = eval_config(n_bootstrap=config.n_bootstrap, seed=config.seed, tta_clips=config.tta_clips)
    bundle, _ = run_evaluation(run, prepared, work / "results", evaluation)
    return _global_aurocs(bundle, targets)


def _run_cell(out: Path, cell: str, work: Path, compute, keep_work: bool = False) -> dict:
    """The cell's record: read when already done, else ``compute()``, written atomically."""
    done = out / "cells" / f"{cell}.json"
    if done.is_file():
        import json

        log.info("cell %s already done: skipped", cell)
        return json.loads(done.read_text(encoding="utf-8"))
    start = time.perf_counter()
    record = {"cell": cell, **compute()}
    record["seconds"] = round(time.perf_counter() - start, 1)
    from .report import _jsonable

    atomic_write_json(done, _jsonable(record))
    if not keep_work:
        shutil.rmtree(work, ignore_errors=True)
    return record


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:  # absent, or kept cells still in it
        pass


# --------------------------------------------------------------------------- learning curve

def subset_prepared(prepared: Path, keep_patients: set[str], out: Path) -> Path:
    """A view of ``prepared`` whose training split is only ``keep_patients`` (the others are
    marked ``unused``); val/test and the clips (linked, not copied) are unchanged."""
    from ..prepared import read_manifest as load_manifest

    out.mkdir(parents=True, exist_ok=True)
    manifest = load_manifest(prepared)
    drop = (manifest["split"] == "train") & ~manifest["patient"].isin(keep_patients)
    manifest.loc[drop, "split"] = "unused"
    atomic_write_text(out / "manifest.csv", manifest.to_csv(index=False))
    shutil.copy2(prepared / "prepare.json", out / "prepare.json")
    clips = out / "clips"
    if not clips.exists():
        os.symlink((prepared / "clips").resolve(), clips, target_is_directory=True)
    return out


def training_patients(prepared: Path, seed: int) -> list[str]:
    """Training patients in a seeded random order: fraction f takes the first f·n (nested)."""
    from ..prepared import read_manifest as load_manifest

    manifest = load_manifest(prepared)
    ok = manifest[(manifest["status"] == "ok") & (manifest["split"] == "train")]
    patients = sorted(ok["patient"].astype(str).unique())
    if not patients:
        raise AnalysisError("no_training_patients", "the prepared dataset has no training patients")
    order = np.random.default_rng(seed).permutation(len(patients))
    return [patients[i] for i in order]


def learning_curve(prepared, out, fractions: list[float], config: CurveConfig = CurveConfig(),
                   work=None) -> list[dict]:
    """Train at each fraction of the training patients; one record per fraction."""
    prepared, out = Path(prepared), Path(out)
    work = Path(work) if work else out / "work"
    if not fractions or not all(0 < f <= 1 for f in fractions):
        raise AnalysisError("bad_fractions", "fractions must be in (0, 1]")
    patients = training_patients(prepared, config.seed)
    records = []
    for fraction in sorted(fractions):
        keep = patients[:max(1, math.ceil(fraction * len(patients)))]
        cell, cell_work = f"lc_f{fraction:g}", work / f"lc_f{fraction:g}"

        def compute(keep=keep, cell_work=cell_work, fraction=fraction):
            data = subset_prepared(prepared, set(keep), cell_work / "prepared")
            rows = train_and_evaluate(data, cell_work, config)
            return {"fraction": fraction, "n_train_patients": len(keep), "rows": rows}

        records.append(_run_cell(out, cell, cell_work, compute, config.keep_work))
    _remove_if_empty(work)
    return records


# --------------------------------------------------------------------------- power

def power_cell(n_patients: int, signal: float, work: Path, config: CurveConfig) -> dict:
    """Generate a cohort with a planted signal, prepare it, train, evaluate (each step resumes)."""
    from ..prepare import PrepareSources, prepare_dataset
    from ..synth import generate_cohort

    cohort, prepared = work / "cohort", work / "prepared"
    if not (cohort / "cohort.json").is_file():
        generate_cohort(SynthConfig(n_patients=n_patients, seed=config.seed, tissue_signal=signal,
                                    native_size=config.native_size, workers=config.workers), cohort)
    sources = PrepareSources.from_cohort(cohort, known_views=cohort / "ground_truth" / "clips.csv")
    prepare_dataset(sources, prepared, PrepareConfig(seed=config.seed, use_known_views=True,
                                                     split_fractions=config.split_fractions,
                                                     workers=config.workers), salt=b"echocmr-power")
    rows = train_and_evaluate(prepared, work, config, TISSUE_TARGETS)
    return {"n_patients": n_patients, "signal": signal, "rows": rows}


def power_grid(out, signals: list[float], sizes: list[int], config: CurveConfig = CurveConfig(),
               work=None) -> list[dict]:
    """Every (size, signal) cell, smallest cohorts first; one record per cell."""
    out = Path(out)
    work = Path(work) if work else out / "work"
    if not signals or not sizes or min(signals) < 0 or min(sizes) < 10:
        raise AnalysisError("bad_grid", "signals must be >= 0 and cohort sizes >= 10 patients")
    records = []
    for n in sorted(sizes):
        for s in sorted(signals):
            cell = f"power_n{n}_s{s:g}"
            records.append(_run_cell(out, cell, work / cell,
                                     lambda n=n, s=s, cell=cell: power_cell(n, s, work / cell, config),
                                     config.keep_work))
    _remove_if_empty(work)
    return records


def long_rows(records: list[dict], keys: tuple[str, ...]) -> pd.DataFrame:
    """Cell records flattened: one row per cell and target, with the cell's ``keys``."""
    rows = [{**{k: r[k] for k in keys}, **row, "seconds": r.get("seconds")} for r in records for row in r["rows"]]
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame["detected"] = frame["ci_low"].astype(float) > 0.5
    return frame


def smallest_detected(frame: pd.DataFrame, target: str) -> dict[int, float | None]:
    """Per cohort size, the smallest planted signal whose AUROC interval lies above 0.5."""
    out: dict[int, float | None] = {}
    for n, rows in frame[frame["target"] == target].groupby("n_patients"):
        hits = rows.loc[rows["detected"], "signal"]
        out[int(n)] = float(hits.min()) if len(hits) else None
    return out
