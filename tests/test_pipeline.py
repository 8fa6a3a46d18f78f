"""End to end on a tiny synthetic cohort: synth → prepare → train → evaluate → bundle → predict."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pandas as pd
import pytest

from echocmr import cli
from echocmr.config import PrepareConfig
from echocmr.errors import ConfigError
from echocmr.prepare import PrepareSources, prepare_dataset
from echocmr.prepared import read_manifest, summarise
from echocmr.targets import GLOBAL_TARGETS, TARGETS

SALT = b"test-salt"


@pytest.fixture(scope="module")
def cohort(synthetic_cohort):
    return synthetic_cohort  # tests/conftest.py: built once per session


@pytest.fixture(scope="module")
def prepared(prepared_cohort):
    return prepared_cohort


def test_prepare_writes_a_patient_level_manifest(cohort, prepared):
    manifest = read_manifest(prepared)
    index = pd.read_csv(cohort / "echo_index.csv", dtype=str)
    assert len(manifest) == len(index)  # one row per input file, rejected ones included
    ok = manifest[manifest["status"] == "ok"]
    assert len(ok) > 0 and set(ok["split"]) == {"train", "val", "test"}
    assert ok.groupby("patient")["split"].nunique().max() == 1  # no patient in two splits
    for clip_id in ok["clip_id"]:
        frames = np.load(prepared / "clips" / f"{clip_id}.npy")
        assert frames.dtype == np.uint8 and frames.shape[1:] == (112, 112)
    assert set(t.name for t in TARGETS) <= set(manifest.columns)
    unpaired = manifest[manifest["status"] == "unpaired"]
    assert unpaired["clip_id"].isna().all()  # unpaired studies are not even ingested
    # PHI-free: no original identifier or file name appears anywhere in the manifest.
    text = (prepared / "manifest.csv").read_text()
    for patient in index["patient_id"].unique():
        assert patient not in text
    assert ".dcm" not in text
    summary = summarise(prepared)
    assert summary["synthetic"] is True and sum(summary["studies"].values()) == ok["study"].nunique()


def test_prepare_resumes_without_redoing_work(cohort, prepared, monkeypatch):
    import echocmr.prepare as prep

    def fail(*_):
        raise AssertionError("a finished file was ingested again")

    monkeypatch.setattr(prep, "_ingest_one", fail)
    before = (prepared / "manifest.csv").read_bytes()
    sources = PrepareSources.from_cohort(cohort, known_views=cohort / "ground_truth" / "clips.csv")
    again = prepare_dataset(sources, prepared, PrepareConfig(use_known_views=True, workers=1), salt=SALT)
    assert (prepared / "manifest.csv").read_bytes() == before and len(again) == len(read_manifest(prepared))


@pytest.mark.slow  # in `make test`, not the quick run (> 5 s)
def test_a_bad_file_is_recorded_not_fatal(cohort, tmp_path):
    broken = tmp_path / "cohort"
    shutil.copytree(cohort, broken)
    index = pd.read_csv(broken / "echo_index.csv", dtype=str)
    (broken / index["file"].iloc[0]).write_bytes(b"not a dicom file at all")
    sources = PrepareSources.from_cohort(broken, known_views=broken / "ground_truth" / "clips.csv")
    manifest = prepare_dataset(sources, tmp_path / "prepared", PrepareConfig(use_known_views=True, workers=1), salt=SALT)
    first = manifest.iloc[0]
    assert first["status"] in ("rejected", "unpaired")
    assert (manifest["status"] == "ok").sum() >= len(manifest) // 2


@pytest.fixture(scope="module")
def prepared_25fps(cohort, tmp_path_factory):
    out = tmp_path_factory.mktemp("prepared-25fps")
    sources = PrepareSources.from_cohort(cohort, known_views=cohort / "ground_truth" / "clips.csv")
    prepare_dataset(sources, out, PrepareConfig(use_known_views=True, workers=2, target_fps=25.0), salt=SALT)
    return out


def _ok_clips(prepared) -> pd.DataFrame:
    manifest = read_manifest(prepared)
    return manifest[manifest["status"] == "ok"].set_index("clip_id")


@pytest.mark.slow  # in `make test`, not the quick run (> 5 s)
def test_prepare_resamples_every_clip_to_the_target_frame_rate(cohort, prepared, prepared_25fps):
    from echocmr.config import IngestLimits
    from echocmr.ingest import read_clip
    from echocmr.ingest.resize import resample_indices
    from echocmr.prepared import prepared_target_fps

    native, common = _ok_clips(prepared), _ok_clips(prepared_25fps)
    assert set(native.index) == set(common.index) and (native["fps"] > 25).all()
    assert (common["fps"] == 25.0).all() and prepared_target_fps(prepared_25fps) == 25.0
    checked = 0
    for file in pd.read_csv(cohort / "echo_index.csv", dtype=str)["file"]:
        # The manifest's fps is rounded: take the exact one; prepare's JPEG recipe ("reduced").
        clip = read_clip(cohort / file, salt=SALT, limits=IngestLimits(jpeg_decode="reduced"))
        if clip.clip_id not in common.index:
            continue
        expected = clip.frames[resample_indices(clip.n_frames, clip.fps, 25.0)]
        assert np.array_equal(np.load(prepared_25fps / "clips" / f"{clip.clip_id}.npy"), expected)
        assert common.loc[clip.clip_id, "n_frames"] == len(expected) < clip.n_frames
        checked += 1
    assert checked == len(common)


@pytest.mark.slow  # in `make test`, not the quick run (> 5 s)
def test_prepare_again_at_another_rate_reingests_rather_than_mixing_rates(cohort, prepared, tmp_path):
    out = tmp_path / "prepared"
    shutil.copytree(prepared, out)
    sources = PrepareSources.from_cohort(cohort, known_views=cohort / "ground_truth" / "clips.csv")
    prepare_dataset(sources, out, PrepareConfig(use_known_views=True, workers=1, target_fps=25.0), salt=SALT)
    ok = _ok_clips(out)
    assert (ok["fps"] == 25.0).all()
    for clip_id, row in ok.iterrows():
        assert len(np.load(out / "clips" / f"{clip_id}.npy")) == row["n_frames"]
    with pytest.raises(ConfigError, match="target_fps must be 0"):
        prepare_dataset(sources, out, PrepareConfig(use_known_views=True, target_fps=float("nan")), salt=SALT)


@pytest.fixture(scope="module")
def bundle(tiny_bundle):
    return tiny_bundle


def test_evaluate_writes_a_results_bundle(bundle):
    metrics = json.loads((bundle / "results" / "metrics.json").read_text())
    assert metrics and set(metrics[0]) == {"target", "view", "metric", "value", "ci_low", "ci_high", "n", "n_positive",
                                           "note"}
    assert {"global"} <= {m["view"] for m in metrics}
    views = json.loads((bundle / "results" / "summary.json").read_text())["view_classifier"]
    assert views["split"] == "test" and views["n"] > 0 and 0 <= views["accuracy"] <= 1
    assert set(views["recall"]) <= {"A4C", "A2C", "PLAX", "other"}
    meta = json.loads((bundle / "bundle.json").read_text())
    assert meta["synthetic"] is True and set(meta["views"]) == {"A4C", "A2C", "PLAX"}


def test_predict_a_study_end_to_end(bundle, cohort, capsys):
    from echocmr.bundle import load_bundle
    from echocmr.clip_selection import SelectionPolicy
    from echocmr.study_prediction import ingest_study, predict_study

    index = pd.read_csv(cohort / "echo_index.csv", dtype=str)
    files = [cohort / f for f in index[index["study_id"] == index["study_id"].iloc[0]]["file"]]
    loaded = load_bundle(str(bundle))
    items = ingest_study([(f.name, f.read_bytes()) for f in files])
    unsure = SelectionPolicy(min_view_confidence=0.0)  # a one-epoch classifier is never confident
    result = predict_study(items, loaded, policy=unsure)
    assert len(result.clips) + len(result.rejected) == len(files)
    assert set(result.fused) == set(GLOBAL_TARGETS)
    for p in result.fused.values():
        assert np.isfinite(p.value) and (0 <= p.value <= 1 or p.kind == "continuous")
    # A user's override is honoured and re-runs only the models.
    first = result.clips[0]
    other = "A2C" if first.view != "A2C" else "A4C"
    overridden = predict_study(items, loaded, {first.index: other}, policy=unsure)
    assert overridden.clips[0].view == other and overridden.clips[0].view_overridden
    assert cli.main(["predict", "--model", str(bundle), "--json", "--min-view-confidence", "0",
                     *map(str, files)]) in (0, 1)
    out = json.loads(capsys.readouterr().out)
    assert out["synthetic_model"] is True and set(out["global"]) == set(GLOBAL_TARGETS)
    assert all(f.name not in json.dumps(out) for f in files)


@pytest.mark.slow  # in `make test`, not the quick run (> 5 s)
def test_a_model_sees_uploads_at_its_training_frame_rate(bundle, cohort, prepared_25fps):
    """Checkpoints carry the prepared set's frame rate; predict resamples uploads to it."""
    from echocmr.bundle import load_bundle
    from echocmr.clip_selection import SelectionPolicy
    from echocmr.ingest.resize import resample_indices
    from echocmr.model_runner import predict_clips, predict_prepared
    from echocmr.study_prediction import ingest_study, predict_study

    loaded = load_bundle(str(bundle))
    assert all(m.target_fps == 0.0 for m in [*loaded.view_models.values(), loaded.view_classifier])
    # A model trained at each file's own rate refuses a set resampled to 25 frames/s.
    with pytest.raises(ConfigError, match="trained on clips at each file's own frame rate.*--target-fps 0"):
        predict_prepared(loaded.view_models["A4C"], prepared_25fps, "test", "A4C")

    def at_25(model):
        return dataclasses.replace(model, meta={**model.meta, "data": {**model.meta["data"], "target_fps": 25.0}})

    at25 = dataclasses.replace(loaded, view_models={v: at_25(m) for v, m in loaded.view_models.items()},
                               view_classifier=at_25(loaded.view_classifier))
    index = pd.read_csv(cohort / "echo_index.csv", dtype=str)
    files = [cohort / f for f in index[index["study_id"] == index["study_id"].iloc[0]]["file"]]
    items = ingest_study([(f.name, f.read_bytes()) for f in files])
    result = predict_study(items, at25, policy=SelectionPolicy(min_view_confidence=0.0))
    assert result.clips and all(c.clip.fps > 25 for c in result.clips)
    used = [c for c in result.clips if c.used_for]
    assert used
    for clip in used:
        model = loaded.view_models[clip.view]
        resampled = clip.clip.frames[resample_indices(clip.clip.n_frames, clip.clip.fps, 25.0)]
        expected = predict_clips(model, [resampled])[0]
        assert np.allclose([clip.predictions[name] for name in model.outputs], expected)


def test_prepare_takes_views_from_the_view_classifier_at_its_frame_rate(bundle, cohort, prepared, tmp_path,
                                                                       monkeypatch):
    """Real data has no known views: the classifier assigns them, on clips at its training rate."""
    import echocmr.model_runner as model_runner
    from echocmr.ingest.resize import resample_indices

    classifier = tmp_path / "classifier"
    meta = json.loads((bundle / "view_classifier.json").read_text())
    meta["data"]["target_fps"] = 25.0  # as if trained on a 25 frames/s set
    classifier.with_suffix(".json").write_text(json.dumps(meta))
    shutil.copy(bundle / "view_classifier.safetensors", classifier.with_suffix(".safetensors"))
    seen, real = [], model_runner.classify_views

    def recording(model, frames):
        seen.extend(map(len, frames))
        return real(model, frames)

    monkeypatch.setattr(model_runner, "classify_views", recording)
    out = tmp_path / "prepared"
    shutil.copytree(prepared, out)  # clips are cached: only the views are assigned again
    sources = PrepareSources.from_cohort(cohort, view_classifier=classifier)
    manifest = prepare_dataset(sources, out, PrepareConfig(workers=1), salt=SALT)
    ok = manifest[manifest["status"] == "ok"]
    assert (ok["view_source"] == "classifier").all() and ok["view"].isin(["A4C", "A2C", "PLAX", "other"]).all()
    assert ok["view_confidence"].between(0.25, 1.0).all()  # a softmax maximum over 4 labels
    assert seen == [len(resample_indices(n, fps, 25.0)) for n, fps in zip(ok["n_frames"], ok["fps"])]
