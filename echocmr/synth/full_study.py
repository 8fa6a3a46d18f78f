"""Full-size synthetic echo studies: 40–120 files like a real examination.

A real study holds several clips of each standard view (A4C, A2C, A3C, PLAX, PSAX at several
levels), colour-flow clips, spectral Doppler sweeps and still frames (measurements, freezes).
This module plans such a study and renders it with the ordinary clip renderer; colour flow and
spectral Doppler are drawn here on top of / instead of the B-mode picture. Ground truth (the
``view`` column of clips.csv) says what each file is: ``A4C``, ``A4C colour``, ``doppler``,
``PLAX still``…; stills are left out of ``echo_index.csv`` as ``echocmr index`` would leave them.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np

from .render import ClipSpec, draw_clip_spec, render_clip

# (view rendered, kind) of the fixed core of every full study; the rest is drawn at random.
CORE = (("A4C", "cine"),) * 4 + (("A2C", "cine"),) * 3 + (("PLAX", "cine"),) * 4 + (("A3C", "cine"),) * 3 \
    + (("PSAX", "cine"),) * 6
EXTRA_KINDS = ("colour", "doppler", "still", "cine")
EXTRA_WEIGHTS = (0.3, 0.2, 0.3, 0.2)
RENDERED_VIEWS = ("A4C", "A2C", "PLAX", "A3C", "PSAX")


def plan_study(rng: np.random.Generator, n_files: int) -> list[tuple[str, str]]:
    """(view, kind) for each of ``n_files`` files: the core views, then colour / Doppler / stills."""
    if n_files < len(CORE):
        raise ValueError(f"a full study has at least {len(CORE)} files")
    extras = [(RENDERED_VIEWS[int(rng.integers(len(RENDERED_VIEWS)))],
               EXTRA_KINDS[int(rng.choice(len(EXTRA_KINDS), p=EXTRA_WEIGHTS))]) for _ in range(n_files - len(CORE))]
    plan = list(CORE) + extras
    return [plan[i] for i in rng.permutation(len(plan))]


def ground_truth_view(view: str, kind: str) -> str:
    return {"cine": view, "colour": f"{view} colour", "doppler": "doppler", "still": f"{view} still"}[kind]


def _colour_flow(frames: np.ndarray, spec: ClipSpec, rng: np.random.Generator, bgr: bool) -> np.ndarray:
    """Paint a colour-flow box (red towards, blue away, changing over the cycle) inside the sector."""
    x0, y0, x1, y1 = spec.bbox
    w, h = (x1 - x0) // 3, (y1 - y0) // 3
    bx = x0 + w + int(rng.integers(-w // 3, w // 3 + 1))
    by = y0 + h
    yy, xx = np.mgrid[0:h, 0:w]
    out = frames.copy()
    for t in range(len(frames)):
        phase = 2 * np.pi * t / max(len(frames) / 2.0, 1.0)
        flow = np.sin(xx / w * np.pi * 2 + phase) * np.cos(yy / h * np.pi)
        red = np.clip(flow, 0, 1) * 255
        blue = np.clip(-flow, 0, 1) * 255
        colour = np.dstack([blue, np.zeros_like(red), red] if bgr else [red, np.zeros_like(red), blue])
        box = out[t, by:by + h, bx:bx + w]
        moving = np.abs(flow)[..., None] > 0.25
        box[:] = np.where(moving, colour.astype(np.uint8), box)
        cv2.rectangle(out[t], (bx, by), (bx + w, by + h), (200, 200, 200), 1)
    return out


def _doppler(spec: ClipSpec, rng: np.random.Generator) -> np.ndarray:
    """A spectral Doppler sweep: velocity envelopes scrolling right to left under a baseline."""
    rows, cols = spec.size
    n = spec.n_frames
    beat = spec.fps * 60.0 / spec.heart_rate_bpm
    total = cols + n * 4
    t = np.arange(total)
    peak = rows * 0.35 * (0.8 + 0.4 * rng.random())
    envelope = peak * np.clip(np.sin(2 * np.pi * (t % (beat * 4)) / (beat * 4) * 1.6), 0, None) ** 1.5
    base = int(rows * 0.3)
    strip = np.zeros((rows, total), np.uint8)
    yy = np.arange(rows)[:, None]
    inside = (yy > base) & (yy < base + envelope[None, :])
    strip[inside] = (rng.random(inside.sum()) * 155 + 100).astype(np.uint8)
    strip[base, :] = 200
    frames = np.stack([strip[:, k * 4:k * 4 + cols] for k in range(n)])
    return np.repeat(frames[..., None], 3, axis=3)


def render_file(view: str, kind: str, rng: np.random.Generator, heart, size: tuple[int, int],
                render_args: dict) -> tuple[ClipSpec, np.ndarray]:
    """One file's spec and frames (T, H, W, 3; BGR if ``render_args['bgr']``)."""
    spec = draw_clip_spec(rng, view, size, render_args.pop("beats"), render_args.pop("fps_range"))
    if kind == "doppler":
        return spec, _doppler(spec, rng)
    if kind == "still":
        spec = dataclasses.replace(spec, n_frames=1)
    frames = render_clip(spec, heart, **render_args).frames
    if kind == "colour":
        frames = _colour_flow(frames, spec, rng, render_args.get("bgr", False))
    return spec, frames


def study_file_name(n: int, kind: str) -> str:
    return f"{n}.dcm" if kind != "still" else f"{n}_still.dcm"


def output_path(out: Path, patient_id: str, study_id: str, n: int, kind: str) -> str:
    return f"dicom/{patient_id}/{study_id}/{study_file_name(n, kind)}"


def render_full_study(config, patient, study, k: int, vendor: tuple[str, str], time_str: str, out: Path,
                      result) -> None:
    """Render every file of one full study into ``out`` and its rows into ``result`` (PatientOutput)."""
    from .cohort import patient_rng
    from .dicom_writer import write_dicom
    from .generate import _burned_text, _clip_row, _meta

    srng = patient_rng(config.seed, patient.index, 4, k)
    low, high = config.full_study_files
    for n, (view, kind) in enumerate(plan_study(srng, int(srng.integers(low, high + 1))), start=1):
        rng = patient_rng(config.seed, patient.index, 3, k, n)
        meta = _meta(config, patient, study, k, n, vendor, time_str, rng)
        if kind == "doppler":
            meta = dataclasses.replace(meta, with_regions=False)
        probe = draw_clip_spec(np.random.default_rng(rng.integers(2**31)), view, tuple(config.native_size),
                               config.beats, tuple(config.fps_range))
        text = _burned_text(patient, study, probe, vendor[1], time_str)
        spec, frames = render_file(view, kind, rng, patient.heart, tuple(config.native_size),
                                   {"beats": config.beats, "fps_range": tuple(config.fps_range),
                                    "tissue_signal": config.tissue_signal, "text": text, "bgr": meta.compressed})
        rel = output_path(out, patient.patient_id, study.study_id, n, kind)
        write_dicom(out / rel, frames, spec, meta, bgr=meta.compressed)
        if kind != "still":  # as `echocmr index` would: single frames are not cines
            result.echo_rows.append({"patient_id": patient.patient_id, "study_id": study.study_id,
                                     "study_date": study.date.isoformat(), "file": rel})
        result.clip_rows.append({**_clip_row(rel, spec, meta, patient, study), "view": ground_truth_view(view, kind)})


def write_one_full_study(out: Path, n_files: int, seed: int = 0,
                         native_size: tuple[int, int] = (480, 640)) -> list[Path]:
    """Just one full study of ``n_files`` files (benchmarks, tests); returns its files."""
    from ..config import SynthConfig
    from .cohort import generate_patient
    from .generate import VENDORS, PatientOutput

    config = SynthConfig(n_patients=1, seed=seed, native_size=native_size, workers=1,
                         full_study_files=(n_files, n_files))
    patient = generate_patient(config, 0)
    render_full_study(config, patient, patient.studies[0], 0, VENDORS[0], "101500", Path(out), PatientOutput())
    return sorted(Path(out).rglob("*.dcm"), key=lambda p: int(p.stem.split("_")[0]))
