"""Ingestion of every accepted format: syntaxes, photometrics, containers, timing, geometry."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pydicom
import pytest

import dicom_factory as F
from echocmr.config import IngestLimits
from echocmr.errors import InputError
from echocmr.ingest import read_clip, read_study
from echocmr.ingest.resize import resample_indices

TEST_FILES = Path(os.path.dirname(pydicom.__file__)) / "data" / "test_files"


@pytest.fixture(scope="module")
def scene():
    return F.make_scene(240, 320, 8, seed=3)


@pytest.fixture(scope="module")
def reference(scene, tmp_path_factory):
    """Output of the lossless RGB explicit-LE file: every lossless encoding must match it."""
    path = F.write_dicom(tmp_path_factory.mktemp("ref") / "ref.dcm", scene, syntax="explicit_le", photometric="RGB")
    return read_clip(path)


LOSSLESS = [
    ("explicit_le", "RGB"), ("implicit_le", "RGB"), ("explicit_be", "RGB"), ("explicit_le", "YBR_FULL"),
    ("jpeg_lossless", "RGB"), ("jpeg_lossless_sv1", "RGB"), ("jpegls", "RGB"), ("j2k_lossless", "RGB"),
    ("rle", "RGB"),
]
GREY = [("explicit_le", "MONOCHROME2"), ("explicit_le", "MONOCHROME1"), ("implicit_le", "MONOCHROME2"),
        ("explicit_be", "MONOCHROME2"), ("rle", "MONOCHROME2"), ("jpegls", "MONOCHROME2"),
        ("j2k_lossless", "MONOCHROME2"), ("jpeg_lossless", "MONOCHROME2")]
LOSSY = [("jpeg_baseline", "YBR_FULL_422"), ("jpeg_baseline", "MONOCHROME2"), ("jpeg_extended", "YBR_FULL_422"),
         ("explicit_le", "YBR_FULL_422"), ("explicit_le", "PALETTE COLOR"), ("j2k", "RGB"), ("jpegls_near", "RGB")]


@pytest.mark.parametrize("syntax,photometric", LOSSLESS)
def test_lossless_colour_encodings_match_exactly(syntax, photometric, scene, reference, tmp_path):
    clip = read_clip(F.write_dicom(tmp_path / "a.dcm", scene, syntax=syntax, photometric=photometric))
    assert clip.frames.shape == (8, 112, 112) and clip.frames.dtype == np.uint8
    np.testing.assert_array_equal(clip.frames, reference.frames)
    assert clip.sector == reference.sector
    assert clip.fps == pytest.approx(50.0) and clip.fps_source == "FrameTime"


@pytest.mark.parametrize("syntax,photometric", GREY + LOSSY)
def test_other_encodings_close_to_reference(syntax, photometric, scene, reference, tmp_path):
    clip = read_clip(F.write_dicom(tmp_path / "a.dcm", scene, syntax=syntax, photometric=photometric))
    assert clip.frames.shape == (8, 112, 112)
    diff = np.abs(clip.frames.astype(int) - reference.frames.astype(int))
    # Grey sources keep the (now grey) ECG line inside the sector; lossy codecs add noise.
    assert diff.mean() < 6.0
    assert np.percentile(diff, 90) < 24  # lossy J2K on pure speckle is the noisiest


def test_exact_round_trip_112(tmp_path):
    """A 112×112 MONOCHROME2 clip whose region is the whole frame and whose content lies inside
    the inscribed fan comes back bit-exact (crop = identity, no resize needed)."""
    rng = np.random.default_rng(0)
    fan = F.fan_mask(112, 112, (56.0, 0.0), 112.0, 30.0)  # well inside the inscribed ±30° fan
    frames = (rng.integers(1, 255, (5, 112, 112)) * fan).astype(np.uint8)
    ds = _mono_dataset(frames, region=(0, 0, 112, 112), apex=(56, 0))
    clip = read_clip(F.to_bytes(ds))
    np.testing.assert_array_equal(clip.frames, frames)
    assert clip.n_frames == 5 and clip.fps == pytest.approx(25.0)
    assert clip.pixel_spacing_mm == pytest.approx(0.5)


def test_exact_round_trip_cubic_downscale(tmp_path):
    """224×224 → 112×112 equals OpenCV's cubic resize of the same (already fan-only) frames."""
    rng = np.random.default_rng(1)
    fan = F.fan_mask(224, 224, (112.0, 0.0), 224.0, 30.0)
    frames = (rng.integers(1, 255, (3, 224, 224)) * fan).astype(np.uint8)
    clip = read_clip(F.to_bytes(_mono_dataset(frames, region=(0, 0, 224, 224), apex=(112, 0))))
    expected = np.stack([cv2.resize(f, (112, 112), interpolation=cv2.INTER_CUBIC) for f in frames])
    np.testing.assert_array_equal(clip.frames, expected)
    assert clip.pixel_spacing_mm == pytest.approx(1.0)


def _mono_dataset(frames: np.ndarray, region: tuple[int, int, int, int], apex: tuple[int, int]):
    t, rows, cols = frames.shape
    scene = F.Scene(np.repeat(frames[..., None], 3, axis=3), np.ones((rows, cols), bool), np.zeros((rows, cols), bool),
                    np.zeros((t, rows, cols), bool), apex, float(rows), 45.0, region, dict(F.PHI_DEFAULTS))
    ds = F.base_dataset(scene, fps=25.0)
    ds.SequenceOfUltrasoundRegions[0].PhysicalDeltaX = ds.SequenceOfUltrasoundRegions[0].PhysicalDeltaY = 0.05
    ds.PhotometricInterpretation, ds.SamplesPerPixel = "MONOCHROME2", 1
    ds.PixelData = frames.tobytes()
    F._meta(ds, pydicom.uid.ExplicitVRLittleEndian)
    return ds


@pytest.mark.parametrize("tag,expected", [("FrameTime", "FrameTime"), ("FrameTimeVector", "FrameTimeVector"),
                                          ("CineRate", "CineRate"),
                                          ("RecommendedDisplayFrameRate", "RecommendedDisplayFrameRate"),
                                          ("none", "default")])
def test_fps_sources(tag, expected, scene, tmp_path):
    clip = read_clip(F.write_dicom(tmp_path / "a.dcm", scene, fps=40.0, fps_tag=tag))
    assert clip.fps_source == expected
    assert clip.fps == pytest.approx(30.0 if expected == "default" else 40.0)


def test_target_fps_resampling(scene, tmp_path):
    clip = read_clip(F.write_dicom(tmp_path / "a.dcm", scene, fps=40.0), target_fps=20.0)
    full = read_clip(F.write_dicom(tmp_path / "a.dcm", scene, fps=40.0))
    assert clip.fps == 20.0 and clip.n_frames == 4
    np.testing.assert_array_equal(clip.frames, full.frames[[0, 2, 4, 6]])
    np.testing.assert_array_equal(resample_indices(10, 30.0, 60.0), np.repeat(np.arange(10), 2))


def test_sector_from_pixels_matches_truth(scene, tmp_path):
    clip = read_clip(F.write_dicom(tmp_path / "a.dcm", scene, regions=False))
    s = clip.sector
    assert s.source == "pixels"
    assert abs(s.apex[0] - scene.apex[0]) < 4 and abs(s.apex[1] - scene.apex[1]) < 6
    assert abs(s.angle_left + scene.half_angle) < 3 and abs(s.angle_right - scene.half_angle) < 3
    assert abs(s.radius - scene.radius) / scene.radius < 0.04
    assert clip.pixel_spacing_mm is None


def test_sector_from_regions(scene, reference):
    s = reference.sector
    assert s.source == "regions" and s.bbox == scene.bbox
    side = max(s.bbox[2] - s.bbox[0], s.bbox[3] - s.bbox[1])  # the bounding square
    assert reference.pixel_spacing_mm == pytest.approx(0.3 * side / 112)


def test_oversized_region_is_clamped_or_ignored(scene, tmp_path):
    ds = F.base_dataset(scene)
    F.set_pixels(ds, scene, "RGB")
    F._meta(ds, pydicom.uid.ExplicitVRLittleEndian)
    reg = ds.SequenceOfUltrasoundRegions[0]
    reg.RegionLocationMaxY1 = 250  # 4 % beyond the 240 rows: clamped
    assert read_clip(F.to_bytes(ds)).sector.source == "regions"
    reg.RegionLocationMaxX1, reg.RegionLocationMaxY1 = 5000, 5000  # nonsense: fall back to pixels
    assert read_clip(F.to_bytes(ds)).sector.source == "pixels"


def _write_video(path: Path, scene, fourcc: str, fps: float = 25.0) -> Path:
    t, h, w = scene.rgb.shape[:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
    assert writer.isOpened()
    for f in scene.rgb:
        writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


@pytest.mark.parametrize("fourcc,ext", [("MJPG", "avi"), ("mp4v", "mp4")])
def test_video_containers(fourcc, ext, scene, tmp_path, monkeypatch):
    import tempfile

    private = tmp_path / "tmp"
    private.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private))  # where the decoder's temp copy goes
    path = _write_video(tmp_path / f"v.{ext}", scene, fourcc)
    clip = read_clip(path)
    assert clip.source_format == "video" and clip.n_frames == 8
    assert clip.fps == pytest.approx(25.0) and clip.fps_source == "container"
    assert clip.sector.source == "pixels"
    # Name means nothing: the same bytes under a misleading name are still a video.
    renamed = tmp_path / "clip.dcm"
    renamed.write_bytes(path.read_bytes())
    assert read_clip(renamed).source_format == "video"
    assert list(private.iterdir()) == []  # the private temporary copy is gone


@pytest.mark.parametrize("ext", [".png", ".jpg"])
def test_stills(ext, scene, tmp_path):
    ok, buf = cv2.imencode(ext, cv2.cvtColor(scene.rgb[0], cv2.COLOR_RGB2BGR))
    clip = read_clip(buf.tobytes())
    assert clip.n_frames == 1 and clip.source_format == "image" and clip.fps_source == "default"
    assert clip.frames[0].max() > 0


def test_read_study_single_file(scene, tmp_path):
    items = read_study(F.write_dicom(tmp_path / "a.dcm", scene), name="file 3")
    assert len(items) == 1 and items[0].display_name == "file 3" and items[0].error is None


# -- pydicom's bundled files (no network: only those shipped with the wheel) ------------------
def test_pydicom_us_multiframe_jpeg_ybr():
    """examples_ybr_color.dcm: a real 30-frame US JPEG-baseline YBR_FULL_422 cine (no regions):
    the fan is found from motion; the side text and the depth scale fall outside it."""
    clip = read_clip(TEST_FILES / "examples_ybr_color.dcm")
    assert clip.n_frames == 30 and clip.frames.shape[1:] == (112, 112) and clip.sector.source == "pixels"
    x0, y0, x1, y1 = clip.sector.bbox
    assert x0 > 30 and x1 < 310 and y1 < 215  # the text columns (x < 30, x > 290) and the bottom bar
    assert clip.preview[:, :30].max() == 0 and clip.preview[215:].max() == 0


@pytest.mark.parametrize("name", ["examples_rgb_color.dcm", "examples_palette.dcm", "examples_jpeg2k.dcm"])
def test_pydicom_us_single_frames_ingest_or_specific_refusal(name):
    try:
        clip = read_clip(TEST_FILES / name)
    except InputError as exc:
        assert exc.code in {"no_sector", "unsupported_photometric"}
    else:
        assert clip.n_frames == 1


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm", "MR_small_RLE.dcm", "693_J2KI.dcm"])
def test_pydicom_non_us_rejected(name):
    with pytest.raises(InputError) as err:
        read_clip(TEST_FILES / name)
    assert err.value.code == "not_ultrasound"
    assert "not an ultrasound clip" in str(err.value)


@pytest.mark.parametrize("name,code", [("image_dfl.dcm", "deflated_syntax"), ("JPGExtended.dcm", "not_ultrasound"),
                                       ("no_meta.dcm", "unknown_format"), ("liver_1frame.dcm", "not_ultrasound")])
def test_pydicom_other_files_have_specific_codes(name, code):
    with pytest.raises(InputError) as err:
        read_clip(TEST_FILES / name)
    assert err.value.code == code


def test_limits_are_parameters(scene, tmp_path):
    path = F.write_dicom(tmp_path / "a.dcm", scene)
    with pytest.raises(InputError) as err:
        read_clip(path, limits=IngestLimits(max_frames=4))
    assert err.value.code == "too_many_frames"
