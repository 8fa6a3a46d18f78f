"""Trust boundaries: paths a bundle names, sizes, architecture numbers, CSV cells, view labels."""

from __future__ import annotations

import json
import os
import shutil

import pandas as pd
import pytest

from echocmr.bundle import load_bundle, describe_bundle
from echocmr.checkpoint import load_checkpoint
from echocmr.config import REPO_ROOT
from echocmr.errors import CheckpointError, ConfigError
from echocmr.prepare import check_views
from echocmr.trust import csv_text, neutralise_cell

SHIPPED = REPO_ROOT / "checkpoints" / "default"


@pytest.fixture()
def bundle(tmp_path):
    out = tmp_path / "bundle"
    shutil.copytree(SHIPPED, out, ignore=shutil.ignore_patterns("examples"))
    return out


def _edit(path, **changes):
    meta = json.loads(path.read_text())
    meta.update(changes)
    path.write_text(json.dumps(meta))


@pytest.mark.parametrize("changes, code", [
    ({"fusion": "/dev/zero"}, "path_escapes"),
    ({"fusion": "../outside.json"}, "path_escapes"),
    ({"view_classifier": "/etc/passwd"}, "path_escapes"),
    ({"views": {"A4C": "../../A4C"}}, "path_escapes"),
    ({"results": "../../.."}, "path_escapes"),
    ({"fusion": 7}, "bad_path"),
])
def test_paths_a_bundle_names_stay_inside_it(bundle, changes, code):
    (bundle.parent / "outside.json").write_text("{}")
    _edit(bundle / "bundle.json", **changes)
    with pytest.raises(CheckpointError) as err:
        load_bundle(bundle)
    assert err.value.code == code
    assert "/dev" not in str(err.value) and "passwd" not in str(err.value)


def test_a_symlink_to_a_device_is_not_read(bundle):
    os.symlink("/dev/zero", bundle / "zero.json")
    _edit(bundle / "bundle.json", fusion="zero.json")
    with pytest.raises(CheckpointError) as err:  # resolves outside: refused before any read
        load_bundle(bundle)
    assert err.value.code == "path_escapes"


def test_a_fifo_inside_the_bundle_is_not_read(bundle):
    os.mkfifo(bundle / "fusion.fifo")
    _edit(bundle / "bundle.json", fusion="fusion.fifo")
    with pytest.raises(CheckpointError) as err:  # would block forever if opened
        load_bundle(bundle)
    assert err.value.code == "not_regular_file"


def test_describe_refuses_a_results_folder_outside(bundle):
    _edit(bundle / "bundle.json", results="/")
    with pytest.raises(CheckpointError):
        describe_bundle(bundle)


def test_a_checkpoint_symlinked_from_outside_the_bundle_is_refused(bundle, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    for suffix in (".json", ".safetensors"):
        shutil.move(bundle / f"A4C{suffix}", outside / f"A4C{suffix}")
        os.symlink(outside / f"A4C{suffix}", bundle / f"A4C{suffix}")
    with pytest.raises(CheckpointError) as err:
        load_bundle(bundle)
    assert err.value.code == "path_escapes"


@pytest.mark.parametrize("key, value", [("width", 512), ("width", -1), ("n_frames", 100000),
                                        ("period", 0), ("width", 8.5), ("width", True),
                                        ("map_outputs", -1), ("map_outputs", 65), ("map_outputs", 1.5)])
def test_architecture_numbers_are_bounded_before_building(bundle, monkeypatch, key, value):
    import echocmr.checkpoint as ckpt

    def no_build(*_):
        raise AssertionError("the model was built before its numbers were checked")

    monkeypatch.setattr(ckpt, "build_model", no_build)
    meta = json.loads((bundle / "A4C.json").read_text())
    meta["model"][key] = value
    (bundle / "A4C.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(bundle / "A4C")
    assert err.value.code == "bad_model_config"


def test_the_shipped_bundle_still_loads():
    assert set(load_bundle(SHIPPED).view_models) == {"A4C", "A2C", "PLAX"}


def test_csv_cells_are_neutralised_against_formulas():
    frame = pd.DataFrame({"view": ["=HYPERLINK(\"http://x\",\"y\")", "A4C", "+cmd|' /C calc'!A0", "@SUM(1)",
                                   "-1.5", "\tx"], "n": [1, -2, 3, 4, 5, 6]})
    lines = csv_text(frame).splitlines()
    assert lines[1].startswith("\"'=HYPERLINK") and lines[2] == "A4C,-2"
    assert lines[3].startswith("'+cmd") and lines[4].startswith("'@SUM") and lines[5] == "-1.5,5"
    assert neutralise_cell(3) == 3 and neutralise_cell("-x") == "'-x"


def test_prepare_writes_manifests_through_the_neutralising_writer():
    import inspect

    import echocmr.evaluate as evaluate
    import echocmr.prepare as prepare

    for module in (prepare, evaluate):
        assert ".to_csv(" not in inspect.getsource(module)


def test_the_view_column_must_name_a_known_view():
    check_views(pd.DataFrame({"view": ["A4C", "PLAX", None, "other", "PSAX"]}), "echo index")
    hostile = pd.DataFrame({"view": ["A4C", "=HYPERLINK(\"http://x\")", "DOE^JANE 1961-02-03"]})
    with pytest.raises(ConfigError) as err:
        check_views(hostile, "echo index")
    message = str(err.value)
    assert "2 row(s)" in message and "lines 3, 4" in message
    assert "HYPERLINK" not in message and "DOE" not in message
