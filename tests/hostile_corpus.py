"""A generated corpus of hostile inputs, each with the outcome it must produce.

Nothing binary is committed: every case is built (in a temporary folder, from ``dicom_factory``
and the cases of ``test_ingest_bad_inputs``) when first asked for. Used by
tests/test_hostile_inputs.py, tests/test_fuzz_ingest.py and bench/robustness.py.

A case's ``target`` says how it is fed in:
  "file"        bytes → ``read_study_with`` (one file or a zip) through an isolated decoder
  "upload"      [(name, bytes), …] → ``echocmr.study_prediction.ingest_study`` (hostile *file names*)
  "checkpoint"  a checkpoint stem → ``load`` (echocmr.checkpoint / echocmr.model_runner loaders)
``expect`` is the error code (InputError / CheckpointError ``code``) or "accepted"; an upload
expects one comma-separated outcome per file.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import re
import struct
import time
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian

import dicom_factory as F
import test_ingest_bad_inputs as OLD
from echocmr.config import IngestLimits

CANARIES = list(F.PHI_DEFAULTS.values()) + ["CANARY", "ZQXJ", "77431", "19610412"]
NAME_CANARY = "CANARYFILE_Doe^Jane_19610412"
MiB = 1 << 20
LIMITS = IngestLimits(worker_timeout_s=60.0, worker_memory_bytes=2 * 1024**3)


@dataclass(frozen=True)
class Case:
    name: str
    category: str
    expect: str
    build: Callable[["Ctx"], object]
    target: str = "file"
    max_peak_mib: int = 300  # the decoder worker's peak RSS for this input (it idles at ~65 MiB)
    check: Callable[["Ctx", "Outcome"], None] | None = None  # extra assertions (PHI, pixels)


@dataclass
class Outcome:
    codes: list[str]  # one per item: an error code or "accepted"
    messages: list[str]  # str() of every error
    clips: list = field(default_factory=list)
    peak_rss_bytes: int = 0
    seconds: float = 0.0

    @property
    def code(self) -> str:
        return ",".join(self.codes)


class Ctx:
    """Where cases are built (a temporary folder) and the shared ingredients, built once."""

    def __init__(self, tmp: Path):
        self.tmp = Path(tmp)
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.scene = F.make_scene(64, 80, 4, seed=5)
        self.big_scene = F.make_scene(192, 256, 6, seed=11)
        self._old: tuple[dict, dict] | None = None

    def old(self, name: str) -> bytes:
        """A case of tests/test_ingest_bad_inputs.py (its bytes), reused rather than duplicated."""
        if self._old is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # zipfile warns about the duplicate name on purpose
                self._old = OLD._cases(self.scene, self.tmp), OLD._zip_cases(self.scene)
        files, zips = self._old
        return (files.get(name) or zips[name])[0]

    def good(self) -> bytes:
        return F.to_bytes(OLD._ds(self.scene))


# ---------------------------------------------------------------- DICOM builders


def _ds(ctx: Ctx, scene=None, **kw) -> Dataset:
    return OLD._ds(scene or ctx.scene, **kw)


def _no_preamble(ctx: Ctx) -> bytes:
    return ctx.good()[132:]  # the file meta and dataset, without the 128-byte preamble + DICM


def _missing_syntax(ctx: Ctx) -> bytes:
    ds = _ds(ctx)
    del ds.file_meta.TransferSyntaxUID
    buf = pydicom.filebase.DicomBytesIO()
    buf.is_little_endian, buf.is_implicit_VR = True, False  # what the syntax would have said
    buf.write(b"\0" * 128 + b"DICM")
    pydicom.filewriter.write_file_meta_info(buf, ds.file_meta, enforce_standard=False)
    pydicom.filewriter.write_dataset(buf, ds)
    return buf.getvalue()


def _repeated_jpeg(ctx: Ctx) -> bytes:
    """One 192×256 JPEG frame repeated 1000 times (NumberOfFrames 1000): legal, decoded
    streaming (a few frames at a time); the worker's peak RSS stays small."""
    frame = F.encode_jpeg_frames(ctx.big_scene.rgb[:1])[0]
    ds = F.base_dataset(ctx.big_scene)
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "YBR_FULL_422", 0
    ds.PixelData = pydicom.encaps.encapsulate([frame] * 1000)
    ds["PixelData"].VR = "OB"
    ds.NumberOfFrames = 1000
    F._meta(ds, pydicom.uid.JPEGBaseline8Bit)
    return F.to_bytes(ds)


def _with(**attrs) -> Callable[[Ctx], bytes]:
    """A valid small clip with header attributes overwritten (None deletes)."""
    def build(ctx: Ctx) -> bytes:
        ds = _ds(ctx)
        for key, value in attrs.items():
            if value is None:
                delattr(ds, key)
            else:
                setattr(ds, key, value)
        return F.to_bytes(ds)
    return build


def _non_image(modality: str, sop_class: str, **extra) -> Callable[[Ctx], bytes]:
    """A report / waveform / document object: no Pixel Data at all."""
    def build(ctx: Ctx) -> bytes:
        ds = _ds(ctx, modality=modality, sop_class=sop_class)
        for key in ("PixelData", "Rows", "Columns", "NumberOfFrames", "SamplesPerPixel", "PhotometricInterpretation",
                    "PlanarConfiguration", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation"):
            if key in ds:
                delattr(ds, key)
        for key, value in extra.items():
            setattr(ds, key, value)
        F._meta(ds, ExplicitVRLittleEndian)
        return F.to_bytes(ds)
    return build


def _unknown_region_static(ctx: Ctx) -> bytes:
    """Regions present but none 2-D (RegionSpatialFormat 0) and no motion: must fail closed."""
    scene = F.make_scene(64, 80, 4, seed=6, ecg=False)
    static = F.Scene(np.repeat(scene.rgb[:1], 4, axis=0), scene.fan, scene.text, scene.ecg, scene.apex,
                     scene.radius, scene.half_angle, scene.bbox, scene.phi)
    ds = _ds(ctx, static)
    ds.SequenceOfUltrasoundRegions[0].RegionSpatialFormat = 0
    return F.to_bytes(ds)


def _phi_everywhere(ctx: Ctx) -> bytes:
    """Canaries in names, IDs, dates, nested sequences, private tags, overlays and an icon image;
    burned into the pixels too, with BurnedInAnnotation = NO (a lie)."""
    scene = ctx.big_scene
    ds = F.base_dataset(scene, burned_in="NO")
    F.set_pixels(ds, scene, "RGB")
    name = F.PHI_DEFAULTS["name"]
    ds.OtherPatientIDs = F.PHI_DEFAULTS["id"]
    ds.PatientAddress = "77431 CANARY STREET"
    ds.ContentDate, ds.AcquisitionDateTime = "19610412", "19610412101112"
    ref = Dataset()
    ref.PatientName, ref.ReferencedSOPInstanceUID = name, "1.2.3.77431"
    inner = Dataset()
    inner.PersonName = F.PHI_DEFAULTS["physician"]
    ref.ContentSequence = Sequence([inner])
    ds.ReferencedPatientSequence = Sequence([ref])
    ds.add_new(0x00111010, "LO", "CANARYPRIV2 " + name)
    ds.add_new(0x00110010, "LO", "CANARY CREATOR")
    ds.add_new(0x60000010, "US", 16)  # overlay plane holding the canary's bits
    ds.add_new(0x60000011, "US", 16)
    ds.add_new(0x60000100, "US", 1)
    ds.add_new(0x60003000, "OW", np.frombuffer((name + "!").encode() * 2, np.uint8)[:32].tobytes())
    icon = Dataset()
    icon.Rows = icon.Columns = 8
    icon.SamplesPerPixel, icon.PhotometricInterpretation = 1, "MONOCHROME2"
    icon.BitsAllocated, icon.BitsStored, icon.HighBit, icon.PixelRepresentation = 8, 8, 7, 0
    icon.PixelData = (name.encode() * 4)[:64]
    ds.IconImageSequence = Sequence([icon])
    F._meta(ds, ExplicitVRLittleEndian)
    return F.to_bytes(ds)


def _check_phi_clip(ctx: Ctx, out: "Outcome") -> None:
    from echocmr.commands.preprocess import clip_metadata

    clip = out.clips[0]
    text = json.dumps(clip_metadata(clip)) + clip.clip_id + clip.series_id + clip.study_id
    assert not any(c in text for c in CANARIES), "a canary reached the clip's metadata or ids"
    assert clip.preview[ctx.big_scene.text].max() == 0, "burned-in text outside the sector survived"
    assert clip.frames.dtype == np.uint8 and clip.frames.shape[1:] == (112, 112)


def _charset(value: str, name_bytes: bytes) -> Callable[[Ctx], bytes]:
    def build(ctx: Ctx) -> bytes:
        ds = _ds(ctx)
        ds.SpecificCharacterSet = value
        ds.add_new(0x00100010, "PN", name_bytes)  # raw bytes: never decoded by ingestion
        return F.to_bytes(ds)
    return build


def _nested(depth: int) -> Callable[[Ctx], bytes]:
    """``depth`` nested undefined-length sequences (0040,A730) spliced in before Pixel Data."""
    def build(ctx: Ctx) -> bytes:
        data = ctx.good()
        seq = b"\x40\x00\x30\xa7SQ\0\0\xff\xff\xff\xff"
        item, item_end = b"\xfe\xff\x00\xe0\xff\xff\xff\xff", b"\xfe\xff\x0d\xe0\0\0\0\0"
        seq_end = b"\xfe\xff\xdd\xe0\0\0\0\0"
        blob = (seq + item) * depth + (item_end + seq_end) * depth
        at = data.index(b"\xe0\x7f\x10\x00OB")
        return data[:at] + blob + data[at:]
    return build


# ---------------------------------------------------------------- archives


def _raw_zip(entries: list[tuple[str, bytes]], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=method) as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return buf.getvalue()


def _overlapping_zip(ctx: Ctx) -> bytes:
    """Two central-directory entries pointing at the same local file (Fifield's construction)."""
    blob = np.random.default_rng(0).bytes(4096)  # incompressible: the ratio check stays quiet
    data = bytearray(_raw_zip([("a.dcm", blob), ("b.dcm", blob)]))
    cd = data.index(b"PK\x01\x02")
    second = data.index(b"PK\x01\x02", cd + 4)
    data[second + 42:second + 46] = data[cd + 42:cd + 46]  # b's local header offset := a's
    return bytes(data)


def _many_entries(ctx: Ctx) -> bytes:
    return _raw_zip([(f"{i}.dcm", b"") for i in range(100_000)], zipfile.ZIP_STORED)


def _nested_bomb(ctx: Ctx) -> bytes:
    inner = _raw_zip([("a.dcm", b"\0" * (8 * MiB))])
    return _raw_zip([("x.dcm", inner)])


def _study_zip(ctx: Ctx) -> bytes:
    """One good clip and three bad members: refused members fail alone (per-member codes)."""
    return _raw_zip([("a.dcm", ctx.good()), ("b.dcm", b"not dicom at all"), ("c.dcm", ctx.old("frame count zero")),
                     ("d.dcm", ctx.good())])


# ---------------------------------------------------------------- videos


def _video(ctx: Ctx, ext: str, fourcc: str, n: int = 20) -> bytes:
    path = ctx.tmp / f"clip_{ext}_{n}.{ext}"
    scene = F.make_scene(96, 128, n, seed=3)
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 25, (128, 96))
    for f in scene.rgb:
        w.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    w.release()
    return path.read_bytes()


def _avi_huge(ctx: Ctx) -> bytes:
    """AVI headers (avih, strh frame, BITMAPINFOHEADER) claiming 60000×60000 frames."""
    data = bytearray(_video(ctx, "avi", "MJPG"))
    avih = data.index(b"avih") + 8
    data[avih + 32:avih + 40] = struct.pack("<II", 60000, 60000)
    strf = data.index(b"strf") + 8
    data[strf + 4:strf + 12] = struct.pack("<ii", 60000, 60000)
    return bytes(data)


def _avi_frames_huge(ctx: Ctx) -> bytes:
    """Every MJPEG frame's SOF0 marker claims 60000×60000 (the container headers agree)."""
    data = _avi_huge(ctx)
    sof = b"\xff\xc0\x00\x11\x08" + struct.pack(">HH", 96, 128)
    assert sof in data
    return data.replace(sof, b"\xff\xc0\x00\x11\x08" + struct.pack(">HH", 60000, 60000))


def _mp4_truncated(ctx: Ctx) -> bytes:
    data = _video(ctx, "mp4", "mp4v")
    return data[: len(data) // 3]


def _mp4_with_name(ctx: Ctx) -> bytes:
    """A top-level udta box with an iTunes-style ©nam title holding a patient name."""
    text = ("Doe^Jane " + F.PHI_DEFAULTS["name"]).encode()
    nam = struct.pack(">I4s", 8 + len(text), b"\xa9nam") + text
    udta = struct.pack(">I4s", 8 + len(nam), b"udta") + nam
    return _video(ctx, "mp4", "mp4v") + udta


def _check_clean_clip(ctx: Ctx, out: "Outcome") -> None:
    from echocmr.commands.preprocess import clip_metadata

    for clip in out.clips:
        text = json.dumps(clip_metadata(clip)) + clip.clip_id + clip.series_id + clip.study_id
        assert not any(c in text for c in CANARIES + ["Doe", "Jane", NAME_CANARY])


# ---------------------------------------------------------------- uploads (hostile names)


def _upload(names: list[str]) -> Callable[[Ctx], list]:
    def build(ctx: Ctx) -> list:
        good = ctx.good()
        return [(n, good if k % 2 == 0 else ctx.old("random bytes")) for k, n in enumerate(names)]
    return build


def _check_upload_names(ctx: Ctx, out: "Outcome") -> None:
    names = [n for n, _ in out.sources]
    for item in out.items:
        assert re.fullmatch(r"file \d+(, item \d+)?", item.display_name)
        shown = item.display_name + (str(item.error) if item.error else "")
        if item.clip is not None:
            shown += item.clip.clip_id + item.clip.study_id + item.clip.series_id
        for name in names:
            for part in re.split(r"[/\\.\x00]+", name):
                if len(part) >= 6:
                    assert part not in shown, "a file name reached the output"


# ---------------------------------------------------------------- checkpoints


def _saved_checkpoint(ctx: Ctx, name: str) -> Path:
    import torch

    from echocmr import checkpoint as ckpt
    from echocmr.config import ModelConfig, to_dict
    from echocmr.models import build_model

    torch.manual_seed(0)
    config = ModelConfig(arch="compact", width=4, n_frames=8, period=2)
    stem = ctx.tmp / "ckpt" / name / "A4C"
    stem.parent.mkdir(parents=True, exist_ok=True)
    meta = {"kind": "view_model", "model": to_dict(config), "view": "A4C", "outputs": ["lge", "wma"],
            "normalisation": {"mean": 80.0, "std": 60.0}, "target_scaling": {}, "train": {},
            "data": {"synthetic": True, "dataset": "test"}}
    ckpt.save_checkpoint(stem, build_model(config, 2), meta)
    return stem


def _rewrite_weights(stem: Path, payload: bytes, checksum: bool = True) -> None:
    stem.with_suffix(".safetensors").write_bytes(payload)
    if checksum:  # the attacker controls the JSON too, so the checksum passes
        meta = json.loads(stem.with_suffix(".json").read_text())
        meta["sha256"] = hashlib.sha256(payload).hexdigest()
        stem.with_suffix(".json").write_text(json.dumps(meta))


class _Marker:
    """Unpickling this creates a file: proof that a payload ran."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def _ckpt(mutate: Callable[[Path, Ctx], None], loader: str = "view_model") -> Callable[[Ctx], tuple]:
    def build(ctx: Ctx) -> tuple:
        stem = _saved_checkpoint(ctx, f"{mutate.__name__}_{loader}")
        mutate(stem, ctx)
        return loader, stem
    return build


def _pickle_weights(stem: Path, ctx: Ctx) -> None:
    _rewrite_weights(stem, pickle.dumps(_Marker(str(stem.parent / "pwned"))))


def _pickle_state(stem: Path, ctx: Ctx) -> None:
    from echocmr import checkpoint as ckpt

    ckpt.state_path(stem).write_bytes(pickle.dumps(_Marker(str(stem.parent / "pwned"))))


def _truncated(stem: Path, ctx: Ctx) -> None:
    data = stem.with_suffix(".safetensors").read_bytes()
    _rewrite_weights(stem, data[: len(data) // 2])


def _truncated_no_checksum(stem: Path, ctx: Ctx) -> None:
    data = stem.with_suffix(".safetensors").read_bytes()
    _rewrite_weights(stem, data[: len(data) // 2], checksum=False)


def _random(stem: Path, ctx: Ctx) -> None:
    _rewrite_weights(stem, np.random.default_rng(3).bytes(50_000))


def _wrong_arch(stem: Path, ctx: Ctx) -> None:
    meta = json.loads(stem.with_suffix(".json").read_text())
    meta["model"]["width"] = 8
    stem.with_suffix(".json").write_text(json.dumps(meta))


def _unknown_arch(stem: Path, ctx: Ctx) -> None:
    meta = json.loads(stem.with_suffix(".json").read_text())
    meta["model"]["arch"] = "os.system"
    stem.with_suffix(".json").write_text(json.dumps(meta))


def _nan_weights(stem: Path, ctx: Ctx) -> None:
    from safetensors.torch import load, save

    state = load(stem.with_suffix(".safetensors").read_bytes())
    first = next(k for k, v in state.items() if v.is_floating_point())
    state[first] = state[first].clone()
    state[first].view(-1)[0] = float("nan")
    _rewrite_weights(stem, save(state))


def _oversized(stem: Path, ctx: Ctx) -> None:
    with open(stem.with_suffix(".safetensors"), "r+b") as fh:  # sparse: no disk used
        fh.truncate((1 << 30) + 1)


def _st_header(header: bytes, body: bytes = b"") -> bytes:
    return struct.pack("<Q", len(header)) + header + body


def _header_len_huge(stem: Path, ctx: Ctx) -> None:
    _rewrite_weights(stem, struct.pack("<Q", 1 << 62) + b"{}" + b"\0" * 64)


def _header_not_json(stem: Path, ctx: Ctx) -> None:
    _rewrite_weights(stem, _st_header(b"{not json at all" + b" " * 16))


def _header_offsets_out_of_range(stem: Path, ctx: Ctx) -> None:
    header = json.dumps({"w": {"dtype": "F32", "shape": [1 << 20, 1 << 20], "data_offsets": [0, 1 << 40]}})
    _rewrite_weights(stem, _st_header(header.encode(), b"\0" * 64))


def _header_deep(stem: Path, ctx: Ctx) -> None:
    _rewrite_weights(stem, _st_header(b"{\"a\":" + b"[" * 100_000 + b"]" * 100_000 + b"}"))


def _header_bad_dtype(stem: Path, ctx: Ctx) -> None:
    header = json.dumps({"w": {"dtype": "EVIL", "shape": [4], "data_offsets": [0, 16]}})
    _rewrite_weights(stem, _st_header(header.encode(), b"\0" * 16))


def _meta_garbage(stem: Path, ctx: Ctx) -> None:
    stem.with_suffix(".json").write_bytes(b"\xff\xfe" + os.urandom(256))


def _meta_kind_phi(stem: Path, ctx: Ctx) -> None:
    meta = json.loads(stem.with_suffix(".json").read_text())
    meta["kind"] = F.PHI_DEFAULTS["name"]
    stem.with_suffix(".json").write_text(json.dumps(meta))


def _no_marker(ctx: Ctx, out: "Outcome") -> None:
    assert not list(ctx.tmp.glob("ckpt/*/pwned")), "a pickle payload ran"


# ---------------------------------------------------------------- the corpus


def _old(name: str) -> Callable[[Ctx], bytes]:
    return lambda ctx: ctx.old(name)


def _cases() -> list[Case]:
    C = Case
    reused = [  # (name in test_ingest_bad_inputs, category, expected code)
        ("empty file", "container", "empty_file"), ("random bytes", "container", "unknown_format"),
        ("text renamed .dcm", "container", "unknown_format"), ("truncated header", "container", "truncated_file"),
        ("garbage after preamble", "container", "bad_header"), ("truncated pixel data", "pixels", "truncated_pixels"),
        ("corrupt JPEG frame", "pixels", "corrupt_frame"), ("truncated JPEG frame", "pixels", "corrupt_frame"),
        ("no pixel data", "pixels", "truncated_file"), ("float pixel data", "pixels", "no_pixels"),
        ("deflate bomb", "bombs", "deflated_syntax"), ("unsupported syntax", "container", "unsupported_syntax"),
        ("frame count huge", "frame_count", "too_many_frames"), ("frame count zero", "frame_count", "bad_frame_count"),
        ("frame count non-numeric", "frame_count", "bad_frame_count"),
        ("frame count > fragments", "frame_count", "frame_count_mismatch"),
        ("1x1 frames", "dimensions", "bad_dimensions"), ("zero rows", "dimensions", "bad_dimensions"),
        ("absurd rows x cols", "dimensions", "dimensions_too_large"),
        ("2000x2000x2000 claim", "dimensions", "decoded_too_large"), ("PNG bomb dims", "dimensions", "dimensions_too_large"),
        ("16-bit", "bit_depth_photometric", "unsupported_bit_depth"), ("wrong modality CT", "not_ultrasound", "not_ultrasound"),
        ("DICOMDIR", "not_ultrasound", "dicomdir"), ("static clip (no motion, text)", "sector", "no_sector"),
        ("noise everywhere", "sector", "no_sector"), ("truncated AVI", "video", "truncated_video"),
        ("zip slip", "zip", "zip_unsafe_path"), ("zip absolute path", "zip", "zip_unsafe_path"),
        ("zip bomb (ratio)", "zip", "zip_bomb"), ("nested zip", "zip", "zip_nested"),
        ("nested zip renamed", "zip", "zip_nested"), ("zip symlink", "zip", "zip_symlink"),
        ("encrypted entry", "zip", "zip_encrypted"), ("DICOMDIR in zip", "zip", "zip_dicomdir"),
        ("duplicate names", "zip", "zip_duplicate"), ("corrupt zip", "zip", "bad_zip"),
    ]
    cases = [C(n, cat, code, _old(n)) for n, cat, code in reused]
    hb = F.header_only
    cases += [
        C("no preamble", "container", "unknown_format", _no_preamble),
        C("missing transfer syntax", "container", "bad_header", _missing_syntax),
        C("JPEG frame repeated 1000x", "pixels", "accepted", _repeated_jpeg, max_peak_mib=250),
        C("frame count negative", "frame_count", "bad_frame_count", lambda c: hb(64, 64, -5)),
        C("frame count fractional", "frame_count", "bad_frame_count", lambda c: hb(64, 64, "2.5")),
        C("frame count < fragments", "frame_count", "frame_count_mismatch",
          lambda c: OLD._jpeg_ds(c.scene, F.encode_jpeg_frames(c.scene.rgb), n=2)),
        C("absurd columns only", "dimensions", "dimensions_too_large", lambda c: hb(64, 65535, 1)),
        C("1-bit", "bit_depth_photometric", "unsupported_bit_depth", lambda c: hb(64, 64, 1, bits=1, pixel_bytes=b"\0" * 512)),
        C("32-bit", "bit_depth_photometric", "unsupported_bit_depth", lambda c: hb(64, 64, 1, bits=32, pixel_bytes=b"\0" * 16384)),
        C("MONOCHROME2 with 3 samples", "bit_depth_photometric", "unsupported_photometric",
          lambda c: hb(64, 64, 1, spp=3, photometric="MONOCHROME2", pixel_bytes=b"\0" * 12288)),
        C("RGB with 1 sample", "bit_depth_photometric", "unsupported_photometric",
          lambda c: hb(64, 64, 1, photometric="RGB", pixel_bytes=b"\0" * 4096)),
        C("CMYK", "bit_depth_photometric", "unsupported_photometric",
          lambda c: hb(64, 64, 1, spp=3, photometric="CMYK", pixel_bytes=b"\0" * 12288)),
        C("4 samples per pixel", "bit_depth_photometric", "bad_header", _with(SamplesPerPixel=4)),
        C("MR image", "not_ultrasound", "not_ultrasound", _with(Modality="MR", SOPClassUID="1.2.840.10008.5.1.4.1.1.4")),
        C("structured report", "not_ultrasound", "not_ultrasound", _non_image("SR", "1.2.840.10008.5.1.4.1.1.88.33")),
        C("ECG waveform", "not_ultrasound", "not_ultrasound", _non_image("ECG", "1.2.840.10008.5.1.4.1.1.9.1.1")),
        C("encapsulated PDF", "not_ultrasound", "not_ultrasound",
          _non_image("DOC", "1.2.840.10008.5.1.4.1.1.104.1", EncapsulatedDocument=b"%PDF-1.4 " + b"CANARYNAME" * 20)),
        C("no modality, CT SOP class", "not_ultrasound", "not_ultrasound",
          _with(Modality=None, SOPClassUID=F.CT_IMAGE)),
        C("modality holds PHI", "not_ultrasound", "not_ultrasound", _with(Modality=F.PHI_DEFAULTS["id"][:16])),
        C("non-2D region, static pixels", "sector", "no_sector", _unknown_region_static),
        C("PHI in every tag family + burned-in (BurnedInAnnotation NO)", "phi", "accepted", _phi_everywhere,
          check=_check_phi_clip),
        C("SpecificCharacterSet unknown", "charset", "accepted", _charset("ISO_IR 9999", b"CANARY\xe9\xff^ZQXJ")),
        C("SpecificCharacterSet ISO 2022", "charset", "accepted",
          _charset("\\ISO 2022 IR 87", b"CANARY^\x1b$B;3ED\x1b(B^ZQXJ")),
        C("nested sequences 20 deep", "nesting", "accepted", _nested(20)),
        C("nested sequences 3000 deep", "nesting", "bad_header", _nested(3000)),
        C("zip overlapping entries", "zip", "zip_overlap", _overlapping_zip),
        C("zip 100,000 tiny entries", "zip", "zip_too_many_entries", _many_entries),
        C("zip nested bomb", "zip", "zip_nested", _nested_bomb),
        C("zip mixed members", "zip", "accepted,unknown_format,bad_frame_count,accepted", _study_zip),
        # FFmpeg sizes MJPEG frames from the frames themselves: the container's claim is ignored,
        # the real 96×128 frames are read (and checked against the limits as they arrive).
        C("AVI headers claiming 60000x60000", "video", "accepted", _avi_huge),
        C("AVI frames claiming 60000x60000", "video", "bad_dimensions", _avi_frames_huge),  # FFmpeg reports 0×0
        C("truncated MP4", "video", "corrupt_video", _mp4_truncated),
        C("MP4 with a name in its metadata", "video", "accepted", _mp4_with_name, check=_check_clean_clip),
    ]
    names = [NAME_CANARY + ".dcm", "../../etc/" + NAME_CANARY, "A" * 5000 + NAME_CANARY, NAME_CANARY + "\x00.dcm"]
    cases += [C(f"upload name: {label}", "file_names", "accepted,unknown_format" if k % 2 else "accepted",
                _upload([names[k]] if k % 2 == 0 else [names[k - 1], names[k]]), target="upload",
                check=_check_upload_names)
              for k, label in enumerate(["PHI in the name", "../ traversal", "very long", "NUL byte"])]
    ck = "checkpoint"
    cases += [
        C("checkpoint pickle payload", ck, "not_safetensors", _ckpt(_pickle_weights), target=ck, check=_no_marker),
        C("training state pickle payload", ck, "unsafe_state", _ckpt(_pickle_state, "state"), target=ck, check=_no_marker),
        C("training state pickle, TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1", ck, "unsafe_state",
          _ckpt(_pickle_state, "state_env"), target=ck, check=_no_marker),
        C("checkpoint truncated (checksum kept)", ck, "checksum_mismatch", _ckpt(_truncated_no_checksum), target=ck),
        C("checkpoint truncated", ck, "invalid_safetensors", _ckpt(_truncated), target=ck),
        C("checkpoint random bytes", ck, "not_safetensors", _ckpt(_random), target=ck),
        C("checkpoint wrong architecture", ck, "wrong_architecture", _ckpt(_wrong_arch), target=ck),
        C("checkpoint unknown architecture", ck, "bad_model_config", _ckpt(_unknown_arch), target=ck),
        C("checkpoint NaN weights", ck, "non_finite_weights", _ckpt(_nan_weights), target=ck),
        C("checkpoint oversized (sparse 1 GiB)", ck, "weights_too_large", _ckpt(_oversized), target=ck),
        C("safetensors header length huge", ck, "not_safetensors", _ckpt(_header_len_huge), target=ck),
        C("safetensors header not JSON", ck, "bad_safetensors_header", _ckpt(_header_not_json), target=ck),
        C("safetensors offsets out of range", ck, "invalid_safetensors", _ckpt(_header_offsets_out_of_range), target=ck),
        C("safetensors header nested 100k deep", ck, "bad_safetensors_header", _ckpt(_header_deep), target=ck),
        C("safetensors unknown dtype", ck, "invalid_safetensors", _ckpt(_header_bad_dtype), target=ck),
        C("checkpoint JSON garbage", ck, "meta_invalid", _ckpt(_meta_garbage), target=ck),
        C("checkpoint kind holds PHI", ck, "bad_kind", _ckpt(_meta_kind_phi), target=ck),
    ]
    return cases


CASES: list[Case] = _cases()
BY_NAME = {c.name: c for c in CASES}


# ---------------------------------------------------------------- running a case


def run_case(case: Case, built, decoder) -> Outcome:
    """Feed one built case to its entry point; never lets anything but the expected types escape."""
    started = time.perf_counter()
    if case.target == "checkpoint":
        out = _run_checkpoint(case, built)
    elif case.target == "upload":
        out = _run_upload(built)
    else:
        out = _run_file(built, decoder)
    out.seconds = time.perf_counter() - started
    return out


def _run_file(data: bytes, decoder) -> Outcome:
    from echocmr.ingest.pipeline import read_study_with

    peaks = [0]

    def decode(blob, *, limits, salt, study_key=None):
        result = decoder.decode(blob, salt=salt, study_key=study_key)
        peaks.append(result.peak_rss_bytes or 0)
        if result.error is not None:
            raise result.error
        return result.clip

    items = read_study_with(decode, data, "file 1", decoder.limits, b"")
    return _outcome(items, max(peaks))


def _run_upload(sources: list) -> Outcome:
    from echocmr.study_prediction import ingest_study

    items = ingest_study(sources)
    out = _outcome(items, 0)
    out.items, out.sources = items, sources
    return out


def _outcome(items, peak: int) -> Outcome:
    return Outcome([it.error.code if it.error else "accepted" for it in items],
                   [str(it.error) for it in items if it.error], [it.clip for it in items if it.clip is not None], peak)


def _run_checkpoint(case: Case, built: tuple) -> Outcome:
    from echocmr import checkpoint as ckpt
    from echocmr.errors import CheckpointError
    from echocmr.model_runner import load_view_model

    loader, stem = built
    env = "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"
    old = os.environ.get(env)
    if loader == "state_env":
        os.environ[env] = "1"
    try:
        {"view_model": load_view_model,
         "state": ckpt.load_training_state, "state_env": ckpt.load_training_state}[loader](stem)
        return Outcome(["accepted"], [])
    except CheckpointError as exc:
        return Outcome([getattr(exc, "code", "uncoded")], [str(exc)])
    finally:
        if loader == "state_env":
            os.environ.pop(env, None) if old is None else os.environ.__setitem__(env, old)


def assert_clean_message(text: str, ctx: Ctx) -> None:
    """No canary, no file or folder name, no traceback in what the caller is told."""
    assert "Traceback" not in text and "File \"" not in text
    assert str(ctx.tmp) not in text and "/tmp" not in text
    for canary in CANARIES + [NAME_CANARY, ".dcm", ".safetensors", ".json", "A4C"]:
        assert canary not in text, f"{canary!r} leaked into {text!r}"
