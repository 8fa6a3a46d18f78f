"""Fixtures shared by the whole test session, built once: the tiny prepared folder, the small
synthetic cohorts (one with its prepared set) and one tiny trained, evaluated and bundled model.

Rules for adding tests (they keep ``make test-fast`` within its 90 s on 2 cores):

- Modules that need a trained model use ``tiny_bundle``; a synthetic cohort, ``small_cohort``
  (``SynthConfig.small()``) or ``synthetic_cohort`` / ``prepared_cohort`` (12 patients);
  random prepared clips, ``tiny_prepared``. Never train or synthesise your own when one of these
  will do. Fixtures here are read-only for tests: copy before changing.
- A new session fixture that builds files goes through ``_built_once`` so the pytest-xdist
  workers (``make test`` / ``make test-fast`` run ``-n 2``) share one build instead of making
  one each. Tests must be isolation-safe under xdist: temp dirs from ``tmp_path``, a private
  ``ECHOCMR_HOME`` (monkeypatch), free ports chosen at run time, no fixed files in the repo.
- Tests over ~5 s get ``@pytest.mark.slow`` (still run by ``make test``; ``make test-fast`` skips them).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from prepared_factory import make_prepared

PREPARE_SALT = b"test-salt"


def _xdist_worker() -> str | None:
    """This process's pytest-xdist worker id (gw0, gw1, ...), None when not under xdist."""
    return os.environ.get("PYTEST_XDIST_WORKER")


def pytest_configure(config):
    # Under xdist each worker gets one of the 2 cores: torch's own thread pool on top of the
    # other worker would only oversubscribe the machine (tiny models gain nothing from 2 threads).
    if _xdist_worker() is not None:
        import torch

        torch.set_num_threads(1)


# Session fixtures whose users are the run's long pole: their modules are collected first.
FRONT_LOADED_FIXTURES = ("tiny_bundle", "prepared_cohort")


def pytest_collection_modifyitems(config, items):
    """Modules that use the session's trained bundle run first: under xdist (--dist loadscope
    hands out whole modules in collection order) the longest module then starts at once on one
    worker while the other takes the rest, instead of holding up the end of the run."""
    front = {item.module.__name__ for item in items
             if getattr(item, "module", None) is not None
             and set(FRONT_LOADED_FIXTURES) & set(getattr(item, "fixturenames", ()))}
    items.sort(key=lambda item: getattr(getattr(item, "module", None), "__name__", "") not in front)


def _built_once(tmp_path_factory, name: str, build: Callable[[Path], Path]) -> Path:
    """``build(folder)`` once per test run. Without xdist: in a fresh temp folder. Under xdist:
    in the run's common temp folder, under a file lock, by the first worker that asks; the
    others wait for it and reuse the result."""
    if _xdist_worker() is None:
        return build(tmp_path_factory.mktemp(name))
    from filelock import FileLock

    shared = tmp_path_factory.getbasetemp().parent  # common to the workers of this run
    folder, done = shared / f"shared-{name}", shared / f"shared-{name}.done"
    with FileLock(str(shared / f"shared-{name}.lock")):
        if not done.is_file():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            done.write_text(str(build(folder)))
    return Path(done.read_text())


@pytest.fixture(scope="session", autouse=True)
def _private_data_home(tmp_path_factory):
    """Each test process gets its own ECHOCMR_HOME, so nothing (the audit log, caches) is
    written to the repository's data/ or shared by two xdist workers. Tests that need a home
    of their own still set it with monkeypatch."""
    previous = os.environ.get("ECHOCMR_HOME")
    os.environ["ECHOCMR_HOME"] = str(tmp_path_factory.mktemp("echocmr-home"))
    yield
    if previous is None:
        os.environ.pop("ECHOCMR_HOME", None)
    else:
        os.environ["ECHOCMR_HOME"] = previous


@pytest.fixture
def app_home(tmp_path, monkeypatch) -> Path:
    """An AppTest's surroundings: dashboard/ importable (``streamlit run dashboard/Home.py`` puts it
    on sys.path; AppTest does not), a private, empty ECHOCMR_HOME, no ECHOCMR_MODEL override (so
    the shipped default is the active model). Returns the home."""
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "dashboard"))
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("ECHOCMR_HOME", str(home))
    monkeypatch.delenv("ECHOCMR_MODEL", raising=False)
    return home


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
    return _built_once(tmp_path_factory, "tiny-prepared", make_prepared)


@pytest.fixture(scope="session")
def small_cohort(tmp_path_factory) -> Path:
    """``SynthConfig.small()`` written once (5 patients, DICOM files and ground truth)."""
    from echocmr.config import SynthConfig
    from echocmr.synth import generate_cohort

    def build(out: Path) -> Path:
        generate_cohort(SynthConfig.small(), out)
        return out

    return _built_once(tmp_path_factory, "small-cohort", build)


@pytest.fixture(scope="session")
def synthetic_cohort(tmp_path_factory) -> Path:
    """A 12-patient synthetic cohort (DICOM files, echo index, CMR reports, ground truth)."""
    from echocmr.config import SynthConfig
    from echocmr.synth import generate_cohort

    def build(out: Path) -> Path:
        generate_cohort(dataclasses.replace(SynthConfig.small(seed=3), n_patients=12), out)
        return out

    return _built_once(tmp_path_factory, "cohort", build)


@pytest.fixture(scope="session")
def prepared_cohort(synthetic_cohort, tmp_path_factory) -> Path:
    """``synthetic_cohort`` prepared with its known views."""
    from echocmr.config import PrepareConfig
    from echocmr.prepare import PrepareSources, prepare_dataset

    def build(out: Path) -> Path:
        sources = PrepareSources.from_cohort(synthetic_cohort,
                                             known_views=synthetic_cohort / "ground_truth" / "clips.csv")
        prepare_dataset(sources, out, PrepareConfig(use_known_views=True, workers=2), salt=PREPARE_SALT)
        return out

    return _built_once(tmp_path_factory, "prepared", build)


@pytest.fixture(scope="session")
def tiny_bundle(prepared_cohort, tmp_path_factory) -> Path:
    """One epoch of the cpu-demo recipe at toy width (view classifier + three view models) on
    ``prepared_cohort``, evaluated (200 bootstrap resamples) and bundled: the session's one
    trained model. The classifier gets the same toy size (one epoch, width 4) and every model
    sees at most 12 training clips (the classifier's 2 epochs at width 8 on all 69 clips were
    ~70 % of the build): what the tests check is the plumbing (files, frame rates, views
    assigned, results written), not accuracy. Validation and test clips are all evaluated."""
    from echocmr.bundle import build_bundle
    from echocmr.config import PRESETS, ModelConfig
    from echocmr.evaluate import evaluate_run
    from echocmr.prepared import summarise
    from echocmr.train import train_model

    config = dataclasses.replace(PRESETS["cpu-demo"], model=ModelConfig(arch="compact", width=4, n_frames=8, period=2),
                                 epochs=1, batch_size=4, classifier_epochs=1, classifier_width=4, max_train_clips=12)

    def build(root: Path) -> Path:
        run = train_model(config, prepared_cohort, root / "run")
        results = evaluate_run(run, prepared_cohort, run / "results", n_bootstrap=200, seed=0)
        return build_bundle(run, results, root / "bundle", name="tiny", data_summary=summarise(prepared_cohort))

    return _built_once(tmp_path_factory, "run", build)
