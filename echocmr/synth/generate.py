"""Write a whole synthetic cohort: DICOM files, the hospital-style CSVs and the ground truth.

Layout (docs/ARCHITECTURE.md): ``echo_index.csv``, ``cmr_reports.csv``, ``cohort.json``,
``dicom/<patient_id>/<study_id>/<n>.dcm``, ``ground_truth/{patients,clips,studies}.csv`` and
optionally ``echonet/``. Patients are rendered independently (in parallel when workers != 1) and
the CSVs are assembled in patient order, so the output does not depend on the worker count.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import os
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path

import cv2
import numpy as np

from .. import __version__
from ..atomic import atomic_write_json, atomic_write_text
from ..config import SynthConfig, to_dict
from ..errors import ConfigError
from ..targets import N_SEGMENTS
from .cohort import Patient, Study, generate_patient, generate_patients, patient_rng
from .dicom_writer import DicomMeta, write_dicom
from .echonet import FILELIST_COLUMNS, crop_resize, split_for, volumes, write_avi
from .render import BurnedText, ClipSpec, draw_clip_spec, render_clip

log = logging.getLogger(__name__)

ECHO_INDEX_COLUMNS = ("patient_id", "study_id", "study_date", "file")
CMR_COLUMNS = (("cmr_id", "patient_id", "cmr_date")
               + tuple(f"wma_{i}" for i in range(1, N_SEGMENTS + 1))
               + tuple(f"lge_{i}" for i in range(1, N_SEGMENTS + 1))
               + ("t1_ms", "t2_ms", "ecv_pct", "lvef_pct", "wall_thickness_mm"))
CLIP_COLUMNS = ("file", "view", "heart_rate_bpm", "fps", "n_frames", "transfer_syntax", "has_regions",
                "phi_name", "phi_id", "phi_birth_date", "phi_institution", "phi_accession",
                "phi_referring", "burned_in_annotation_tag", "patient_id", "study_id", "depth_cm")
PATIENT_COLUMNS = ("patient_id", "age", "sex", "disease", "lvef_pct", "t1_ms", "t2_ms", "ecv_pct",
                   "any_wma", "any_lge", "wma_scores", "lge_segments", "transmural_segments",
                   "excursion", "lv_scale", "wall_scale", "septal_scale", "n_studies", "n_cmrs",
                   "phi_name", "phi_birth_date", "phi_institution", "phi_referring")
STUDY_COLUMNS = ("study_id", "patient_id", "study_date", "nearest_cmr_id", "days_to_nearest_cmr",
                 "paired", "views")
VENDORS = (("SYNTHOSONIC", "EPIQ-SYN 7"), ("ACUSYNTH", "SC2000-S"), ("GENSONO", "VIVID E-SYN"))


@dataclass
class PatientOutput:
    """CSV rows produced while rendering one patient (dicts keyed by the column names)."""

    echo_rows: list[dict] = field(default_factory=list)
    clip_rows: list[dict] = field(default_factory=list)
    echonet_rows: list[dict] = field(default_factory=list)


# --------------------------------------------------------------------------- one patient

def _burned_text(patient: Patient, study: Study, spec: ClipSpec, vendor: str, time_str: str) -> BurnedText:
    family, given = patient.phi.name.split("^")
    hh, mm, ss = time_str[:2], time_str[2:4], time_str[4:]
    return BurnedText(
        left=(patient.phi.institution, f"{family}, {given}", f"ID: {patient.patient_id}",
              f"DOB: {patient.phi.birth_date.isoformat()}"),
        right=(f"{study.date.isoformat()} {hh}:{mm}:{ss}", vendor, f"FR {spec.fps:.0f}Hz",
               f"{spec.depth_cm:.0f}cm", "2D 58%  C 50  P Low  HGen"),
    )


def _uid(config: SynthConfig, *parts) -> str:
    """Deterministic UID in the 2.25 (UUID-derived) form from the seed and a path of identifiers.

    (pydicom's ``generate_uid(prefix=None)`` ignores its entropy sources and is random.)
    """
    key = "/".join(["echocmr-synth", str(config.seed), *map(str, parts)]).encode()
    digest = hashlib.sha256(key).digest()[:16]
    return f"2.25.{uuid.UUID(bytes=digest, version=4).int}"


def _meta(config, patient, study, k, n, vendor, time_str, rng) -> DicomMeta:
    return DicomMeta(
        patient_name=patient.phi.name, patient_id=patient.patient_id, birth_date=patient.phi.birth_date,
        sex=patient.sex, institution=patient.phi.institution, referring=patient.phi.referring,
        study_date=study.date, study_time=time_str, accession=study.accession,
        study_uid=_uid(config, patient.index, k, "study"),
        series_uid=_uid(config, patient.index, k, n, "series"),
        sop_uid=_uid(config, patient.index, k, n, "sop"),
        series_number=n, instance_number=1, manufacturer=vendor[0], model=vendor[1],
        compressed=bool(rng.random() >= config.uncompressed_fraction),
        with_regions=bool(rng.random() < config.regions_fraction),
        burned_in_tag=bool(rng.random() < 0.85),
    )


def _clip_row(rel: str, spec: ClipSpec, meta: DicomMeta, patient: Patient, study: Study) -> dict:
    return {
        "file": rel, "view": spec.view, "heart_rate_bpm": f"{spec.heart_rate_bpm:.1f}",
        "fps": f"{spec.fps:g}", "n_frames": spec.n_frames,
        "transfer_syntax": "1.2.840.10008.1.2.4.50" if meta.compressed else "1.2.840.10008.1.2.1",
        "has_regions": int(meta.with_regions), "phi_name": patient.phi.name,
        "phi_id": patient.patient_id, "phi_birth_date": patient.phi.birth_date.isoformat(),
        "phi_institution": patient.phi.institution, "phi_accession": study.accession,
        "phi_referring": patient.phi.referring, "burned_in_annotation_tag": int(meta.burned_in_tag),
        "patient_id": patient.patient_id, "study_id": study.study_id, "depth_cm": f"{spec.depth_cm:.2f}",
    }


def _echonet_row(name: str, clip, patient: Patient, rng, config: SynthConfig) -> dict:
    esv, edv = volumes(patient.lvef_pct, patient.heart.lv_scale, rng)
    return {"FileName": name, "EF": f"{patient.lvef_pct:.2f}", "ESV": f"{esv:.2f}", "EDV": f"{edv:.2f}",
            "FrameHeight": 112, "FrameWidth": 112, "FPS": f"{clip.spec.fps:g}",
            "NumberOfFrames": clip.spec.n_frames, "Split": split_for(patient.index, config.seed)}


def render_patient(config: SynthConfig, index: int, out: Path) -> PatientOutput:
    """Render and write every clip of patient ``index``; returns its CSV rows."""
    patient = generate_patient(config, index)
    result = PatientOutput()
    for k, study in enumerate(patient.studies):
        srng = patient_rng(config.seed, index, 2, k)
        vendor = VENDORS[int(srng.integers(len(VENDORS)))]
        time_str = f"{int(srng.integers(7, 19)):02d}{int(srng.integers(60)):02d}{int(srng.integers(60)):02d}"
        if config.full_study_files[1]:  # 40–120 files like a real examination (synth/full_study.py)
            from .full_study import render_full_study

            render_full_study(config, patient, study, k, vendor, time_str, out, result)
            continue
        for n, view in enumerate(study.views, start=1):
            rng = patient_rng(config.seed, index, 3, k, n)
            rows, cols = config.native_size
            fps_low, fps_high = config.fps_range
            spec = draw_clip_spec(rng, view, (rows, cols), config.beats, (fps_low, fps_high))
            meta = _meta(config, patient, study, k, n, vendor, time_str, rng)
            clip = render_clip(spec, patient.heart, config.tissue_signal,
                               _burned_text(patient, study, spec, vendor[1], time_str), bgr=meta.compressed)
            rel = f"dicom/{patient.patient_id}/{study.study_id}/{n}.dcm"
            write_dicom(out / rel, clip.frames, spec, meta, bgr=meta.compressed)
            result.echo_rows.append({"patient_id": patient.patient_id, "study_id": study.study_id,
                                     "study_date": study.date.isoformat(), "file": rel})
            result.clip_rows.append(_clip_row(rel, spec, meta, patient, study))
            if config.echonet_layout and view == "A4C":
                name = f"0X{int(rng.integers(2**63)):016X}"
                write_avi(out / "echonet" / "Videos" / f"{name}.avi", crop_resize(clip.clean, spec), spec.fps)
                result.echonet_rows.append(_echonet_row(name, clip, patient, rng, config))
    return result


# --------------------------------------------------------------------------- CSV tables

def _csv(columns, rows) -> str:
    from ..trust import csv_rows_text  # every CSV writer neutralises spreadsheet formulas

    return csv_rows_text(list(columns), list(rows))


def _fmt(value: float, digits: int) -> str:
    return "" if not np.isfinite(value) else f"{value:.{digits}f}"


def cmr_rows(patients: list[Patient]) -> list[dict]:
    """One row per CMR report (cmr_reports.csv)."""
    rows = []
    for p in patients:
        for cmr in p.cmrs:
            row: dict[str, object] = {"cmr_id": cmr.cmr_id, "patient_id": p.patient_id, "cmr_date": cmr.date.isoformat()}
            row.update({f"wma_{i + 1}": int(p.heart.wma[i]) for i in range(N_SEGMENTS)})
            row.update({f"lge_{i + 1}": int(p.lge[i]) for i in range(N_SEGMENTS)})
            row.update({"t1_ms": _fmt(cmr.t1_ms, 0), "t2_ms": _fmt(cmr.t2_ms, 1),
                        "ecv_pct": _fmt(cmr.ecv_pct, 1), "lvef_pct": _fmt(cmr.lvef_pct, 1),
                        "wall_thickness_mm": _fmt(cmr.wall_thickness_mm, 1)})
            rows.append(row)
    return rows


def _segments(flags: np.ndarray) -> str:
    return ";".join(str(i + 1) for i in np.flatnonzero(flags))


def patient_rows(patients: list[Patient]) -> list[dict]:
    """Ground truth per patient (ground_truth/patients.csv)."""
    return [{
        "patient_id": p.patient_id, "age": p.age, "sex": p.sex, "disease": p.disease,
        "lvef_pct": _fmt(p.lvef_pct, 1), "t1_ms": _fmt(p.heart.t1_ms, 1), "t2_ms": _fmt(p.heart.t2_ms, 2),
        "ecv_pct": _fmt(p.heart.ecv_pct, 2), "any_wma": int(p.any_wma), "any_lge": int(p.any_lge),
        "wma_scores": "".join(str(int(s)) for s in p.heart.wma), "lge_segments": _segments(p.lge),
        "transmural_segments": _segments(p.heart.transmural), "excursion": _fmt(p.heart.excursion, 4),
        "lv_scale": _fmt(p.heart.lv_scale, 3), "wall_scale": _fmt(p.heart.wall_scale, 3),
        "septal_scale": _fmt(p.heart.septal_scale, 3), "n_studies": len(p.studies), "n_cmrs": len(p.cmrs),
        "phi_name": p.phi.name, "phi_birth_date": p.phi.birth_date.isoformat(),
        "phi_institution": p.phi.institution, "phi_referring": p.phi.referring,
    } for p in patients]


def study_rows(patients: list[Patient]) -> list[dict]:
    """Ground-truth pairing per echo study (ground_truth/studies.csv)."""
    return [{
        "study_id": s.study_id, "patient_id": p.patient_id, "study_date": s.date.isoformat(),
        "nearest_cmr_id": s.nearest_cmr_id, "days_to_nearest_cmr": s.days_to_cmr,
        "paired": int(abs(s.days_to_cmr) <= 30), "views": ";".join(s.views),
    } for p in patients for s in p.studies]


# --------------------------------------------------------------------------- the cohort

def _init_worker() -> None:
    cv2.setNumThreads(1)  # one process per core already; nested threads only oversubscribe


def _render_all(config: SynthConfig, out: Path) -> list[PatientOutput]:
    workers = config.workers or os.cpu_count() or 1
    workers = max(1, min(workers, config.n_patients))
    if workers == 1:
        return [render_patient(config, i, out) for i in range(config.n_patients)]
    context = multiprocessing.get_context("spawn")  # no fork of a threaded (OpenCV) parent
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker)
    try:
        results = list(pool.map(render_patient, repeat(config), range(config.n_patients), repeat(out)))
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)  # e.g. Ctrl-C: don't render the queue out
        raise
    pool.shutdown()
    return results


def _validate(config: SynthConfig) -> None:
    rows, cols = config.native_size
    if config.n_patients < 1:
        raise ConfigError("n_patients must be at least 1")
    if not (64 <= rows <= 2048 and 64 <= cols <= 2048):
        raise ConfigError("native_size must be between 64 and 2048 pixels per side")
    if config.beats < 2.0:
        raise ConfigError("beats must be at least 2 (clips show at least two cardiac cycles)")
    if config.tissue_signal < 0:
        raise ConfigError("tissue_signal must be >= 0")


def generate_cohort(config: SynthConfig, out: Path) -> dict:
    """Generate the cohort under ``out``; returns a summary dict (counts and seconds)."""
    _validate(config)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    patients = generate_patients(config)
    outputs = _render_all(config, out)
    echo = [r for o in outputs for r in o.echo_rows]
    clips = [r for o in outputs for r in o.clip_rows]
    atomic_write_text(out / "echo_index.csv", _csv(ECHO_INDEX_COLUMNS, echo))
    atomic_write_text(out / "cmr_reports.csv", _csv(CMR_COLUMNS, cmr_rows(patients)))
    atomic_write_text(out / "ground_truth" / "patients.csv", _csv(PATIENT_COLUMNS, patient_rows(patients)))
    atomic_write_text(out / "ground_truth" / "clips.csv", _csv(CLIP_COLUMNS, clips))
    atomic_write_text(out / "ground_truth" / "studies.csv", _csv(STUDY_COLUMNS, study_rows(patients)))
    if config.echonet_layout:
        echonet = [r for o in outputs for r in o.echonet_rows]
        atomic_write_text(out / "echonet" / "FileList.csv", _csv(FILELIST_COLUMNS, echonet))
    counts = _counts(patients, clips)
    atomic_write_json(out / "cohort.json", {"synthetic": True, "version": __version__,
                                            "config": to_dict(config), "counts": counts})
    summary = {"out": str(out), "seconds": round(time.perf_counter() - start, 2), **counts}
    log.info("synthetic cohort: %d patients, %d studies, %d clips in %.1f s",
             counts["patients"], counts["studies"], counts["clips"], summary["seconds"])
    return summary


def _counts(patients: list[Patient], clips: list[dict]) -> dict:
    studies = [s for p in patients for s in p.studies]
    views: dict[str, int] = {}
    for row in clips:
        views[row["view"]] = views.get(row["view"], 0) + 1
    return {
        "patients": len(patients), "studies": len(studies), "cmrs": sum(len(p.cmrs) for p in patients),
        "clips": len(clips), "views": dict(sorted(views.items())),
        "jpeg_baseline": sum(r["transfer_syntax"].endswith(".4.50") for r in clips),
        "uncompressed": sum(r["transfer_syntax"].endswith(".1.2.1") for r in clips),
        "studies_with_cmr_within_30_days": sum(abs(s.days_to_cmr) <= 30 for s in studies),
        "any_wma": sum(p.any_wma for p in patients), "any_lge": sum(p.any_lge for p in patients),
    }
