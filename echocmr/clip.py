"""The ``Clip``: what ingestion hands to everything downstream.

Only de-identified content lives here: 112×112 grey frames (pixels outside the ultrasound sector
were zeroed before resizing), timing, geometry and pseudonymous identifiers. Nothing else of the
original file is kept.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class SectorGeometry:
    """Where the ultrasound fan lies in the *original* frame, in original pixel coordinates.

    ``bbox`` is (x0, y0, x1, y1), half-open. ``apex`` is the fan's apex (may lie above the image).
    Angles are in degrees from the downward vertical, negative to the image's left.
    ``source`` says how it was found: ``"regions"`` (SequenceOfUltrasoundRegions) or ``"pixels"``.
    """

    bbox: tuple[int, int, int, int]
    apex: tuple[float, float]
    radius: float
    angle_left: float
    angle_right: float
    source: str


@dataclass(frozen=True)
class Clip:
    """A de-identified echo clip.

    ``frames``: uint8 array, shape (T, 112, 112), grey. ``fps`` with ``fps_source`` naming the
    header it came from (``"default"`` when none was present). ``pixel_spacing_mm`` is the
    spacing of the 112×112 frames when the original's physical spacing was known.
    ``preview``: uint8 (H, W, 3) first frame of the original with everything outside the sector
    zeroed and the sector outlined, at most 480 px tall — safe to show or save.
    """

    frames: np.ndarray
    fps: float
    fps_source: str
    sector: SectorGeometry
    pixel_spacing_mm: float | None = None
    study_id: str = ""  # pseudonym of the StudyInstanceUID (or of the archive for videos)
    series_id: str = ""
    clip_id: str = ""  # pseudonym of the SOPInstanceUID / file content
    view: str | None = None  # when the source says so; otherwise the classifier decides
    source_format: str = "dicom"  # "dicom", "video" or "image"
    preview: np.ndarray | None = field(default=None, repr=False, compare=False)
    # What ingest.burned_text found inside the sector: "masked (N px …)", "none found", or
    # "not checked (…)" for a still, where static text cannot be told from tissue.
    burned_text: str = "not checked"
    # JPEG frames decoded at 1/decode_scale (echocmr.ingest.reduced); 1: full resolution.
    decode_scale: int = 1

    def __post_init__(self) -> None:
        f = self.frames
        if not (isinstance(f, np.ndarray) and f.dtype == np.uint8 and f.ndim == 3 and f.shape[0] >= 1):
            shape = getattr(f, "shape", None)
            dtype = getattr(f, "dtype", None)
            raise ValueError(f"Clip.frames must be uint8 (T, H, W) with T >= 1; got shape {shape} dtype {dtype}")

    @property
    def n_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def content_hash(self) -> str:
        """sha256 of the de-identified frames: stable identity for caching and de-duplication."""
        return hashlib.sha256(np.ascontiguousarray(self.frames).tobytes()).hexdigest()
