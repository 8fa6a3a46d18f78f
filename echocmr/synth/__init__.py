"""Synthetic paired echo–CMR cohort (``echocmr synth``): labels, ultrasound rendering, DICOM.

Public entry points:

* :func:`generate_cohort` — write a whole cohort (DICOM + CSVs + ground truth) to a folder.
* :func:`generate_patients` — labels, dates and PHI only (no pixels), for fast statistics.
* :func:`render_clip` / :func:`draw_clip_spec` — render one clip for a patient's heart.
* :class:`Realism` / :class:`Look` — the ranges of, and one clip's values of, the image-formation
  effects (gain, dynamic range, speckle, dropout, clutter, …); ``bench/realism.py`` measures them
  against real echo.
"""

from .cohort import DISEASES, HeartState, Patient, generate_patient, generate_patients
from .generate import generate_cohort, render_patient
from .look import Look, Realism
from .render import BurnedText, ClipSpec, RenderedClip, draw_clip_spec, render_clip

__all__ = [
    "DISEASES", "BurnedText", "ClipSpec", "HeartState", "Look", "Patient", "Realism", "RenderedClip", "draw_clip_spec",
    "generate_cohort", "generate_patient", "generate_patients", "render_clip", "render_patient",
]
