"""Build realistic ultrasound DICOMs (and friends) for the ingestion tests and benchmark.

Every clip has a fan-shaped sector with per-frame speckle, a dark blood pool and a moving bright
band; burned-in canary text *outside* the sector; and a coloured ECG trace near the bottom that
runs partly *inside* the sector. Files can be written in every transfer syntax and photometric
interpretation ingestion accepts, with or without SequenceOfUltrasoundRegions.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence
from pydicom.uid import (
    JPEG2000,
    JPEG2000Lossless,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
    generate_uid,
)

US_MULTIFRAME = "1.2.840.10008.5.1.4.1.1.3.1"
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
DEFLATED = "1.2.840.10008.1.2.1.99"
ECG_RGB = (0, 220, 0)

SYNTAXES = {
    "explicit_le": ExplicitVRLittleEndian,
    "implicit_le": ImplicitVRLittleEndian,
    "explicit_be": ExplicitVRBigEndian,
    "jpeg_baseline": JPEGBaseline8Bit,
    "jpeg_extended": JPEGExtended12Bit,
    "jpeg_lossless": JPEGLossless,
    "jpeg_lossless_sv1": JPEGLosslessSV1,
    "jpegls": JPEGLSLossless,
    "jpegls_near": JPEGLSNearLossless,
    "j2k_lossless": JPEG2000Lossless,
    "j2k": JPEG2000,
    "rle": RLELossless,
}

PHI_DEFAULTS = {
    "name": "CANARYNAME^ZQXJ",
    "id": "CANARYID77431",
    "text_name": "ZQXJ NAME",  # burned-in text (cv2 fonts: ASCII capitals and digits)
    "text_id": "ID 77431",
    "text_date": "1961 04 12",
    "institution": "CANARY INSTITUTE 5521",
    "physician": "CANARYDOC^WRPX",
    "accession": "ACC88213",
    "private": "CANARYPRIVATE9911",
}


@dataclass
class Scene:
    """Synthetic frames and where things are in them.

    ``rgb``: uint8 (T, H, W, 3); ``fan``: bool (H, W) true sector; ``text``: bool (H, W) pixels
    of the burned-in canary text; ``ecg``: bool (T, H, W) ECG pixels; geometry of the true fan.
    """

    rgb: np.ndarray
    fan: np.ndarray
    text: np.ndarray
    ecg: np.ndarray
    apex: tuple[float, float]
    radius: float
    half_angle: float
    bbox: tuple[int, int, int, int]
    phi: dict = field(default_factory=dict)

    @property
    def grey(self) -> np.ndarray:
        """uint8 (T, H, W) luma of ``rgb``."""
        return np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in self.rgb])


def fan_mask(rows: int, cols: int, apex: tuple[float, float], radius: float, half_angle: float) -> np.ndarray:
    """bool (rows, cols): pixels within ``radius`` of ``apex`` and ``half_angle`` degrees of vertical."""
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)
    dx, dy = xx - apex[0], yy - apex[1]
    ang = np.degrees(np.arctan2(dx, dy))
    return (np.hypot(dx, dy) <= radius) & (np.abs(ang) <= half_angle) & (dy >= 0)


def make_scene(rows: int = 240, cols: int = 320, n_frames: int = 12, seed: int = 0, phi: dict | None = None,
               ecg: bool = True, text: bool = True) -> Scene:
    """A fan sector clip with speckle, a moving band, burned-in text and an ECG line."""
    phi = {**PHI_DEFAULTS, **(phi or {})}
    rng = np.random.default_rng(seed)
    apex = (cols / 2.0, rows * 0.08)
    radius = rows * 0.84
    half = 40.0
    fan = fan_mask(rows, cols, apex, radius, half)
    yy, xx = np.mgrid[0:rows, 0:cols]
    pool = ((xx - cols / 2) / (cols * 0.12)) ** 2 + ((yy - rows * 0.5) / (rows * 0.14)) ** 2 <= 1
    texture = rng.rayleigh(60, size=(rows, cols)).astype(np.float32)
    frames = np.zeros((n_frames, rows, cols, 3), np.uint8)
    ecg_masks = np.zeros((n_frames, rows, cols), bool)
    text_layer = np.zeros((rows, cols), np.uint8)
    if text:
        scale = rows / 480.0
        for s, (x, y) in ((phi["text_name"], (4, int(22 * scale) + 4)), (phi["text_date"], (4, int(48 * scale) + 6)),
                          (phi["text_id"], (int(cols * 0.70), int(22 * scale) + 4))):
            cv2.putText(text_layer, s, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.7 * scale, 255, max(1, int(2 * scale)))
    text_mask = (text_layer > 0) & ~fan
    for t in range(n_frames):
        noise = rng.rayleigh(1.0, size=(rows, cols)).astype(np.float32)
        img = texture * (0.55 + 0.35 * noise)
        band_y = rows * (0.3 + 0.4 * (0.5 + 0.5 * np.sin(2 * np.pi * t / max(n_frames, 2))))
        img += 90 * np.exp(-((yy - band_y) / (rows * 0.03)) ** 2)
        img[pool] = 8 + 10 * noise[pool]
        img = np.clip(img, 12, 235)  # tissue never exactly black: the fan is visible everywhere
        grey = np.where(fan, img, 0).astype(np.uint8)
        grey[text_mask] = 255
        rgb = np.repeat(grey[..., None], 3, axis=2)
        if ecg:
            layer = np.zeros((rows, cols), np.uint8)
            x = np.arange(cols)
            y = rows * 0.9 - rows * 0.04 * np.sin(2 * np.pi * (x + 7 * t) / (cols / 3))
            pts = np.stack([x, y], axis=1).astype(np.int32)
            cv2.polylines(layer, [pts], False, 255, max(1, rows // 160))
            ecg_masks[t] = layer > 0
            rgb[ecg_masks[t]] = ECG_RGB
        frames[t] = rgb
    ys, xs = np.nonzero(fan)
    bbox = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    return Scene(frames, fan, text_mask, ecg_masks, apex, radius, half, bbox, phi)


def base_dataset(scene: Scene, *, regions: bool = True, fps: float = 50.0, fps_tag: str = "FrameTime",
                 modality: str = "US", sop_class: str = US_MULTIFRAME, burned_in: str | None = "YES") -> Dataset:
    """Header with planted PHI, timing and (optionally) an ultrasound region for ``scene``."""
    phi = scene.phi
    t, rows, cols = scene.rgb.shape[:3]
    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = modality
    ds.PatientName = phi["name"]
    ds.PatientID = phi["id"]
    ds.PatientBirthDate = "19610412"
    ds.PatientSex = "F"
    ds.StudyDate = "20200102"
    ds.StudyTime = "101112"
    ds.AccessionNumber = phi["accession"]
    ds.InstitutionName = phi["institution"]
    ds.ReferringPhysicianName = phi["physician"]
    ds.StudyDescription = "ECHO " + phi["name"]
    ds.ImageComments = "comment " + phi["id"]
    if burned_in is not None:
        ds.BurnedInAnnotation = burned_in
    ds.add_new(0x00091010, "LO", phi["private"])  # private tag
    ds.add_new(0x00090010, "LO", "CANARY VENDOR")
    ds.Rows, ds.Columns = rows, cols
    ds.NumberOfFrames = t
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    _set_fps(ds, fps, fps_tag, t)
    if regions:
        ds.SequenceOfUltrasoundRegions = Sequence([_region(scene)])
    return ds


def _set_fps(ds: Dataset, fps: float, tag: str, n: int) -> None:
    if tag == "FrameTime":
        ds.FrameTime = f"{1000.0 / fps:.4f}"
        ds.FrameIncrementPointer = 0x00181063
    elif tag == "FrameTimeVector":
        ds.FrameTimeVector = [0.0] + [round(1000.0 / fps, 4)] * (n - 1)
        ds.FrameIncrementPointer = 0x00181065
    elif tag == "CineRate":
        ds.CineRate = int(round(fps))
    elif tag == "RecommendedDisplayFrameRate":
        ds.RecommendedDisplayFrameRate = int(round(fps))


def _region(scene: Scene) -> Dataset:
    x0, y0, x1, y1 = scene.bbox
    r = Dataset()
    r.RegionSpatialFormat = 1
    r.RegionDataType = 1
    r.RegionFlags = 0
    r.RegionLocationMinX0, r.RegionLocationMinY0 = x0, y0
    r.RegionLocationMaxX1, r.RegionLocationMaxY1 = x1 - 1, y1 - 1
    r.PhysicalUnitsXDirection = r.PhysicalUnitsYDirection = 3  # cm
    r.PhysicalDeltaX = r.PhysicalDeltaY = 0.03
    r.ReferencePixelX0 = int(round(scene.apex[0] - x0))
    r.ReferencePixelY0 = int(round(scene.apex[1] - y0))
    return r


def _meta(ds: Dataset, syntax: str) -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = syntax
    meta.ImplementationClassUID = "1.2.826.0.1.3680043.9.9999.1"
    ds.file_meta = meta


def set_pixels(ds: Dataset, scene: Scene, photometric: str) -> None:
    """Native (uncompressed) pixel data in ``photometric`` from ``scene.rgb``."""
    rgb = scene.rgb
    ds.PhotometricInterpretation = photometric
    if photometric in ("MONOCHROME2", "MONOCHROME1"):
        grey = scene.grey
        ds.SamplesPerPixel = 1
        ds.PixelData = (255 - grey if photometric == "MONOCHROME1" else grey).tobytes()
    elif photometric == "RGB":
        ds.SamplesPerPixel, ds.PlanarConfiguration = 3, 0
        ds.PixelData = rgb.tobytes()
    elif photometric == "YBR_FULL":
        ds.SamplesPerPixel, ds.PlanarConfiguration = 3, 0
        ds.PixelData = np.stack([_rgb_to_ybr(f) for f in rgb]).tobytes()
    elif photometric == "YBR_FULL_422":
        ds.SamplesPerPixel, ds.PlanarConfiguration = 3, 0
        ds.PixelData = np.stack([_ybr422(_rgb_to_ybr(f)) for f in rgb]).tobytes()
    elif photometric == "PALETTE COLOR":
        _set_palette(ds, scene)
    else:
        raise ValueError(photometric)


def _rgb_to_ybr(rgb: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) RGB → YBR_FULL (Y, Cb, Cr) uint8 (H, W, 3)."""
    ycrcb = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)
    return ycrcb[..., [0, 2, 1]]


def _ybr422(ybr: np.ndarray) -> np.ndarray:
    """YBR_FULL (H, W, 3) → YBR_FULL_422 byte stream Y1 Y2 Cb Cr per horizontal pixel pair."""
    y = ybr[..., 0].reshape(ybr.shape[0], -1, 2)
    cb = ybr[..., 1].reshape(ybr.shape[0], -1, 2).astype(np.uint16).mean(axis=2).round().astype(np.uint8)
    cr = ybr[..., 2].reshape(ybr.shape[0], -1, 2).astype(np.uint16).mean(axis=2).round().astype(np.uint8)
    return np.concatenate([y, cb[..., None], cr[..., None]], axis=2)


def _set_palette(ds: Dataset, scene: Scene) -> None:
    """8-bit indices into a 16-bit LUT: 0..249 grey ramp, 252 = the ECG green."""
    grey = scene.grey.astype(np.uint16)
    idx = (grey * 249 // 255).astype(np.uint8)
    idx[scene.ecg] = 252
    ramp = np.zeros((256, 3), np.uint16)
    ramp[:250] = (np.arange(250) * 255 // 249)[:, None] * 257
    ramp[252] = np.array(ECG_RGB, np.uint16) * 257
    ds.SamplesPerPixel = 1
    for i, c in enumerate(("Red", "Green", "Blue")):
        setattr(ds, f"{c}PaletteColorLookupTableDescriptor", [256, 0, 16])
        tag = pydicom.datadict.tag_for_keyword(f"{c}PaletteColorLookupTableData")
        ds.add_new(tag, "OW", ramp[:, i].astype("<u2").tobytes())
    ds.PixelData = idx.tobytes()


def encode_jpeg_frames(frames: np.ndarray, quality: int = 92) -> list[bytes]:
    """Per-frame baseline JPEG: RGB (T, H, W, 3) as 4:2:2 YCbCr, or grey (T, H, W)."""
    out = []
    params = [cv2.IMWRITE_JPEG_QUALITY, quality]
    if frames.ndim == 4:
        params += [cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_422]
    for f in frames:
        img = cv2.cvtColor(f, cv2.COLOR_RGB2BGR) if f.ndim == 3 else f
        ok, buf = cv2.imencode(".jpg", img, params)
        assert ok
        out.append(buf.tobytes())
    return out


def write_dicom(path: str | os.PathLike, scene: Scene, *, syntax: str = "explicit_le",
                photometric: str = "RGB", regions: bool = True, fps: float = 50.0, fps_tag: str = "FrameTime",
                modality: str = "US", sop_class: str = US_MULTIFRAME, burned_in: str | None = "YES",
                jpeg_frames: list[bytes] | None = None) -> Path:
    """Write ``scene`` as a DICOM file in transfer syntax ``syntax`` (a key of SYNTAXES)."""
    path = Path(path)
    ds = base_dataset(scene, regions=regions, fps=fps, fps_tag=fps_tag, modality=modality,
                      sop_class=sop_class, burned_in=burned_in)
    uid = SYNTAXES[syntax]
    if syntax in ("jpeg_baseline", "jpeg_extended"):
        grey = photometric == "MONOCHROME2"
        frames = jpeg_frames or encode_jpeg_frames(scene.grey if grey else scene.rgb)
        ds.SamplesPerPixel = 1 if grey else 3
        ds.PhotometricInterpretation = "MONOCHROME2" if grey else "YBR_FULL_422"
        if not grey:
            ds.PlanarConfiguration = 0
        ds.PixelData = encapsulate(frames)
        ds["PixelData"].VR = "OB"
        ds.LossyImageCompression = "01"
        _meta(ds, uid)
    elif syntax in ("jpeg_lossless", "jpeg_lossless_sv1", "jpegls", "jpegls_near"):
        set_pixels(ds, scene, photometric)
        _meta(ds, ExplicitVRLittleEndian)
        return _gdcm_transcode(ds, path, syntax)
    elif syntax in ("j2k_lossless", "j2k", "rle"):
        set_pixels(ds, scene, photometric)
        _meta(ds, ExplicitVRLittleEndian)
        kwargs = {"j2k_cr": [10]} if syntax == "j2k" else {}
        ds.compress(uid, generate_instance_uid=False, **kwargs)
    else:
        set_pixels(ds, scene, photometric)
        _meta(ds, uid)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def _gdcm_transcode(ds: Dataset, path: Path, syntax: str) -> Path:
    """Encode with GDCM (pydicom has no JPEG-LS / lossless-JPEG encoder without extra plugins)."""
    import gdcm

    tmp = path.with_suffix(".tmp.dcm")
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(tmp, enforce_file_format=True)
    reader = gdcm.ImageReader()
    reader.SetFileName(str(tmp))
    if not reader.Read():
        raise RuntimeError("gdcm could not read the source")
    ts = {
        "jpeg_lossless": gdcm.TransferSyntax.JPEGLosslessProcess14,
        "jpeg_lossless_sv1": gdcm.TransferSyntax.JPEGLosslessProcess14_1,
        "jpegls": gdcm.TransferSyntax.JPEGLSLossless,
        "jpegls_near": gdcm.TransferSyntax.JPEGLSNearLossless,
    }[syntax]
    change = gdcm.ImageChangeTransferSyntax()
    change.SetTransferSyntax(gdcm.TransferSyntax(ts))
    change.SetInput(reader.GetImage())
    if not change.Change():
        raise RuntimeError("gdcm could not transcode")
    writer = gdcm.ImageWriter()
    writer.SetFileName(str(path))
    writer.SetFile(reader.GetFile())
    writer.SetImage(change.GetOutput())
    if not writer.Write():
        raise RuntimeError("gdcm could not write")
    tmp.unlink()
    return path


def to_bytes(ds: Dataset) -> bytes:
    """Serialise a dataset with its file meta (preamble + DICM)."""
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def header_only(rows: int, cols: int, frames: str | int, *, syntax: str = ExplicitVRLittleEndian,
                spp: int = 1, bits: int = 8, pixel_bytes: bytes = b"", modality: str = "US",
                photometric: str | None = None) -> bytes:
    """A DICOM whose header claims ``rows × cols × frames`` but carries ``pixel_bytes`` only."""
    ds = Dataset()
    ds.SOPClassUID = US_MULTIFRAME
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.Modality = modality
    ds.PatientName = PHI_DEFAULTS["name"]
    ds.Rows, ds.Columns = rows, cols
    text = str(frames)
    numeric = text.lstrip("-").isdigit()
    placeholder = text if numeric else "9" * len(text)
    ds.add_new(0x00280008, "IS", placeholder)
    ds.SamplesPerPixel = spp
    ds.PhotometricInterpretation = photometric or ("MONOCHROME2" if spp == 1 else "RGB")
    if spp == 3:
        ds.PlanarConfiguration = 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, bits, bits - 1, 0
    native = syntax in (ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian)
    ds.PixelData = pixel_bytes if native else encapsulate([pixel_bytes or b"\0\0"])
    ds["PixelData"].VR = "OB" if bits == 8 or not native else "OW"
    _meta(ds, syntax)
    data = to_bytes(ds)
    if not numeric:  # pydicom refuses to write an invalid IS: patch the bytes instead
        pad = placeholder + (" " if len(placeholder) % 2 else "")
        tag = b"\x28\x00\x08\x00IS" + len(pad).to_bytes(2, "little")
        bad = text + (" " if len(text) % 2 else "")
        assert data.count(tag + pad.encode()) == 1
        data = data.replace(tag + pad.encode(), tag + bad.encode())
    return data
