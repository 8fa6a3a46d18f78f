"""Fixtures shared by the whole test session, built once: the tiny prepared folder, the tiny
synthetic cohort with its prepared set, and one tiny trained, evaluated and bundled model.

Modules that need a trained model use ``tiny_bundle`` instead of training their own, which keeps
``make test-fast`` within its budget. Fixtures here are read-only for tests: copy before changing.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest

from prepared_factory import make_prepared

PREPARE_SALT = b"test-salt"


@pytest.fixture(autouse=True)
def _main_module_restored():
    """AppTest runs a page as ``__main__`` and leaves it in ``sys.modules``; processes started
    later (Dask nannies, spawn children) would re-run that page. Put the real one back."""
    main = sys.modules.get("__main__")
    yield
    if main is not None:
        sys.modules["__main__"] = main


@pytest.fixture(scope="session")
def tiny_prepared(tmp_path_factory) -> Path:
    """A tiny PREPARED folder of random clips (tests/prepared_factory.py), for training tests."""
    return make_prepared(tmp_path_factory.mktemp("tiny-prepared"))


@pytest.fixture(scope="session")
def synthetic_cohort(tmp_path_factory) -> Path:
    """A 12-patient synthetic cohort (DICOM files, echo index, CMR reports, ground truth)."""
    from echocmr.config import SynthConfig
    from echocmr.synth import generate_cohort

    out = tmp_path_factory.mktemp("cohort")
    generate_cohort(dataclasses.replace(SynthConfig.small(seed=3), n_patients=12), out)
    return out


@pytest.fixture(scope="session")
def prepared_cohort(synthetic_cohort, tmp_path_factory) -> Path:
    """``synthetic_cohort`` prepared with its known views."""
    from echocmr.config import PrepareConfig
    from echocmr.prepare import PrepareSources, prepare_dataset

    out = tmp_path_factory.mktemp("prepared")
    sources = PrepareSources.from_cohort(synthetic_cohort, known_views=synthetic_cohort / "ground_truth" / "clips.csv")
    prepare_dataset(sources, out, PrepareConfig(use_known_views=True, workers=2), salt=PREPARE_SALT)
    return out


@pytest.fixture(scope="session")
def tiny_bundle(prepared_cohort, tmp_path_factory) -> Path:
    """One epoch of the cpu-demo recipe at toy width (view classifier + three view models) on
    ``prepared_cohort``, evaluated (200 bootstrap resamples) and bundled: the session's one
    trained model."""
    from echocmr.bundle import build_bundle
    from echocmr.config import PRESETS, ModelConfig
    from echocmr.evaluate import evaluate_run
    from echocmr.prepared import summarise
    from echocmr.train import train_model

    root = tmp_path_factory.mktemp("run")
    config = dataclasses.replace(PRESETS["cpu-demo"], model=ModelConfig(arch="compact", width=4, n_frames=8, period=2),
                                 epochs=1, batch_size=4)
    run = train_model(config, prepared_cohort, root / "run")
    results = evaluate_run(run, prepared_cohort, run / "results", n_bootstrap=200, seed=0)
    return build_bundle(run, results, root / "bundle", name="tiny", data_summary=summarise(prepared_cohort))
