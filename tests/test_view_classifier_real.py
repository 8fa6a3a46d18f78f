"""The shipped view classifier, trained only on synthetic echo, on real cines it never saw.

Two real apical 4-chamber cines ship on PyPI: pydicom's ``examples_ybr_color.dcm`` (30 frames)
and ``color3d_jpeg_baseline.dcm`` from the ``pydicom-data`` package (120 frames, SonoSite, JPEG
baseline). Neither is ever used for training or tuning; they are only classified here. No real
A2C or PLAX cine is available on PyPI, so only the A4C label can be checked on real data.
"""

from __future__ import annotations

import pytest
from pydicom.data import get_testdata_file

from echocmr.config import default_bundle_dir
from echocmr.ingest.pipeline import read_clip
from echocmr.model_runner import at_model_rate, classify_views, load_view_classifier

REAL_CINES = {"examples_ybr_color.dcm": "A4C", "color3d_jpeg_baseline.dcm": "A4C"}


def _real_cine(name: str) -> str:
    path = get_testdata_file(name, download=False)
    if path is None:  # pydicom-data is a test dependency (pyproject `test` extra): a missing file is a broken install
        raise AssertionError(f"{name} not found: install the test extra (pydicom-data)")
    return str(path)


@pytest.mark.parametrize("name", sorted(REAL_CINES))
def test_the_shipped_view_classifier_names_real_apical_four_chamber_cines(name: str) -> None:
    clip = read_clip(_real_cine(name))
    classifier = load_view_classifier(default_bundle_dir() / "view_classifier")
    [(view, confidence, probabilities)] = classify_views(classifier, [at_model_rate(clip.frames, clip.fps, classifier)])
    assert view == REAL_CINES[name], f"{name}: called {view} ({probabilities})"
    assert confidence > 0.5
