"""Full-size studies: which clips feed which view model (stills and short clips never do), an
upload of stills only is refused, and ``echocmr synth --full-studies`` writes real-size studies."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import numpy as np
import pytest

from dicom_factory import make_scene, write_dicom
from echocmr.bundle import active_bundle_dir, load_bundle
from echocmr.clip_selection import SelectionPolicy
from echocmr.config import SynthConfig
from echocmr.errors import InputError
from echocmr.study_prediction import ingest_study, predict_study
from echocmr.synth.full_study import CORE, plan_study


@pytest.fixture(scope="module")
def bundle():
    return load_bundle(str(active_bundle_dir()))


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, bytes]:
    root = tmp_path_factory.mktemp("full_study")
    lengths = {"still": 1, "short": 10, "long": 40}
    return {name: write_dicom(root / f"{name}.dcm", make_scene(96, 128, n_frames=n, seed=k)).read_bytes()
            for k, (name, n) in enumerate(lengths.items())}


def test_stills_and_short_clips_never_feed_a_view_model(bundle, files):
    items = ingest_study([(n, files[n]) for n in ("still", "short", "long")])
    assert [i.clip.n_frames for i in items] == [1, 10, 40]
    result = predict_study(items, bundle, {i.index: "A4C" for i in items})
    still, short, long = result.clips
    assert still.used_for == "" and still.left_out.startswith("still image") and not still.predictions
    assert short.used_for == "" and "shorter than the A4C model's 16-frame window" in short.left_out
    assert long.used_for == "A4C" and long.left_out == "" and long.predictions
    report = result.to_json()
    assert report["views_fed"] == {"A4C": [long.display_name]}
    assert [c["left_out"] is None for c in report["clips"]] == [False, False, True]
    assert result.per_view["A4C"] == pytest.approx(long.predictions)


def test_unconfident_views_are_left_out_with_the_reason(bundle, files):
    items = ingest_study([("long", files["long"])])
    result = predict_study(items, bundle, policy=SelectionPolicy(min_view_confidence=1.01))
    (clip,) = result.clips
    assert not result.per_view and not result.fused and clip.used_for == ""
    assert "confident" in clip.left_out or "no model uses it" in clip.left_out


def test_a_view_mean_uses_every_clip_that_feeds_it(bundle, files):
    items = ingest_study([("a", files["long"]), ("b", files["long"][:-2] + files["long"][-2:])])
    result = predict_study(items, bundle, {0: "A2C", 1: "A2C"})
    outputs = [c.predictions for c in result.clips]
    assert all(c.used_for == "A2C" for c in result.clips)
    for name, value in result.per_view["A2C"].items():
        assert value == pytest.approx(np.mean([o[name] for o in outputs]))


def test_an_upload_of_only_stills_is_refused_plainly(bundle, files):
    items = ingest_study([("s1", files["still"]), ("s2", files["still"])])
    with pytest.raises(InputError) as refused:
        predict_study(items, bundle)
    assert refused.value.code == "only_stills" and "still image" in str(refused.value)


def test_plan_of_a_full_study_has_every_kind_of_file():
    plan = plan_study(np.random.default_rng(1), 80)
    kinds = {k for _, k in plan}
    assert len(plan) == 80 and kinds == {"cine", "colour", "doppler", "still"}
    for view in ("A4C", "A2C", "PLAX", "A3C", "PSAX"):
        assert sum(1 for v, k in plan if v == view and k == "cine") >= sum(1 for v, _ in CORE if v == view)


@pytest.mark.slow
def test_synth_full_studies_write_real_size_studies(tmp_path):
    from echocmr.synth import generate_cohort

    config = dataclasses.replace(SynthConfig.small(seed=2), n_patients=1, native_size=(96, 128),
                                 full_study_files=(24, 26))
    generate_cohort(config, tmp_path)
    clips = list(csv.DictReader(open(tmp_path / "ground_truth" / "clips.csv")))
    index = list(csv.DictReader(open(tmp_path / "echo_index.csv")))
    per_study: dict[str, int] = {}
    for row in clips:
        per_study[row["study_id"]] = per_study.get(row["study_id"], 0) + 1
    assert all(24 <= n <= 26 for n in per_study.values())
    views = {row["view"] for row in clips}
    assert "doppler" in views and any(v.endswith(" still") for v in views) and any(v.endswith(" colour") for v in views)
    stills = {row["file"] for row in clips if row["view"].endswith(" still")}
    assert stills and not stills & {row["file"] for row in index}  # stills are not cines
    assert all((tmp_path / row["file"]).is_file() for row in clips)
    assert len(list(Path(tmp_path, "dicom").rglob("*.dcm"))) == len(clips)


def test_synth_full_studies_flag():
    from echocmr.cli import build_parser
    from echocmr.commands.synth import config_from_args
    from echocmr.errors import ConfigError

    parse = build_parser().parse_args
    assert config_from_args(parse(["synth", "--out", "x", "--full-studies"])).full_study_files == (40, 120)
    assert config_from_args(parse(["synth", "--out", "x", "--full-studies", "60-80"])).full_study_files == (60, 80)
    assert config_from_args(parse(["synth", "--out", "x"])).full_study_files == (0, 0)
    with pytest.raises(ConfigError):
        config_from_args(parse(["synth", "--out", "x", "--full-studies", "5-10"]))


def test_test_time_windows_per_view_are_bounded():
    from echocmr.clip_selection import windows_per_clip

    assert [windows_per_clip(n, 4) for n in (1, 2, 3, 4, 5, 7, 13, 100)] == [4, 4, 4, 3, 2, 1, 1, 1]
