"""Checks made *before* anything is decoded: size, format sniffing, DICOM header sanity.

Everything here reads bytes or header fields only. Every refusal is an ``InputError`` whose
message describes structure (sizes, tags, syntaxes), never content.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import struct
import warnings
from dataclasses import dataclass

from pydicom.errors import BytesLengthException

from ..config import IngestLimits
from ..errors import InputError

# Transfer syntaxes we decode. Deflated (1.2.840.10008.1.2.1.99) is deliberately absent:
# pydicom inflates the whole dataset in one unbounded zlib call (a decompression bomb).
ALLOWED_SYNTAXES = {
    "1.2.840.10008.1.2": "implicit VR little endian",
    "1.2.840.10008.1.2.1": "explicit VR little endian",
    "1.2.840.10008.1.2.2": "explicit VR big endian",
    "1.2.840.10008.1.2.4.50": "JPEG baseline",
    "1.2.840.10008.1.2.4.51": "JPEG extended",
    "1.2.840.10008.1.2.4.57": "JPEG lossless",
    "1.2.840.10008.1.2.4.70": "JPEG lossless SV1",
    "1.2.840.10008.1.2.4.80": "JPEG-LS lossless",
    "1.2.840.10008.1.2.4.81": "JPEG-LS near-lossless",
    "1.2.840.10008.1.2.4.90": "JPEG 2000 lossless",
    "1.2.840.10008.1.2.4.91": "JPEG 2000",
    "1.2.840.10008.1.2.5": "RLE lossless",
}
NATIVE_SYNTAXES = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"}
DEFLATED = "1.2.840.10008.1.2.1.99"
US_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.6.1",  # US Image
    "1.2.840.10008.5.1.4.1.1.3.1",  # US Multi-frame Image
    "1.2.840.10008.5.1.4.1.1.6",  # retired US Image
    "1.2.840.10008.5.1.4.1.1.3",  # retired US Multi-frame Image
}
DICOMDIR_CLASS = "1.2.840.10008.1.3.10"
# Only these are echoed in messages: a free-form Modality value could carry anything.
KNOWN_MODALITIES = {"CT", "MR", "CR", "DX", "MG", "NM", "PT", "XA", "RF", "OT", "SC", "SEG", "SR", "KO", "PR",
                    "RTDOSE", "RTPLAN", "RTSTRUCT", "RTIMAGE", "ECG", "DOC", "IVUS", "OCT", "OP", "ES", "XC",
                    "IO", "PX", "GM", "SM", "BI", "HD", "REG", "PLAN", "AU", "BDUS", "EPS", "OPT"}
PHOTOMETRICS = {"MONOCHROME1", "MONOCHROME2", "RGB", "YBR_FULL", "YBR_FULL_422", "PALETTE COLOR",
                "YBR_RCT", "YBR_ICT"}

# pydicom's failure modes on malformed input; all become InputError("bad_header" / ...).
PARSE_ERRORS = (EOFError, ValueError, TypeError, KeyError, IndexError, AttributeError, struct.error,
                OSError, NotImplementedError, OverflowError, RuntimeError, BytesLengthException)


@contextlib.contextmanager
def quiet_pydicom():
    """Silence pydicom's warnings and log lines: they may quote header values (PHI).

    ``disabled`` alone is not enough: records of child loggers (``pydicom.pixels.decoders.base``
    logs decoder failures at ERROR with a traceback) still reach the root handlers, so
    propagation is cut too.
    """
    logger = logging.getLogger("pydicom")
    was = logger.disabled, logger.propagate
    logger.disabled, logger.propagate = True, False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.disabled, logger.propagate = was


def read_bounded(source: str | os.PathLike | bytes, limits: IngestLimits) -> bytes:
    """The whole input as bytes, refusing empty or oversized inputs before reading them."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        size = len(source)
        data = bytes(source)
    else:
        try:
            size = os.stat(source).st_size
        except OSError:
            raise InputError("unreadable", "the input could not be opened") from None
        data = None
    if size == 0:
        raise InputError("empty_file", "the input is empty (0 bytes)")
    if size > limits.max_file_bytes:
        raise InputError("too_large", f"the input is {size} bytes; the limit is {limits.max_file_bytes}")
    if data is None:
        try:
            with open(source, "rb") as fh:
                data = fh.read(limits.max_file_bytes + 1)
        except OSError:
            raise InputError("unreadable", "the input could not be read") from None
        if len(data) > limits.max_file_bytes:  # grew between stat and read
            raise InputError("too_large", f"the input exceeds {limits.max_file_bytes} bytes")
    return data


def sniff(data: bytes) -> str:
    """Format from magic bytes only: 'dicom', 'zip', 'avi', 'mp4', 'png', 'jpeg' or 'unknown'."""
    if len(data) >= 132 and data[128:132] == b"DICM":
        return "dicom"
    if data[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if data[:4] == b"RIFF" and data[8:12] == b"AVI ":
        return "avi"
    if data[4:8] == b"ftyp":
        return "mp4"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    return "unknown"


@dataclass(frozen=True)
class DicomHeader:
    """What the gate learned from the header: enough to plan decoding."""

    syntax: str
    rows: int
    cols: int
    frames: int
    samples: int
    photometric: str
    planar: int
    sample_bytes: int = 1  # 2 only for 16-bit PALETTE COLOR indices (mapped to 8-bit RGB)


def read_syntax(data: bytes) -> str:
    """Transfer syntax from the file meta group only (nothing after group 0002 is parsed)."""
    from pydicom.errors import InvalidDicomError
    from pydicom.filereader import _read_file_meta_info, read_preamble

    fp = io.BytesIO(data)
    try:
        with quiet_pydicom():
            read_preamble(fp, False)
            # Private helper, used because the public read_file_meta_info() wants a path and
            # dcmread() would already inflate a deflated body before we could refuse it.
            meta = _read_file_meta_info(fp)
            syntax = str(meta.get("TransferSyntaxUID", "") or "").strip()
    except (InvalidDicomError, *PARSE_ERRORS):
        raise InputError("bad_header", "the DICOM file meta information could not be parsed") from None
    if not syntax:
        raise InputError("bad_header", "the DICOM file meta information has no transfer syntax")
    return syntax


def check_syntax(syntax: str) -> None:
    if syntax == DEFLATED:
        raise InputError("deflated_syntax", f"transfer syntax {DEFLATED} (deflated) is not accepted")
    if syntax not in ALLOWED_SYNTAXES:
        safe = syntax if all(c in "0123456789." for c in syntax) and len(syntax) <= 64 else "(malformed)"
        raise InputError("unsupported_syntax", f"transfer syntax {safe} is not accepted")


ITEM_TAGS = {"1.2.840.10008.1.2.2": b"\xff\xfe\xe0\x00"}  # big endian; every other syntax:
ITEM_TAG_LE = b"\xfe\xff\x00\xe0"


def check_item_count(data: bytes, syntax: str, limits: IngestLimits) -> None:
    """Refuse a file with more sequence/fragment items than ``limits.max_dicom_items``.

    A byte count, not a parse: pydicom builds every item before anything could be checked.
    (A chance match inside pixel data costs one count in 4·10⁹ bytes.)
    """
    tag = ITEM_TAGS.get(syntax, ITEM_TAG_LE)
    count = data.count(tag)
    if count > limits.max_dicom_items:
        raise InputError("too_many_items", f"the file holds {count} sequence items; the limit is {limits.max_dicom_items}")


def read_header(data: bytes, limits: IngestLimits | None = None, syntax: str = ""):
    """(pydicom Dataset of everything before Pixel Data, byte offset of the Pixel Data tag).

    No pixel bytes are read; the offset equals ``len(data)`` when the file has no pixels.
    """
    import pydicom

    check_item_count(data, syntax, limits or IngestLimits())
    from pydicom.errors import InvalidDicomError

    fp = io.BytesIO(data)
    try:
        with quiet_pydicom():
            ds = pydicom.dcmread(fp, stop_before_pixels=True)
    except (InvalidDicomError, *PARSE_ERRORS):
        raise InputError("bad_header", "the DICOM header could not be parsed") from None
    if fp.tell() >= len(data):
        # A report, waveform or PDF has no Pixel Data either: say "not ultrasound" for those
        # rather than "truncated". pydicom reads short values silently, so a cut header still
        # looks like a pixel-less file and stays "truncated_file".
        with contextlib.suppress(*PARSE_ERRORS), quiet_pydicom():
            if str(ds.get("Modality", "") or "").strip():  # only an explicit, readable modality
                check_modality(ds)
        raise InputError("truncated_file", "the file ends before its Pixel Data (truncated, or not an image)")
    return ds, fp.tell()


def pixel_element(data: bytes, pos: int, syntax: str) -> tuple[int, int, str]:
    """(value offset, value length, VR) of the Pixel Data element whose tag starts at ``pos``.

    Length 0xFFFFFFFF means undefined (encapsulated). Raises ``no_pixels`` when the element at
    ``pos`` is not (7FE0,0010).
    """
    big = syntax == "1.2.840.10008.1.2.2"
    end = ">" if big else "<"
    if pos + 8 > len(data):
        raise InputError("no_pixels", "the DICOM file has no Pixel Data")
    group, elem = struct.unpack(end + "HH", data[pos:pos + 4])
    if (group, elem) != (0x7FE0, 0x0010):
        raise InputError("no_pixels", "the DICOM file has no (integer) Pixel Data")
    if syntax == "1.2.840.10008.1.2":  # implicit VR: tag, 4-byte length
        return pos + 8, struct.unpack("<I", data[pos + 4:pos + 8])[0], "OW"
    if pos + 12 > len(data):
        raise InputError("truncated_pixels", "the Pixel Data element header is truncated")
    vr = data[pos + 4:pos + 6].decode("ascii", "replace")
    return pos + 12, struct.unpack(end + "I", data[pos + 8:pos + 12])[0], vr


def _int_tag(ds, keyword: str, default: int | None, code: str) -> int:
    """An integer header value, or InputError(code) when absent/non-numeric."""
    try:
        with quiet_pydicom():
            value = ds.get(keyword, default)
            if value is None or value == "":
                if default is None:
                    raise InputError(code, f"the header has no usable {keyword}")
                return default
            number = float(value)
    except PARSE_ERRORS:
        raise InputError(code, f"{keyword} is not a number") from None
    if not number.is_integer():
        raise InputError(code, f"{keyword} is not an integer")
    return int(number)


def check_modality(ds) -> None:
    with quiet_pydicom():
        sop = str(ds.get("SOPClassUID", "") or "")
        modality = str(ds.get("Modality", "") or "").strip().upper()
    if sop == DICOMDIR_CLASS:
        raise InputError("dicomdir", "a DICOMDIR index is not an image; give the image files instead")
    if modality and modality != "US":
        safe = modality if modality in KNOWN_MODALITIES else "(other)"
        raise InputError("not_ultrasound", f"not an ultrasound clip (modality {safe})")
    if not modality and sop not in US_SOP_CLASSES:
        raise InputError("not_ultrasound", "not an ultrasound clip (no US modality or SOP class)")


def check_header(ds, syntax: str, limits: IngestLimits) -> DicomHeader:
    """Validate geometry, bit depth and frame count against ``limits`` before decoding."""
    try:
        with quiet_pydicom():
            return _check_header(ds, syntax, limits)
    except PARSE_ERRORS:  # a header value pydicom cannot even convert
        raise InputError("bad_header", "a DICOM header element is malformed") from None


def _check_header(ds, syntax: str, limits: IngestLimits) -> DicomHeader:
    check_modality(ds)
    rows = _int_tag(ds, "Rows", None, "bad_dimensions")
    cols = _int_tag(ds, "Columns", None, "bad_dimensions")
    frames = _int_tag(ds, "NumberOfFrames", 1, "bad_frame_count")
    samples = _int_tag(ds, "SamplesPerPixel", 1, "bad_header")
    bits = _int_tag(ds, "BitsAllocated", None, "unsupported_bit_depth")
    planar = _int_tag(ds, "PlanarConfiguration", 0, "bad_header")
    with quiet_pydicom():
        photometric = str(ds.get("PhotometricInterpretation", "") or "").strip().upper()
    if rows <= 0 or cols <= 0:
        raise InputError("bad_dimensions", f"frames are {rows}×{cols} pixels")
    if rows < limits.min_side or cols < limits.min_side:
        raise InputError("bad_dimensions", f"frames are {rows}×{cols} pixels; at least {limits.min_side} needed")
    if rows > limits.max_rows or cols > limits.max_cols:
        raise InputError("dimensions_too_large", f"frames are {rows}×{cols}; limit {limits.max_rows}×{limits.max_cols}")
    if frames < 1:
        raise InputError("bad_frame_count", f"NumberOfFrames is {frames}")
    if frames > limits.max_frames:
        raise InputError("too_many_frames", f"NumberOfFrames is {frames}; the limit is {limits.max_frames}")
    # 16-bit is accepted for palette indices only (vendor exports such as ALOKA's): the palette
    # maps them to colours, reduced to 8-bit RGB like every other colour format.
    if bits != 8 and not (bits == 16 and photometric == "PALETTE COLOR" and samples == 1):
        raise InputError("unsupported_bit_depth",
                         f"BitsAllocated is {bits}; only 8-bit ultrasound (or 16-bit PALETTE COLOR) is accepted")
    if samples not in (1, 3) or planar not in (0, 1):
        raise InputError("bad_header", f"SamplesPerPixel {samples} / PlanarConfiguration {planar} not supported")
    if photometric not in PHOTOMETRICS or (samples == 1) != (photometric in ("MONOCHROME1", "MONOCHROME2", "PALETTE COLOR")):
        safe = photometric if photometric.replace(" ", "").replace("_", "").isalnum() and len(photometric) <= 16 else "(malformed)"
        raise InputError("unsupported_photometric", f"photometric interpretation {safe} with {samples} samples is not supported")
    if photometric == "YBR_FULL_422" and cols % 2 and syntax in NATIVE_SYNTAXES:
        raise InputError("unsupported_photometric", "YBR_FULL_422 needs an even number of columns")
    total = rows * cols * frames * samples * (bits // 8)
    if total > limits.max_decoded_bytes:
        raise InputError("decoded_too_large", f"decoded size would be {total} bytes; the limit is {limits.max_decoded_bytes}")
    return DicomHeader(syntax, rows, cols, frames, samples, photometric, planar, bits // 8)


def still_dims(data: bytes, kind: str) -> tuple[int, int]:
    """(height, width) from a PNG IHDR or a JPEG SOF marker, without decoding pixels."""
    if kind == "png":
        if len(data) < 24 or data[12:16] != b"IHDR":
            raise InputError("corrupt_image", "the PNG header is malformed")
        width, height = struct.unpack(">II", data[16:24])
        return height, width
    dims = jpeg_dims(data)
    if dims is None:
        raise InputError("corrupt_image", "the JPEG header is malformed")
    return dims


_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def jpeg_dims(buf: bytes | memoryview) -> tuple[int, int] | None:
    """(height, width) from the first SOF marker of a JPEG stream, or None if there is none."""
    i, n = 2, len(buf)
    if n < 4 or buf[0] != 0xFF or buf[1] != 0xD8:
        return None
    while i + 4 <= n:
        if buf[i] != 0xFF:
            return None
        marker = buf[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        length = (buf[i + 2] << 8) | buf[i + 3]
        if marker in _SOF:
            if i + 9 > n:
                return None
            return (buf[i + 5] << 8) | buf[i + 6], (buf[i + 7] << 8) | buf[i + 8]
        if marker == 0xDA or length < 2:
            return None
        i += 2 + length
    return None


def check_still(height: int, width: int, limits: IngestLimits) -> None:
    if height < limits.min_side or width < limits.min_side:
        raise InputError("bad_dimensions", f"the image is {height}×{width} pixels")
    if height > limits.max_rows or width > limits.max_cols:
        raise InputError("dimensions_too_large", f"the image claims {height}×{width}; limit {limits.max_rows}×{limits.max_cols}")
