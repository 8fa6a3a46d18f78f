"""16-bit PALETTE COLOR ultrasound (as some vendors, e.g. ALOKA, export it) is mapped through its
palette to 8-bit RGB like the 8-bit palette; other 16-bit data is still refused."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian

import dicom_factory as F
from echocmr.errors import InputError
from echocmr.ingest import read_clip

ECG_INDEX = 60000


def _palette16(scene: F.Scene, path, syntax: str = ExplicitVRLittleEndian, lut_bits: int = 16):
    """A 16-bit-index palette file: grey g -> index g * 200 (0..51000), the ECG -> index 60000."""
    ds = F.base_dataset(scene)
    idx = scene.grey.astype(np.uint16) * 200
    idx[scene.ecg] = ECG_INDEX
    lut = np.zeros((65536, 3), np.uint16)
    lut[:51001] = (np.arange(51001) // 200)[:, None] * (257 if lut_bits == 16 else 1)
    lut[ECG_INDEX] = np.array(F.ECG_RGB, np.uint16) * (257 if lut_bits == 16 else 1)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "PALETTE COLOR"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    order = ">u2" if syntax == ExplicitVRBigEndian else "<u2"
    for i, c in enumerate(("Red", "Green", "Blue")):
        setattr(ds, f"{c}PaletteColorLookupTableDescriptor", [0, 0, lut_bits])  # 0 = 65536 entries
        ds.add_new(pydicom.datadict.tag_for_keyword(f"{c}PaletteColorLookupTableData"), "OW",
                   lut[:, i].astype(order).tobytes())
    ds.PixelData = idx.astype(order).tobytes()
    ds["PixelData"].VR = "OW"
    F._meta(ds, syntax)
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.fixture(scope="module")
def scene():
    return F.make_scene(120, 160, n_frames=5, seed=4)


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ExplicitVRBigEndian])
def test_16bit_palette_matches_the_8bit_palette_of_the_same_scene(scene, tmp_path, syntax):
    eight = F.write_dicom(tmp_path / "p8.dcm", scene, photometric="PALETTE COLOR")
    sixteen = _palette16(scene, tmp_path / "p16.dcm", syntax)
    a, b = read_clip(eight), read_clip(sixteen)
    assert b.n_frames == 5 and b.frames.shape == a.frames.shape
    assert np.abs(a.frames.astype(int) - b.frames.astype(int)).mean() < 2.0
    assert b.preview is not None and b.preview.dtype == np.uint8


def test_8bit_palette_entries_in_a_16bit_palette_file(scene, tmp_path):
    clip = read_clip(_palette16(scene, tmp_path / "p16_8.dcm", lut_bits=8))
    assert clip.n_frames == 5 and clip.frames.max() > 100  # entries are not shifted to black


def test_other_16bit_data_is_still_refused(scene, tmp_path):
    ds = F.base_dataset(scene)
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelData = (scene.grey.astype(np.uint16) * 257).tobytes()
    F._meta(ds, ExplicitVRLittleEndian)
    ds.save_as(tmp_path / "m16.dcm", enforce_file_format=True)
    with pytest.raises(InputError) as refused:
        read_clip(tmp_path / "m16.dcm")
    assert refused.value.code == "unsupported_bit_depth"
