"""The shipped default bundle, rebuilt from a seed: synth → prepare → train → evaluate → bundle.

``make demo-assets`` (and ``make run`` when ``checkpoints/default`` is missing) calls
``build_demo_assets``. Intermediate data (cohort, prepared clips, run) lives in the data home and
is never committed; only the bundle (≤ 25 MiB) is.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .atomic import atomic_save_npy
from .config import PRESETS, PrepareConfig, SynthConfig, data_home
from .errors import ConfigError
from .targets import MODEL_VIEWS

log = logging.getLogger(__name__)
EXAMPLE_FRAMES = 32  # example clips are trimmed: they only illustrate views on the Data page


@dataclass(frozen=True)
class DemoConfig:
    """What the shipped default is trained on."""

    n_patients: int = 400
    seed: int = 0
    # Frames are rendered smaller than a scanner's 480x640: the heart occupies the same share of
    # the sector, the 112x112 clips look alike, and the cohort builds ~4x faster on a laptop.
    native_size: tuple[int, int] = (240, 320)
    # 70/10/20 rather than the paper's 80/10/10: a synthetic cohort is cheap, and a larger held-out
    # split narrows the confidence intervals the app shows.
    split_fractions: tuple[float, float, float] = (0.7, 0.1, 0.2)
    tissue_signal: float = 0.0
    tissue_confounded: bool = False
    preset: str = "cpu-default"
    epochs: int = 0  # 0: the preset's
    n_bootstrap: int = 10_000
    # BCa: the percentile interval under-covers near AUROC 1 (echocmr.bootstrap_ci).
    ci_method: str = "bca"


def build_demo_assets(out: Path, config: DemoConfig = DemoConfig(), work: Path | None = None) -> Path:
    """Build the default bundle into ``out``; returns it. ``work`` holds the intermediate data.

    Every stage resumes: an interrupted build picks up where it stopped when run again.
    """
    from .bundle import build_bundle
    from .evaluate import evaluate_run
    from .prepare import PrepareSources, prepare_dataset
    from .prepared import summarise
    from .synth import generate_cohort
    from .train import train_model

    out, work = Path(out), Path(work or data_home() / "demo")
    cohort, prepared, run = work / "cohort", work / "prepared", work / "run"
    synth = SynthConfig(n_patients=config.n_patients, seed=config.seed, native_size=config.native_size,
                        tissue_signal=config.tissue_signal, tissue_confounded=config.tissue_confounded)
    if (cohort / "cohort.json").exists():
        _check_same_cohort(cohort, synth)
    else:
        generate_cohort(synth, cohort)
    sources = PrepareSources.from_cohort(cohort, known_views=cohort / "ground_truth" / "clips.csv")
    # Exact JPEG decoding: the shipped model's recipe, so uploads on the Predict page are decoded
    # the way its training clips were (at 240x320 the sector is too small for a reduced decode anyway).
    prepare_config = PrepareConfig(seed=config.seed, use_known_views=True, split_fractions=config.split_fractions,
                                   jpeg_decode="exact")
    prepare_dataset(sources, prepared, prepare_config, salt=f"demo-{config.seed}".encode())
    train_config = PRESETS[config.preset]
    if config.epochs:
        train_config = dataclasses.replace(train_config, epochs=config.epochs)
    train_model(train_config, prepared, run, resume=(run / "config.json").exists())
    results = evaluate_run(run, prepared, run / "results", n_bootstrap=config.n_bootstrap, seed=config.seed,
                           ci_method=config.ci_method)
    # Built beside ``out`` and renamed into place only once complete (examples included).
    staging = out.with_name(f".{out.name}.demo")
    bundle = build_bundle(run, results, staging, name="EchoCMR synthetic demo",
                          description=f"{config.preset} preset, synthetic cohort of {config.n_patients} patients "
                                      f"(seed {config.seed}, tissue_signal {config.tissue_signal}"
                                      f"{', tissue confounded by disease' if config.tissue_confounded else ''})",
                          data_summary=summarise(prepared))
    add_examples(bundle, prepared, seed=config.seed)
    if out.exists():
        shutil.rmtree(out)
    bundle.rename(out)
    return out


def _check_same_cohort(cohort: Path, synth: SynthConfig) -> None:
    """Resuming in a work folder that holds another cohort would silently train on it."""
    written = json.loads((cohort / "cohort.json").read_text(encoding="utf-8")).get("config", {})
    wanted = {"n_patients": synth.n_patients, "seed": synth.seed, "native_size": list(synth.native_size),
              "tissue_signal": synth.tissue_signal, "tissue_confounded": synth.tissue_confounded}
    differing = [k for k, v in wanted.items() if k in written and written[k] != v]
    if differing:
        raise ConfigError(f"the work folder holds a cohort with other {', '.join(differing)}; "
                          "use another --work folder or delete it")


def add_examples(bundle: Path, prepared: Path, seed: int) -> None:
    """Ship a small example study (DICOM, fake PHI on purpose) and one clip per view."""
    from .prepared import clip_path, read_manifest
    from .synth import generate_cohort

    manifest = read_manifest(prepared)
    test = manifest[(manifest["status"] == "ok") & (manifest["split"] == "test")]
    examples = bundle / "examples"
    examples.mkdir(exist_ok=True)
    for view in (*MODEL_VIEWS, "PSAX", "A3C"):
        rows = test[test["view"] == view]
        if len(rows):
            frames = np.load(clip_path(prepared, rows.iloc[0]["clip_id"]))
            atomic_save_npy(examples / f"{view}.npy", frames[:EXAMPLE_FRAMES])
    # The example study is rendered at a small native size so it stays small on disk; it carries
    # fake PHI so that uploading it exercises de-identification for real.
    with tempfile.TemporaryDirectory() as tmp:
        cohort = Path(tmp) / "cohort"
        generate_cohort(dataclasses.replace(SynthConfig.small(seed=seed + 1000), n_patients=1), cohort)
        index = pd.read_csv(cohort / "echo_index.csv", dtype=str)
        first = index[index["study_id"] == index["study_id"].iloc[0]]
        study = examples / "study1"
        shutil.rmtree(study, ignore_errors=True)
        study.mkdir()
        for number, file in enumerate(first["file"], start=1):
            shutil.copy2(cohort / file, study / f"clip{number}.dcm")
        write_example_truth(cohort, first.iloc[0], study)


def write_example_truth(cohort: Path, study_row: pd.Series, study_dir: Path) -> None:
    """The example study's CMR truth per AHA segment (the report paired with it by the
    ``prepare`` rules), for the Predict page's bullseye: synthetic, so shipping it is harmless."""
    from .atomic import atomic_write_text
    from .config import LabelConfig
    from .labels import LGE_COLUMNS, WMA_COLUMNS, pair_studies
    from .segments import EXAMPLE_TRUTH_FILE, truth_from_scores, truth_to_json

    config = LabelConfig()
    reports = pd.read_csv(cohort / "cmr_reports.csv", dtype={"patient_id": str, "cmr_id": str})
    studies = pd.DataFrame([study_row[["patient_id", "study_id", "study_date"]]])
    cmr_id = pair_studies(studies, reports, config.pairing_window_days)["cmr_id"].iloc[0]
    if pd.isna(cmr_id):
        return
    report = reports[reports["cmr_id"] == cmr_id].iloc[0]
    wma = {s: float(report[column]) for s, column in enumerate(WMA_COLUMNS, start=1)}
    lge = {s: float(report[column]) for s, column in enumerate(LGE_COLUMNS, start=1)}
    truth = truth_from_scores(wma, lge, config.wma_min_score)
    atomic_write_text(study_dir / EXAMPLE_TRUTH_FILE, json.dumps(truth_to_json(truth, synthetic=True), indent=1))
