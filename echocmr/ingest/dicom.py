"""DICOM frames, decoded one at a time.

Fast path: JPEG baseline/extended (YBR or monochrome) frames go straight from their encapsulated
bytes to ``cv2.imdecode`` (libjpeg-turbo, several frames in parallel threads). Everything else
uses pydicom's per-frame decoding (``iter_pixels``: native, RLE, JPEG-LS and lossless JPEG via
GDCM, JPEG 2000 via OpenJPEG), with PALETTE COLOR expanded through its lookup table.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, Iterator

import cv2
import numpy as np

from ..config import IngestLimits
from ..errors import InputError
from . import gate
from .gate import NATIVE_SYNTAXES, PARSE_ERRORS, quiet_pydicom
from .reduced import decode_flag, reduced_shape
from .sector import region_spacing_mm, sector_from_regions

JPEG_FAST = {"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51"}
FAST_PHOTOMETRICS = {"YBR_FULL_422", "YBR_FULL", "MONOCHROME2", "MONOCHROME1"}
FPS_RANGE = (0.5, 1000.0)


# Frames of at least this many pixels are JPEG-decoded in parallel threads (≈ 400×640 and up).
PARALLEL_MIN_PIXELS = 250_000

class DicomSource:
    """An ultrasound DICOM validated by the gate, ready to yield frames.

    Frames are uint8 (H, W) for monochrome or (H, W, 3) in ``colour_order`` ("BGR" on the JPEG
    fast path, "RGB" otherwise).
    """

    kind = "dicom"

    def __init__(self, data: bytes, limits: IngestLimits):
        syntax = gate.read_syntax(data)
        gate.check_syntax(syntax)
        header, pos = gate.read_header(data, limits, syntax)
        self.h = gate.check_header(header, syntax, limits)
        self.header = header
        self.ds = header  # replaced by the full dataset on the pydicom decoding path
        self.n_frames = self.h.frames
        self.shape = (self.h.rows, self.h.cols)
        self.threads = limits.decode_threads or min(4, os.cpu_count() or 1)
        self.fast = syntax in JPEG_FAST and self.h.photometric in FAST_PHOTOMETRICS
        mono = self.h.samples == 1 and self.h.photometric != "PALETTE COLOR"
        self.colour_order = None if mono else ("BGR" if self.fast else "RGB")
        self._fragments: list[bytes] | None = None
        self.scale = 1  # JPEG frames decoded at 1/scale (ingest.reduced); set by ``reduce``
        self._native: memoryview | None = None
        self._data = data
        self._locate_pixels(data, pos, syntax)

    def __enter__(self) -> "DicomSource":
        return self

    def __exit__(self, *exc) -> None:
        self.ds = self.header = None
        self._fragments = self._native = None
        self._data = b""

    # -- metadata -----------------------------------------------------------------------
    def sector(self):
        return sector_from_regions(self.header, *self.shape)

    def spacing_mm(self) -> float | None:
        return region_spacing_mm(self.header)

    def frame_rate(self) -> tuple[float, str]:
        return frame_rate(self.header)

    def uid_keys(self) -> tuple[str, str, str]:
        """(study, series, instance) keys for pseudonyms; content hash where a UID is missing."""
        def get(keyword: str) -> str:
            try:
                with quiet_pydicom():
                    return str(self.header.get(keyword, "") or "").strip()
            except PARSE_ERRORS:
                return ""

        keys = get("StudyInstanceUID"), get("SeriesInstanceUID"), get("SOPInstanceUID")
        if all(keys):
            return keys
        digest = hashlib.sha256(self._data).hexdigest()  # only when a UID is missing
        study, series, instance = (k or digest for k in keys)
        return study, series, instance

    # -- pixels -------------------------------------------------------------------------
    def _locate_pixels(self, data: bytes, pos: int, syntax: str) -> None:
        """Point at the pixel bytes inside ``data`` (no copy) after checking they are all there."""
        offset, length, vr = gate.pixel_element(data, pos, syntax)
        rows, cols, n = self.h.rows, self.h.cols, self.h.frames
        if syntax in NATIVE_SYNTAXES:
            per = rows * cols * (2 if self.h.photometric == "YBR_FULL_422" else self.h.samples) * self.h.sample_bytes
            have = min(length, len(data) - offset)
            if length == 0xFFFFFFFF or have < per * n:
                raise InputError("truncated_pixels", f"Pixel Data holds {max(have, 0)} bytes; {n} frames need {per * n}")
            raw = memoryview(data)[offset:offset + per * n]
            self._big_endian = syntax == "1.2.840.10008.1.2.2"
            if self._big_endian and vr == "OW" and self.h.sample_bytes == 1:
                # 8-bit samples in big-endian 16-bit words: swap each byte pair back.
                even = memoryview(data)[offset:offset + (per * n + 1) // 2 * 2]
                raw = memoryview(np.frombuffer(even, ">u2").astype("<u2").tobytes())[:per * n]
            self._native, self._frame_bytes = raw, per
        elif length != 0xFFFFFFFF:
            raise InputError("bad_header", "compressed Pixel Data must be encapsulated (undefined length)")
        elif self.fast:
            self._fragments = self._jpeg_frames(data[offset:])
        else:
            self.ds = _read_full(data)

    def _jpeg_frames(self, encapsulated: bytes) -> list[bytes]:
        from pydicom.encaps import generate_frames

        n = self.h.frames
        frames: list[bytes] = []
        try:
            with quiet_pydicom():
                for buf in generate_frames(encapsulated, number_of_frames=n):
                    frames.append(buf)
                    if len(frames) > n:
                        break
        except PARSE_ERRORS:
            raise InputError("frame_count_mismatch",
                             f"the encapsulated Pixel Data does not split into {n} frames") from None
        if len(frames) != n:
            raise InputError("frame_count_mismatch",
                             f"NumberOfFrames is {n} but the Pixel Data holds {len(frames)} frames")
        return frames

    def reduce(self, scale: int) -> tuple[int, int]:
        """Decode JPEG frames at 1/``scale`` from now on (fast path only); the new frame shape."""
        if scale != 1 and not self.fast:
            raise ValueError("only JPEG-baseline frames decode at a reduced scale")
        self.scale = scale
        return reduced_shape(self.shape, scale)

    def _decode_jpeg(self, i: int) -> np.ndarray:
        if self._fragments is None:
            raise InputError("corrupt_frame", "the file holds no JPEG frames")
        buf = self._fragments[i]
        n = self.h.frames
        if gate.jpeg_dims(buf) != self.shape:
            raise InputError("corrupt_frame", f"frame {i + 1} of {n}: JPEG size disagrees with Rows/Columns")
        if buf.rstrip(b"\x00")[-2:] != b"\xff\xd9":
            raise InputError("corrupt_frame", f"frame {i + 1} of {n} is truncated (no JPEG end marker)")
        img = cv2.imdecode(np.frombuffer(buf, np.uint8), decode_flag(self.scale, self.colour_order is not None))
        if img is None or img.shape[:2] != reduced_shape(self.shape, self.scale):
            raise InputError("corrupt_frame", f"frame {i + 1} of {n} could not be decoded")
        return 255 - img if self.h.photometric == "MONOCHROME1" else img

    def iter(self, indices: Iterable[int] | None = None) -> Iterator[np.ndarray]:
        """Yield frames (see class doc) for ``indices`` (sorted) or all frames."""
        idx = list(range(self.n_frames)) if indices is None else list(indices)
        if self.fast:
            for i in idx:
                yield self._decode_jpeg(i)
            return
        if self._native is not None:
            for i in idx:
                yield self._decode_native(i)
            return
        yield from self._iter_pydicom(idx)

    def _decode_native(self, i: int) -> np.ndarray:
        """Frame ``i`` of uncompressed 8-bit data as grey (H, W) or RGB (H, W, 3) uint8.

        Done here rather than by pydicom: per-frame indexing of multi-frame YBR_FULL_422 is
        miscomputed in pydicom 3.0, and slicing a buffer is all that is needed anyway.
        """
        rows, cols, per = self.h.rows, self.h.cols, self._frame_bytes
        pi = self.h.photometric
        if self._native is None:
            raise InputError("corrupt_frame", "the file holds no uncompressed frames")
        if self.h.sample_bytes == 2:  # 16-bit palette indices, in the syntax's byte order
            words = np.frombuffer(self._native[i * per:(i + 1) * per], ">u2" if self._big_endian else "<u2")
            return self._palette(words.reshape(rows, cols).astype(np.uint16), i)
        flat = np.frombuffer(self._native[i * per:(i + 1) * per], np.uint8)
        if self.h.samples == 1:
            arr = flat.reshape(rows, cols)
            if pi == "PALETTE COLOR":
                return self._palette(arr, i)
            return 255 - arr if pi == "MONOCHROME1" else arr
        if pi == "YBR_FULL_422":
            q = flat.reshape(rows, cols // 2, 4)
            y = q[..., :2].reshape(rows, cols)
            ycrcb = np.dstack([y, np.repeat(q[..., 3], 2, axis=1), np.repeat(q[..., 2], 2, axis=1)])
            return cv2.cvtColor(ycrcb, cv2.COLOR_YCrCb2RGB)
        colour = flat.reshape(3, rows, cols).transpose(1, 2, 0) if self.h.planar == 1 else flat.reshape(rows, cols, 3)
        if pi in ("YBR_FULL", "YBR_ICT", "YBR_RCT"):
            return cv2.cvtColor(np.ascontiguousarray(colour[..., [0, 2, 1]]), cv2.COLOR_YCrCb2RGB)
        return np.ascontiguousarray(colour)

    def _palette(self, idx: np.ndarray, i: int) -> np.ndarray:
        try:
            with quiet_pydicom():
                return self._to_uint8(_apply_palette(idx, self.ds), i)
        except PARSE_ERRORS:
            raise InputError("corrupt_frame", f"frame {i + 1} of {self.h.frames}: the palette could not be applied") from None

    def _iter_pydicom(self, idx: list[int]) -> Iterator[np.ndarray]:
        from pydicom.pixels import iter_pixels

        n = self.h.frames
        it = iter_pixels(self.ds, indices=idx, as_rgb=True)
        for i in idx:
            try:
                with quiet_pydicom():
                    arr = next(it)
                    if self.h.photometric == "PALETTE COLOR":
                        arr = _apply_palette(arr, self.ds)
            except (StopIteration, *PARSE_ERRORS, ImportError):
                raise InputError("corrupt_frame", f"frame {i + 1} of {n} could not be decoded") from None
            yield self._to_uint8(arr, i)

    def _to_uint8(self, arr: np.ndarray, i: int) -> np.ndarray:
        if arr.shape[:2] != self.shape:
            raise InputError("corrupt_frame", f"frame {i + 1} of {self.h.frames} has the wrong size")
        if arr.dtype == np.uint16:  # 16-bit palette entries
            arr = (arr >> 8).astype(np.uint8)
        elif arr.dtype != np.uint8:
            arr = np.clip(arr, 0, 255).astype(np.uint8)
        if self.h.photometric == "MONOCHROME1":
            arr = 255 - arr
        return np.ascontiguousarray(arr)

    def map(self, fn: Callable[[int, np.ndarray], object]) -> list:
        """``[fn(i, frame_i) for every frame]``, decoding JPEG frames in parallel threads
        (OpenCV releases the GIL); at most ``threads`` full-size frames exist at once."""
        rows, cols = self.shape
        # Thread hand-offs cost more than decoding a small JPEG frame: parallel only for big ones.
        if self.fast and self.threads > 1 and self.n_frames > 1 and rows * cols >= PARALLEL_MIN_PIXELS:
            with ThreadPoolExecutor(self.threads) as pool:
                return list(pool.map(lambda i: fn(i, self._decode_jpeg(i)), range(self.n_frames)))
        return [fn(i, f) for i, f in enumerate(self.iter())]


def _apply_palette(indices: np.ndarray, ds) -> np.ndarray:
    """Palette indices (8- or 16-bit) -> RGB; 8-bit entries (returned by pydicom in 16-bit words,
    already 0..255) as uint8 so they are not mistaken for 16-bit entries and shifted to black."""
    from pydicom.pixels import apply_color_lut

    rgb = apply_color_lut(indices, ds)
    if int(ds.RedPaletteColorLookupTableDescriptor[2]) <= 8:
        rgb = rgb.astype(np.uint8)
    return rgb


def _read_full(data: bytes):
    """The whole dataset, pixel bytes included (bounded by the file-size gate already passed)."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        with quiet_pydicom():
            ds = pydicom.dcmread(io.BytesIO(data))
            if "PixelData" in ds:
                ds.PixelData  # noqa: B018 — force the read now, inside the error handler
            return ds
    except (InvalidDicomError, *PARSE_ERRORS):
        raise InputError("truncated_pixels", "the DICOM Pixel Data could not be read (truncated or malformed)") from None


def _number(value) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def frame_rate(ds) -> tuple[float, str]:
    """(fps, source): FrameTime → FrameTimeVector → CineRate → RecommendedDisplayFrameRate → 30."""
    from pydicom.multival import MultiValue

    lo, hi = FPS_RANGE
    with quiet_pydicom():
        try:
            ft = _number(ds.get("FrameTime"))
            if ft and ft > 0 and lo <= 1000.0 / ft <= hi:
                return 1000.0 / ft, "FrameTime"
            vec = ds.get("FrameTimeVector")
            if vec is not None:
                items = list(vec) if isinstance(vec, (list, tuple, MultiValue)) else [vec]
                vals = [v for v in map(_number, items) if v is not None]
                vals = vals[1:] if len(vals) > 1 and vals[0] == 0 else vals
                mean = float(np.mean(vals)) if vals else 0.0
                if mean > 0 and lo <= 1000.0 / mean <= hi:
                    return 1000.0 / mean, "FrameTimeVector"
            for key in ("CineRate", "RecommendedDisplayFrameRate"):
                rate = _number(ds.get(key))
                if rate and lo <= rate <= hi:
                    return rate, key
        except PARSE_ERRORS:
            pass
    return 30.0, "default"
