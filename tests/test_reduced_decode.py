"""Reduced-scale JPEG decode (echocmr.ingest.reduced): shape, bounded error, exact mode unchanged,
the recipe recorded and enforced."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

import dicom_factory as F
from echocmr.config import IngestLimits
from echocmr.errors import ConfigError
from echocmr.ingest import read_clip
from echocmr.ingest.dicom import DicomSource
from echocmr.ingest.reduced import choose_scale, reduced_shape
from echocmr.ingest.resize import CropPlan

REDUCED = IngestLimits(decode_threads=1, jpeg_decode="reduced")
EXACT = IngestLimits(decode_threads=1)


@pytest.fixture(scope="module")
def big_cine(tmp_path_factory) -> Path:
    """A scanner-sized (600×800) JPEG-baseline YBR_FULL_422 cine: the sector square is ~650 px."""
    scene = F.make_scene(600, 800, 8, seed=1)
    return F.write_dicom(tmp_path_factory.mktemp("cine") / "cine.dcm", scene, syntax="jpeg_baseline",
                         photometric="YBR_FULL_422")


def test_reduced_decode_shape_scale_and_bounded_error(big_cine):
    exact, reduced = read_clip(big_cine, limits=EXACT), read_clip(big_cine, limits=REDUCED)
    side = max(exact.sector.bbox[2] - exact.sector.bbox[0], exact.sector.bbox[3] - exact.sector.bbox[1])
    assert exact.decode_scale == 1 and reduced.decode_scale == choose_scale(exact.sector, 112) == 4
    assert side // 4 >= 112 > side // 8
    assert reduced.frames.shape == exact.frames.shape == (8, 112, 112) and reduced.frames.dtype == np.uint8
    diff = np.abs(reduced.frames.astype(np.int16) - exact.frames.astype(np.int16))
    # Measured 11.9 grey levels on average (bench/ingest.py): the exact path's cubic resize aliases
    # speckle; anything far above means a misplaced sector (a shifted fan differs by ~60).
    assert 0 < diff.mean() < 16
    # The same physical spacing, whatever the scale, and the sector reported in original pixels.
    assert reduced.sector == exact.sector
    assert reduced.pixel_spacing_mm == pytest.approx(exact.pixel_spacing_mm, rel=0.02)
    # De-identification still holds: outside the fan stays black (the fan's edge may move by a
    # pixel: its mask is drawn at the decoded scale).
    outside = cv2.erode((exact.frames.max(axis=0) == 0).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    assert outside.sum() > 1000 and reduced.frames[:, outside].max() == 0


def test_exact_mode_is_full_decode_plus_the_crop_plan(big_cine):
    """``read_clip``'s default decodes every frame in full: the same bytes as decoding by hand."""
    clip = read_clip(big_cine, limits=EXACT)
    assert IngestLimits().jpeg_decode == "exact" and np.array_equal(read_clip(big_cine).frames, clip.frames)
    with DicomSource(big_cine.read_bytes(), EXACT) as src:
        plan = CropPlan.build(clip.sector, 112, src.colour_order)
        by_hand = np.stack([plan.apply(cv2.imdecode(np.frombuffer(buf, np.uint8), cv2.IMREAD_COLOR))
                            for buf in src._fragments])  # noqa: SLF001 - the reference decode
    assert clip.burned_text == "none found" and np.array_equal(clip.frames, by_hand)


@pytest.mark.parametrize("syntax", ["jpeg_baseline", "explicit_le"])
def test_reduced_mode_keeps_small_sectors_and_other_syntaxes_exact(tmp_path, syntax):
    """A sector under 224 px (no 1/2 decode keeps 112) or a non-JPEG file: byte-identical clips."""
    scene = F.make_scene(160, 200, 6, seed=2) if syntax == "jpeg_baseline" else F.make_scene(600, 800, 4, seed=2)
    path = F.write_dicom(tmp_path / "a.dcm", scene, syntax=syntax)
    exact, reduced = read_clip(path, limits=EXACT), read_clip(path, limits=REDUCED)
    assert reduced.decode_scale == 1 and np.array_equal(reduced.frames, exact.frames)


def test_reduced_shape_rounds_up_like_libjpeg(big_cine):
    with DicomSource(big_cine.read_bytes(), EXACT) as src:
        for k in (2, 4, 8):
            assert src.reduce(k) == reduced_shape((600, 800), k)
            assert next(src.iter([0])).shape[:2] == reduced_shape((600, 800), k)


def test_unknown_recipe_is_refused(big_cine):
    from echocmr.config import PrepareConfig
    from echocmr.prepare import PrepareSources, prepare_dataset

    with pytest.raises(ConfigError, match="jpeg_decode must be one of"):
        prepare_dataset(PrepareSources(big_cine, big_cine), big_cine.parent / "out",
                        PrepareConfig(jpeg_decode="fast"), salt=b"s")


def test_prepare_records_the_recipe_per_clip_and_in_prepare_json(big_cine, tmp_path):
    from echocmr.prepare import _ingest_one

    (tmp_path / "clips").mkdir()
    for mode, scale in (("reduced", 4), ("exact", 1)):
        record = _ingest_one(("k", str(big_cine), str(tmp_path / "clips"), b"salt", 0.0, mode))
        assert record["status"] == "ok" and record["jpeg_decode"] == mode and record["decode_scale"] == scale
        saved = np.load(tmp_path / "clips" / f"{record['clip_id']}.npy")
        assert np.array_equal(saved, read_clip(big_cine, limits=IngestLimits(jpeg_decode=mode), salt=b"salt").frames)


def test_models_are_used_with_their_recipe(tmp_path):
    from echocmr.prepared import check_jpeg_decode, prepared_jpeg_decode

    assert prepared_jpeg_decode(tmp_path) == "exact"  # sets from before the recipe was recorded
    (tmp_path / "prepare.json").write_text(json.dumps({"config": {"jpeg_decode": "reduced"}}))
    assert prepared_jpeg_decode(tmp_path) == "reduced"
    check_jpeg_decode("reduced", "reduced", "the A4C model")
    with pytest.raises(ConfigError, match="prepare the data again with --exact-decode"):
        check_jpeg_decode("exact", "reduced", "the A4C model")


def test_published_models_record_exact_decoding():
    """The published weights' recorded preprocessing decodes every frame in full."""
    from echocmr.model_runner import LoadedModel
    from echocmr.official import view_checkpoint_meta

    meta = view_checkpoint_meta("A4C", [])
    assert LoadedModel(None, meta, ()).jpeg_decode == "exact"
    assert LoadedModel(None, {"data": {"target_fps": 0.0}}, ()).jpeg_decode == "exact"  # older checkpoints


def test_uploads_are_decoded_with_the_bundles_recipe():
    from echocmr.bundle import ModelBundle
    from echocmr.model_runner import LoadedModel
    from echocmr.study_prediction import bundle_jpeg_decode

    def model(mode: str | None) -> LoadedModel:
        return LoadedModel(None, {"data": {} if mode is None else {"jpeg_decode": mode}}, ())

    def bundle(views: dict, classifier) -> ModelBundle:
        return ModelBundle(Path("b"), {}, views, classifier, None)

    assert bundle_jpeg_decode(bundle({"A4C": model(None)}, model(None))) == "exact"  # the shipped model
    assert bundle_jpeg_decode(bundle({"A4C": model("reduced")}, model("reduced"))) == "reduced"
    with pytest.raises(ConfigError, match="decoded in different ways"):
        bundle_jpeg_decode(bundle({"A4C": model("reduced")}, model("exact")))
