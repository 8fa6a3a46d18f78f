"""`make demo-assets` end to end at toy size: the shipped-bundle builder produces a loadable bundle."""

import dataclasses
import json

import pytest

from echocmr.bundle import load_bundle
from echocmr.demo import DemoConfig, build_demo_assets
from echocmr.errors import ConfigError
from echocmr.targets import MODEL_VIEWS

# The whole demo-asset build (synth, prepare, train, evaluate, bundle), even at toy size.
pytestmark = pytest.mark.slow


def test_demo_assets_build_a_complete_bundle(tmp_path):
    config = DemoConfig(n_patients=10, epochs=1, n_bootstrap=200, native_size=(192, 256))
    out = build_demo_assets(tmp_path / "default", config, work=tmp_path / "work")
    meta = json.loads((out / "bundle.json").read_text())
    assert meta["synthetic"] is True and meta["preset"] == "cpu-default" and set(meta["views"]) == set(MODEL_VIEWS)
    assert meta["train"]["select_on"] == "auroc" and meta["train"]["epochs"] == 1  # the preset, epochs overridden
    examples = out / "examples"
    assert sorted(p.name for p in examples.glob("*.npy")) and list((examples / "study1").glob("*.dcm"))
    assert not list(tmp_path.glob(".default*")), "the staging folder was left behind"
    bundle = load_bundle(str(out))
    assert set(bundle.view_models) == set(MODEL_VIEWS)
    # A second call resumes every stage and rebuilds the bundle in place.
    again = build_demo_assets(tmp_path / "default", config, work=tmp_path / "work")
    assert (again / "bundle.json").is_file()
    # Another cohort size in the same work folder is refused, not silently trained on.
    with pytest.raises(ConfigError, match="n_patients"):
        build_demo_assets(tmp_path / "default", dataclasses.replace(config, n_patients=12), work=tmp_path / "work")
