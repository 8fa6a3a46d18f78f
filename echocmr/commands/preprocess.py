"""``echocmr preprocess FILE… --out DIR``: ingest files into de-identified 112×112 clips.

Per accepted clip: ``<clip_id>.npy`` (uint8 T×112×112), ``<clip_id>.json`` (timing, geometry,
pseudonymous ids) and ``<clip_id>.png`` (the masked preview), all written atomically. Inputs are
referred to by position only ("file 2"), never by name. Exit status 0 only if all were accepted.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path

import cv2
import numpy as np

from ..atomic import atomic_save_npy, atomic_write_bytes, atomic_write_json
from ..config import IngestLimits
from ..errors import InputError

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    p = subparsers.add_parser("preprocess", help="ingest echo files (DICOM/AVI/MP4/PNG/JPEG/zip) into 112×112 clips",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="+", metavar="FILE", help="input files (format sniffed from content)")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--salt", default="", help="secret salt for pseudonymous ids (default: none)")
    p.add_argument("--fps", type=float, default=None, help="resample every clip to this frame rate")
    p.set_defaults(func=run)


def clip_metadata(clip) -> dict:
    """JSON-safe description of a Clip (no pixels, no PHI)."""
    return {
        "clip_id": clip.clip_id, "study_id": clip.study_id, "series_id": clip.series_id,
        "n_frames": clip.n_frames, "fps": clip.fps, "fps_source": clip.fps_source,
        "pixel_spacing_mm": clip.pixel_spacing_mm, "sector": dataclasses.asdict(clip.sector),
        "source_format": clip.source_format, "view": clip.view, "content_sha256": clip.content_hash,
        "burned_text": clip.burned_text,
    }


def write_clip(clip, out: Path) -> None:
    """Write NAME.npy, NAME.png, then NAME.json (the json last: its presence marks completion)."""
    ok, png = cv2.imencode(".png", cv2.cvtColor(clip.preview, cv2.COLOR_RGB2BGR))
    if not ok:
        raise InputError("write_failed", "the preview could not be encoded")
    paths = [out / f"{clip.clip_id}.{ext}" for ext in ("npy", "png", "json")]
    try:
        atomic_save_npy(paths[0], np.ascontiguousarray(clip.frames))
        atomic_write_bytes(paths[1], png.tobytes())
        atomic_write_json(paths[2], clip_metadata(clip))
    except BaseException:
        for p in paths:  # each file is atomic; this makes the set all-or-nothing
            p.unlink(missing_ok=True)
        raise


def run(args) -> int:
    from ..ingest import read_study_isolated

    limits = IngestLimits()
    salt = args.salt.encode("utf-8")
    failures = 0
    for position, path in enumerate(args.files, start=1):
        # Decoded in an isolated worker: a decoder that aborts, hangs or exhausts its memory cap
        # rejects this file only (decoder_crashed / decoder_timeout / decoder_memory).
        items = read_study_isolated(path, name=f"file {position}", limits=limits, salt=salt, session="cli")
        for item in items:
            if item.error is not None:
                failures += 1
                print(f"rejected {item.display_name}: {item.error}", flush=True)
                continue
            clip = item.clip
            assert clip is not None  # a StudyItem holds either a clip or an error
            if args.fps:
                from ..ingest.resize import resample_indices

                idx = resample_indices(clip.n_frames, clip.fps, args.fps)
                clip = dataclasses.replace(clip, frames=clip.frames[idx], fps=float(args.fps))
            write_clip(clip, args.out)
            print(f"accepted {clip.clip_id} {clip.n_frames} frames {clip.fps:g} fps", flush=True)
    log.debug("preprocess: %d input(s), %d rejected", len(args.files), failures)
    return 0 if failures == 0 else 1
