"""Write rendered clips as Ultrasound Multi-frame Image Storage DICOM files.

Two encodings, as found in hospital exports: JPEG Baseline (encapsulated, one JPEG per frame,
YBR_FULL_422) and uncompressed Explicit VR Little Endian RGB. Files carry fake but realistic PHI
(the canaries of the de-identification tests) and, on most files, a SequenceOfUltrasoundRegions
describing the sector.
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID, ExplicitVRLittleEndian, JPEGBaseline8Bit

from ..atomic import atomic_write
from .render import ClipSpec

US_MULTIFRAME_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.3.1"
JPEG_QUALITY = 85


@dataclass(frozen=True)
class DicomMeta:
    """Header content of one file (identifiers are fake; UIDs are deterministic)."""

    patient_name: str
    patient_id: str
    birth_date: dt.date
    sex: str
    institution: str
    referring: str
    study_date: dt.date
    study_time: str  # HHMMSS
    accession: str
    study_uid: str
    series_uid: str
    sop_uid: str
    series_number: int
    instance_number: int
    manufacturer: str
    model: str
    compressed: bool
    with_regions: bool
    burned_in_tag: bool  # write BurnedInAnnotation "YES" (some real files omit it)


def _da(date: dt.date) -> str:
    return date.strftime("%Y%m%d")


def _patient_study(ds: Dataset, meta: DicomMeta) -> None:
    ds.PatientName = meta.patient_name
    ds.PatientID = meta.patient_id
    ds.PatientBirthDate = _da(meta.birth_date)
    ds.PatientSex = meta.sex
    ds.InstitutionName = meta.institution
    ds.ReferringPhysicianName = meta.referring
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = _da(meta.study_date)
    ds.AcquisitionDateTime = _da(meta.study_date) + meta.study_time
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = meta.study_time
    ds.AccessionNumber = meta.accession
    ds.StudyID = meta.accession[-6:]
    ds.StudyInstanceUID = meta.study_uid
    ds.SeriesInstanceUID = meta.series_uid
    ds.SeriesNumber = meta.series_number
    ds.InstanceNumber = meta.instance_number
    ds.Modality = "US"
    ds.Manufacturer = meta.manufacturer
    ds.ManufacturerModelName = meta.model
    ds.ImageType = ["ORIGINAL", "PRIMARY", "CARDIAC", ""]


def _regions(spec: ClipSpec) -> Dataset:
    """One SequenceOfUltrasoundRegions item: the sector's bounding box, spacing and apex."""
    x0, y0, x1, y1 = spec.bbox
    cm_per_px = spec.depth_cm / spec.radius
    item = Dataset()
    item.RegionSpatialFormat = 1  # 2D
    item.RegionDataType = 1  # tissue
    item.RegionFlags = 0
    item.RegionLocationMinX0 = x0
    item.RegionLocationMinY0 = y0
    item.RegionLocationMaxX1 = x1 - 1
    item.RegionLocationMaxY1 = y1 - 1
    item.ReferencePixelX0 = int(round(spec.apex[0]))
    item.ReferencePixelY0 = int(round(spec.apex[1]))
    item.PhysicalUnitsXDirection = 3  # cm
    item.PhysicalUnitsYDirection = 3
    item.PhysicalDeltaX = round(cm_per_px, 6)
    item.PhysicalDeltaY = round(cm_per_px, 6)
    return item


def _image(ds: Dataset, frames: np.ndarray, spec: ClipSpec, compressed: bool, bgr: bool) -> None:
    """Pixel module + cine timing; ``frames`` uint8 (T, H, W, 3), RGB (or BGR with ``bgr``)."""
    n, rows, cols, _ = frames.shape
    ds.SamplesPerPixel = 3
    ds.PlanarConfiguration = 0
    ds.Rows, ds.Columns = rows, cols
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.NumberOfFrames = n
    ds.FrameIncrementPointer = pydicom.tag.Tag("FrameTime")
    ds.FrameTime = round(1000.0 / spec.fps, 4)
    ds.CineRate = int(round(spec.fps))
    ds.RecommendedDisplayFrameRate = int(round(spec.fps))
    ds.HeartRate = int(round(spec.heart_rate_bpm))
    ds.LossyImageCompression = "01" if compressed else "00"
    if compressed:
        ds.PhotometricInterpretation = "YBR_FULL_422"
        ds.LossyImageCompressionMethod = "ISO_10918_1"
        ds.PixelData = encapsulate([encode_jpeg(f, bgr) for f in frames])
        ds["PixelData"].VR = "OB"
    else:
        ds.PhotometricInterpretation = "RGB"
        ds.PixelData = np.ascontiguousarray(frames[..., ::-1] if bgr else frames).tobytes()
        ds["PixelData"].VR = "OB"


def encode_jpeg(frame: np.ndarray, bgr: bool = False) -> bytes:
    """Baseline JPEG of one uint8 (H, W, 3) RGB (or BGR) frame, 4:2:2 chroma subsampling."""
    params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
    if hasattr(cv2, "IMWRITE_JPEG_SAMPLING_FACTOR_422"):
        params += [cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_422]
    ok, buf = cv2.imencode(".jpg", frame if bgr else cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()


def build_dataset(frames: np.ndarray, spec: ClipSpec, meta: DicomMeta, bgr: bool = False) -> Dataset:
    """The complete DICOM dataset (with file meta) for one clip; frames uint8 (T, H, W, 3)."""
    syntax = JPEGBaseline8Bit if meta.compressed else ExplicitVRLittleEndian
    file_meta = FileMetaDataset()
    file_meta.MediaStorageSOPClassUID = UID(US_MULTIFRAME_SOP_CLASS)
    file_meta.MediaStorageSOPInstanceUID = UID(meta.sop_uid)
    file_meta.TransferSyntaxUID = syntax
    file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = Dataset()
    ds.file_meta = file_meta
    ds.SOPClassUID = US_MULTIFRAME_SOP_CLASS
    ds.SOPInstanceUID = meta.sop_uid
    ds.SpecificCharacterSet = "ISO_IR 100"
    _patient_study(ds, meta)
    if meta.burned_in_tag:
        ds.BurnedInAnnotation = "YES"
    if meta.with_regions:
        ds.SequenceOfUltrasoundRegions = [_regions(spec)]
    _image(ds, frames, spec, meta.compressed, bgr)
    return ds


def write_dicom(path: Path, frames: np.ndarray, spec: ClipSpec, meta: DicomMeta, bgr: bool = False) -> Path:
    """Write atomically with preamble and file meta (``enforce_file_format=True``).

    ``frames``: uint8 (T, H, W, 3), RGB, or BGR when ``bgr`` (as rendered for JPEG encoding).
    """
    ds = build_dataset(frames, spec, meta, bgr)
    return atomic_write(path, lambda f: pydicom.dcmwrite(f, ds, enforce_file_format=True))


def clip_dicom_bytes(frames: np.ndarray, spec: ClipSpec, label: str = "SYN", bgr: bool = True) -> bytes:
    """One rendered clip as the bytes of a JPEG Baseline DICOM file with a region sequence (what a
    hospital export holds), under fixed fake identifiers ``label``: for checks and benches that feed
    a single clip through ``echocmr.ingest`` without writing a cohort."""
    meta = DicomMeta(patient_name=f"SYN^{label}", patient_id=label, birth_date=dt.date(1970, 1, 1), sex="O",
                     institution=label, referring="", study_date=dt.date(2024, 1, 1), study_time="120000",
                     accession="1", study_uid="2.25.1", series_uid="2.25.2", sop_uid="2.25.3", series_number=1,
                     instance_number=1, manufacturer=label, model=label, compressed=True,
                     with_regions=True, burned_in_tag=True)
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, build_dataset(frames, spec, meta, bgr=bgr), enforce_file_format=True)
    return buf.getvalue()
