"""``read_clip`` and ``read_study``: gate → decode → sector mask → crop+resize → Clip."""

from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import dataclass

import numpy as np

from ..clip import Clip
from ..config import IngestLimits
from ..errors import InputError
from . import archive, burned_text, gate
from .deid import pseudonym
from .dicom import DicomSource
from .reduced import check_mode, choose_scale, scaled_geometry
from .resize import CropPlan, resample_indices
from .sector import MotionStats, sector_from_pixels
from .video import StillSource, VideoSource

log = logging.getLogger(__name__)
SECTOR_SAMPLE_FRAMES = 16  # frames sampled (evenly over the clip) to find what moves
SAFE_NAME = re.compile(r"(upload|file|input|item|archive|study)( \d{1,6})?")


@dataclass
class StudyItem:
    """One input of a study: ``clip`` when accepted, else ``error``; ``display_name`` is PHI-free."""

    index: int
    display_name: str
    clip: Clip | None
    error: InputError | None


def read_clip(source: str | os.PathLike | bytes, *, limits: IngestLimits = IngestLimits(), salt: bytes = b"",
              target_fps: float | None = None) -> Clip:
    """One echo file (DICOM, AVI, MP4, PNG/JPEG still) → de-identified ``Clip``.

    The format is sniffed from the content, never from the name. Raises ``InputError`` with a
    stable ``code`` and a PHI-free message.
    """
    data = gate.read_bounded(source, limits)
    with gate.quiet_pydicom():  # pydicom's warnings quote header values: PHI
        return clip_from_bytes(data, limits=limits, salt=salt, target_fps=target_fps)


def _open_source(data: bytes, limits: IngestLimits):
    kind = gate.sniff(data)
    if kind == "dicom":
        return DicomSource(data, limits)
    if kind in ("avi", "mp4"):
        return VideoSource(data, kind, limits)
    if kind in ("png", "jpeg"):
        return StillSource(data, kind, limits)
    if kind == "zip":
        raise InputError("is_archive", "a zip archive holds several files; read it as a study")
    if data[:4] == b"RIFF" or data[4:8] in (b"moov", b"mdat", b"free"):
        raise InputError("unsupported_container", "the video container is not AVI or MP4 (ftyp)")
    raise InputError("unknown_format", "not a DICOM (no DICM preamble), AVI, MP4, PNG or JPEG file")


def clip_from_bytes(data: bytes, *, limits: IngestLimits, salt: bytes, target_fps: float | None = None,
                    study_key: str | None = None) -> Clip:
    """``read_clip`` on bytes already bounded by the gate; ``study_key`` groups archive members."""
    if target_fps is not None and not (np.isfinite(target_fps) and target_fps > 0):
        raise InputError("bad_argument", "target_fps must be a positive number")
    with _open_source(data, limits) as src:
        geom = src.sector()
        if geom is None:
            geom = _sector_from_pixels(src)
        scale = _decode_scale(src, geom, limits)
        frame_shape = src.reduce(scale) if scale > 1 else src.shape
        frame_geom = scaled_geometry(geom, scale, src.shape)  # where the fan lies in decoded frames
        plan = CropPlan.build(frame_geom, limits.clip_size, src.colour_order)
        firsts: list[np.ndarray] = []
        sampled, samples = burned_text.sample_indices(src.n_frames), []

        def work(i: int, frame: np.ndarray) -> np.ndarray:
            if i == 0:
                firsts.append(frame.copy())
            if i in sampled:
                samples.append(plan.grey_crop(frame))
            return plan.apply(frame)

        outs = src.map(work)
        if not outs:
            raise InputError("corrupt_frame", "no frame could be decoded")
        frames, text_mask = _mask_burned_text(np.stack(outs), plan, samples)
        previews = [plan.preview(firsts[0], frame_shape, frame_geom)] if firsts else []
        fps, fps_source = src.frame_rate()
        study, series, instance = src.uid_keys()
        original_mm = src.spacing_mm()
        spacing = plan.spacing(None if original_mm is None else original_mm * scale)
        fmt = src.kind
    if target_fps is not None:
        frames = frames[resample_indices(len(frames), fps, target_fps)]
        fps = float(target_fps)
    return Clip(
        frames=np.ascontiguousarray(frames), fps=float(fps), fps_source=fps_source, sector=geom,
        pixel_spacing_mm=spacing, study_id=pseudonym(study_key or study, salt, "S"),
        series_id=pseudonym(series, salt, "R"), clip_id=pseudonym(instance, salt, "C"),
        source_format=fmt, preview=previews[0] if previews else None,
        burned_text=burned_text.describe(text_mask), decode_scale=scale,
    )


def _decode_scale(src, geom, limits: IngestLimits) -> int:
    """1, or the reduced JPEG scale (``ingest.reduced``) when the recipe asks for it and the
    source is on the JPEG fast path."""
    if check_mode(limits.jpeg_decode) == "exact" or not getattr(src, "fast", False):
        return 1
    return choose_scale(geom, limits.clip_size)


def _mask_burned_text(frames: np.ndarray, plan: CropPlan, samples: list[np.ndarray]):
    """Zero static text inside the fan in the 112×112 frames (the preview is drawn with the
    plan's ``text_mask`` afterwards); returns (frames, the mask or None when not checkable)."""
    mask = burned_text.static_text_mask(samples, plan.mask)
    if mask is None or not mask.any():
        return frames, mask
    plan.text_mask = mask
    small = plan.resize(mask) > 0  # cubic ringing only grows the mask: errs on the safe side
    frames = frames.copy()
    frames[:, small] = 0
    return frames, mask


def _sector_from_pixels(src):
    """Sample up to SECTOR_SAMPLE_FRAMES frames, accumulate motion, fit the fan."""
    from .resize import grey_without_overlays

    n = max(1, src.n_frames)
    idx = sorted(set(np.linspace(0, n - 1, min(n, SECTOR_SAMPLE_FRAMES)).round().astype(int).tolist()))
    stats = MotionStats()
    # Video containers are read sequentially anyway, so every frame contributes.
    for frame in src.iter(None if src.kind == "video" else idx):
        stats.add(grey_without_overlays(frame, src.colour_order))
    return sector_from_pixels(stats)


def _display_name(name: str) -> str:
    """``name`` when it is a neutral label ("upload", "file 2"), else "upload": never a file name."""
    return name if SAFE_NAME.fullmatch(name or "") else "upload"


def read_study(source: str | os.PathLike | bytes, *, name: str = "upload", limits: IngestLimits = IngestLimits(),
               salt: bytes = b"") -> list[StudyItem]:
    """A zip (one item per member, archive validated first) or a single file (one item).

    Problems are reported per item (``error``), never raised; a refused archive is one item.
    """
    with gate.quiet_pydicom():  # pydicom's warnings quote header values: PHI
        return read_study_with(clip_from_bytes, source, _display_name(name), limits, salt)


def read_study_with(decode, source, label: str, limits: IngestLimits, salt: bytes) -> list[StudyItem]:
    """``read_study`` with ``decode(blob, limits=, salt=, study_key=)`` turning one file's bytes into
    a Clip: ``clip_from_bytes`` in-process, or an isolated worker (``ingest.isolated``). Size checks
    and archive validation stay here, in pure Python; only the decoders are swapped."""
    label = _display_name(label)
    try:
        data = gate.read_bounded(source, limits)
        if gate.sniff(data) != "zip":
            return [StudyItem(0, label, decode(data, limits=limits, salt=salt), None)]
        zf, members = archive.open_archive(data, limits)
    except InputError as exc:
        log.info("%s rejected: %s", label, exc.code)
        return [StudyItem(0, label, None, exc)]
    study_key = "zip:" + hashlib.sha256(data).hexdigest()
    items = []
    with zf:
        for k, member in enumerate(members):
            display = f"{label} (zip member {member.position})"
            try:
                blob = archive.read_member(zf, member, limits)
                clip = decode(blob, limits=limits, salt=salt, study_key=_study_key(blob, study_key))
                items.append(StudyItem(k, display, clip, None))
            except InputError as exc:
                log.info("%s rejected: %s", display, exc.code)
                items.append(StudyItem(k, display, None, exc))
    return items


def _study_key(blob: bytes, archive_key: str) -> str | None:
    """DICOM members keep their own StudyInstanceUID; videos and stills share the archive's."""
    return None if gate.sniff(blob) == "dicom" else archive_key
