"""Reduced-scale JPEG decoding: libjpeg's DCT-domain 1/2, 1/4, 1/8 decode on the fast path.

A 600×800 JPEG-baseline frame ends as a 112×112 clip frame. libjpeg can decode it at 1/2, 1/4
or 1/8 scale directly from the DCT coefficients (OpenCV's ``IMREAD_REDUCED_*``), for a fraction
of the full decode's cost. ``IngestLimits.jpeg_decode`` chooses the preprocessing recipe:

- ``"exact"`` (the default of ``read_clip``): every frame decoded at full resolution, then the
  cubic resize. The shipped model's and the published weights' recorded preprocessing.
- ``"reduced"`` (the default of ``echocmr prepare``): the largest scale 1/k whose decoded sector
  square still has at least ``REDUCED_MARGIN`` × 112 px, then the same crop plan on the sector
  geometry scaled by 1/k. Only JPEG baseline/extended DICOM frames (the fast path); every other
  source decodes exactly, and ``Clip.decode_scale`` says which scale a clip got.

The two recipes give different pixels (the DCT downscale is an area average; a cubic resize of
the full frame aliases speckle), so a model is used with the recipe it was trained on:
``prepare.json`` records it, training copies it into the checkpoint, and prediction refuses a
prepared set or decodes uploads accordingly (``model_runner``). Measured differences:
``bench/ingest.py`` and docs/SCALE.md.
"""

from __future__ import annotations

import dataclasses

import cv2

from ..clip import SectorGeometry
from ..errors import ConfigError

JPEG_DECODE_MODES = ("exact", "reduced")
# The decoded sector square must keep at least this many times the output side. 1.0: the
# largest reduction that still resizes down (or not at all) to 112 px. A larger margin buys
# nothing measurable: against an anti-aliased reference (full decode + INTER_AREA) a 1/4 decode
# differs less on average than a 1/2 decode, and both far less than the exact path's cubic
# resize does (it aliases speckle); bench/ingest.py and docs/SCALE.md give the figures.
REDUCED_MARGIN = 1.0
SCALES = (8, 4, 2)
_FLAGS = {  # scale -> (colour flag, grey flag)
    1: (cv2.IMREAD_COLOR, cv2.IMREAD_GRAYSCALE),
    2: (cv2.IMREAD_REDUCED_COLOR_2, cv2.IMREAD_REDUCED_GRAYSCALE_2),
    4: (cv2.IMREAD_REDUCED_COLOR_4, cv2.IMREAD_REDUCED_GRAYSCALE_4),
    8: (cv2.IMREAD_REDUCED_COLOR_8, cv2.IMREAD_REDUCED_GRAYSCALE_8),
}


def check_mode(mode: str) -> str:
    """``mode`` when it is a known recipe, else a ConfigError naming the choices."""
    if mode not in JPEG_DECODE_MODES:
        raise ConfigError(f"jpeg_decode must be one of {JPEG_DECODE_MODES}; got {mode!r}")
    return mode


def decode_flag(scale: int, colour: bool) -> int:
    """The ``cv2.imdecode`` flag for a frame decoded at 1/``scale``."""
    return _FLAGS[scale][0 if colour else 1]


def reduced_shape(shape: tuple[int, int], scale: int) -> tuple[int, int]:
    """(rows, cols) of a frame decoded at 1/``scale`` (libjpeg rounds up)."""
    return -(-shape[0] // scale), -(-shape[1] // scale)


def choose_scale(geom: SectorGeometry, clip_size: int, margin: float = REDUCED_MARGIN) -> int:
    """The largest k in (8, 4, 2) whose sector square keeps >= margin × clip_size px, else 1."""
    x0, y0, x1, y1 = geom.bbox
    side = max(x1 - x0, y1 - y0)
    for k in SCALES:
        if side // k >= margin * clip_size:
            return k
    return 1


def scaled_geometry(geom: SectorGeometry, scale: int, shape: tuple[int, int]) -> SectorGeometry:
    """The sector in a frame of ``shape`` decoded at 1/``scale`` (pixel centres map to centres)."""
    if scale == 1:
        return geom
    h, w = reduced_shape(shape, scale)
    x0, y0, x1, y1 = geom.bbox
    box = (x0 // scale, y0 // scale, min(-(-x1 // scale), w), min(-(-y1 // scale), h))
    apex = ((geom.apex[0] + 0.5) / scale - 0.5, (geom.apex[1] + 0.5) / scale - 0.5)
    return dataclasses.replace(geom, bbox=box, apex=apex, radius=geom.radius / scale)
