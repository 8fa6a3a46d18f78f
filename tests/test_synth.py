"""The synthetic paired echo–CMR cohort generator (``echocmr synth``)."""

from __future__ import annotations

import argparse
import csv
import dataclasses
import datetime as dt
import json
from pathlib import Path

import cv2
import numpy as np
import pydicom
import pytest
from pydicom.pixels import pixel_array

from echocmr.config import SynthConfig
from echocmr.synth import BurnedText, HeartState, draw_clip_spec, generate_cohort, generate_patients, render_clip
from echocmr.synth.cohort import TERRITORIES
from echocmr.synth.generate import CMR_COLUMNS, ECHO_INDEX_COLUMNS
from echocmr.targets import N_SEGMENTS

JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
US_MULTIFRAME = "1.2.840.10008.5.1.4.1.1.3.1"
CSV_FILES = ("echo_index.csv", "cmr_reports.csv", "ground_truth/patients.csv",
             "ground_truth/clips.csv", "ground_truth/studies.csv")


def _read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def cohort(small_cohort) -> Path:
    return small_cohort  # tests/conftest.py: SynthConfig.small(), written once per session


def _heart(score: int = 0, t1: float = 1020.0) -> HeartState:
    return HeartState(
        wma=np.full(N_SEGMENTS, score, np.int8), transmural=np.zeros(N_SEGMENTS, bool),
        excursion=0.3, lv_scale=1.0, wall_scale=1.0, septal_scale=1.0,
        t1_ms=t1, t2_ms=49.0, ecv_pct=28.0,
    )


def _spec(view: str = "A4C", seed: int = 5):
    return draw_clip_spec(np.random.default_rng(seed), view, (160, 208), 2.0)


# --------------------------------------------------------------------------- labels

@pytest.fixture(scope="module")
def patients():
    return generate_patients(SynthConfig(seed=3), n=2000)


def test_label_statistics_match_the_paper_cohort(patients):
    cmrs = [c for p in patients for c in p.cmrs]
    t1 = np.array([c.t1_ms for c in cmrs])
    t2 = np.array([c.t2_ms for c in cmrs])
    ecv = np.array([c.ecv_pct for c in cmrs])
    assert 0.40 <= np.mean([p.any_wma for p in patients]) <= 0.57
    assert 0.40 <= np.mean([p.any_lge for p in patients]) <= 0.58
    assert 52 <= np.mean([p.age for p in patients]) <= 60
    assert 0.35 <= np.mean([p.sex == "F" for p in patients]) <= 0.49
    assert 1000 <= t1.mean() <= 1040 and 55 <= t1.std() <= 90 and 0.18 <= (t1 > 1060).mean() <= 0.34
    assert np.isnan(t1).sum() == 0
    t2_ok, ecv_ok = t2[~np.isnan(t2)], ecv[~np.isnan(ecv)]
    assert 46.5 <= t2_ok.mean() <= 51 and 0.04 <= (t2_ok > 58).mean() <= 0.13
    assert 26 <= ecv_ok.mean() <= 31 and 0.14 <= (ecv_ok > 33).mean() <= 0.30
    assert 0.05 <= np.isnan(t2).mean() <= 0.4 and 0.05 <= np.isnan(ecv).mean() <= 0.4
    lvef = np.array([p.lvef_pct for p in patients])
    assert 40 <= lvef.mean() <= 62 and lvef.min() < 35 and lvef.max() > 60


def test_scar_patterns_are_ischaemic_in_territories_and_partly_silent_otherwise(patients):
    isch = [p for p in patients if p.disease == "ischaemic"]
    lge_with_wma = np.mean([p.heart.wma[i] > 0 for p in isch for i in np.flatnonzero(p.lge)])
    assert lge_with_wma > 0.85  # ischaemic scar sits in dysfunctional segments
    territory_sets = [set(s) for s in TERRITORIES.values()]
    for p in isch:
        for seg in np.flatnonzero(p.heart.transmural) + 1:
            assert p.lge[seg - 1] and p.heart.wma[seg - 1] >= 2
        wma_segs = set(np.flatnonzero(p.heart.wma) + 1)
        assert any(wma_segs <= a | b for a in territory_sets for b in territory_sets)
    non_isch = [p for p in patients if p.disease in ("myocarditis", "hypertrophic", "dilated", "amyloid")]
    silent = np.mean([p.heart.wma[i] == 0 for p in non_isch for i in np.flatnonzero(p.lge)])
    assert silent > 0.4  # non-ischaemic LGE often with normal motion: only partly visible on echo


def _t1_gap_amyloid_vs_normal(patients) -> float:
    t1 = {d: np.mean([p.heart.t1_ms for p in patients if p.disease == d]) for d in ("amyloid", "normal")}
    return t1["amyloid"] - t1["normal"]


def test_tissue_values_are_independent_of_anatomy_unless_confounded(patients):
    confounded = generate_patients(SynthConfig(seed=3, tissue_confounded=True), n=2000)
    # Same anatomy, labels and dates either way: only the tissue values are drawn differently.
    for a, b in zip(patients[:200], confounded[:200]):
        assert a.disease == b.disease and a.studies == b.studies
        assert np.array_equal(a.heart.wma, b.heart.wma) and np.array_equal(a.lge, b.lge)
        assert a.heart.wall_scale == b.heart.wall_scale and a.lvef_pct == b.lvef_pct
    assert _t1_gap_amyloid_vs_normal(confounded) > 100  # amyloid: thick walls and high T1
    assert abs(_t1_gap_amyloid_vs_normal(patients)) < 30  # ~120 amyloid patients: SE ~8 ms
    wall = np.array([p.heart.wall_scale for p in patients])
    burden = np.array([p.lge.mean() for p in patients])
    for values in ([p.heart.t1_ms for p in patients], [p.heart.ecv_pct for p in patients]):
        assert abs(np.corrcoef(wall, values)[0, 1]) < 0.07  # 2,000 patients: SE of r ~0.022
        assert abs(np.corrcoef(burden, values)[0, 1]) < 0.07
    t1_conf = np.array([p.heart.t1_ms for p in confounded])
    assert np.corrcoef(wall, t1_conf)[0, 1] > 0.2


def test_dates_and_pairing_coverage(patients):
    days = np.array([s.days_to_cmr for p in patients for s in p.studies])
    paired = np.abs(days) <= 30
    assert 0.85 <= paired.mean() <= 0.95
    assert 1 <= np.median(days[paired]) <= 3
    q1, q3 = np.percentile(days[paired], [25, 75])
    assert -4 <= q1 <= 0 and 4 <= q3 <= 8
    assert np.mean([len(p.studies) > 1 for p in patients]) > 0.3
    assert 0.02 <= np.mean([len(p.cmrs) == 2 for p in patients]) <= 0.12
    for p in patients[:200]:
        for date in [s.date for s in p.studies] + [c.date for c in p.cmrs]:
            assert 2011 <= date.year <= 2022
    assert len({p.patient_id for p in patients}) == len({p.phi.name for p in patients}) == len(patients)


# --------------------------------------------------------------------------- written cohort

def test_csv_layout_matches_architecture(cohort):
    echo = _read_csv(cohort / "echo_index.csv")
    assert tuple(echo[0]) == ECHO_INDEX_COLUMNS
    reports = _read_csv(cohort / "cmr_reports.csv")
    assert tuple(reports[0]) == CMR_COLUMNS
    assert all(row["wma_1"] in "0123" and row["lge_1"] in "01" for row in reports)
    clips = _read_csv(cohort / "ground_truth" / "clips.csv")
    assert list(clips[0])[:11] == ["file", "view", "heart_rate_bpm", "fps", "n_frames", "transfer_syntax",
                                   "has_regions", "phi_name", "phi_id", "phi_birth_date", "phi_institution"]
    assert [r["file"] for r in echo] == [r["file"] for r in clips]
    views = {r["view"] for r in clips}
    assert {"A4C", "A2C", "PLAX"} <= views and views & {"PSAX", "A3C"}
    meta = json.loads((cohort / "cohort.json").read_text())
    assert meta["synthetic"] is True and meta["counts"]["clips"] == len(clips)


def test_every_dicom_reads_and_decodes(cohort):
    clips = _read_csv(cohort / "ground_truth" / "clips.csv")
    syntaxes, regions = set(), []
    for row in clips:
        path = cohort / row["file"]
        assert path.read_bytes()[128:132] == b"DICM"
        ds = pydicom.dcmread(path)  # no force: preamble and file meta are valid
        assert ds.SOPClassUID == US_MULTIFRAME and ds.Modality == "US"
        assert ds.file_meta.TransferSyntaxUID == row["transfer_syntax"]
        syntaxes.add(ds.file_meta.TransferSyntaxUID)
        expected_pi = "YBR_FULL_422" if row["transfer_syntax"] == JPEG_BASELINE else "RGB"
        assert ds.PhotometricInterpretation == expected_pi
        assert float(ds.FrameTime) == pytest.approx(1000 / float(row["fps"]), rel=1e-3)
        assert ds.PatientName == row["phi_name"] and ds.PatientID == row["phi_id"]
        assert ds.InstitutionName == row["phi_institution"]
        regions.append("SequenceOfUltrasoundRegions" in ds)
        assert regions[-1] == bool(int(row["has_regions"]))
        n = int(row["n_frames"])
        assert int(ds.NumberOfFrames) == n
        # Decoding every frame of every file is slow on a busy CI box: first and last frame here,
        # every frame of one file per transfer syntax below.
        for index in (0, n - 1):
            frame = pixel_array(ds, index=index)
            assert frame.shape == (ds.Rows, ds.Columns, 3) and frame.dtype == np.uint8
    assert syntaxes == {JPEG_BASELINE, EXPLICIT_LE}
    assert any(regions) and not all(regions)
    for syntax in (JPEG_BASELINE, EXPLICIT_LE):
        row = next(r for r in clips if r["transfer_syntax"] == syntax)
        ds = pydicom.dcmread(cohort / row["file"])
        assert ds.pixel_array.shape == (int(row["n_frames"]), ds.Rows, ds.Columns, 3)


def test_study_uid_shared_within_a_study(cohort):
    echo = _read_csv(cohort / "echo_index.csv")
    by_study: dict[str, set] = {}
    for row in echo:
        ds = pydicom.dcmread(cohort / row["file"], stop_before_pixels=True)
        by_study.setdefault(row["study_id"], set()).add(ds.StudyInstanceUID)
        assert ds.StudyDate == row["study_date"].replace("-", "")
    assert all(len(uids) == 1 for uids in by_study.values())
    assert len({next(iter(u)) for u in by_study.values()}) == len(by_study)


def test_pairing_in_the_written_cohort(cohort):
    cmr = {}
    for row in _read_csv(cohort / "cmr_reports.csv"):
        cmr.setdefault(row["patient_id"], []).append(dt.date.fromisoformat(row["cmr_date"]))
    studies = {(r["patient_id"], r["study_date"]) for r in _read_csv(cohort / "echo_index.csv")}
    near = [min(abs((dt.date.fromisoformat(d) - c).days) for c in cmr[p]) <= 30 for p, d in studies]
    assert sum(near) > len(near) / 2 and not all(near)


@pytest.mark.slow  # in `make test`, not the quick run (> 5 s)
def test_deterministic_and_independent_of_workers(cohort, tmp_path):
    generate_cohort(dataclasses.replace(SynthConfig.small(), workers=2), tmp_path)
    for name in CSV_FILES:
        assert (tmp_path / name).read_bytes() == (cohort / name).read_bytes(), name
    first = _read_csv(cohort / "echo_index.csv")[0]["file"]
    a = pydicom.dcmread(cohort / first).pixel_array
    b = pydicom.dcmread(tmp_path / first).pixel_array
    assert np.array_equal(a, b)


# --------------------------------------------------------------------------- rendering

def test_akinetic_segments_move_less_than_normal_ones():
    spec = _spec("A4C")
    normal = render_clip(spec, _heart(0))
    akinetic = render_clip(spec, _heart(2))
    shown = ~np.isnan(normal.segment_radii[0])
    excursion_normal = np.ptp(normal.segment_radii[:, shown], axis=0)
    excursion_akinetic = np.ptp(akinetic.segment_radii[:, shown], axis=0)
    assert np.all(excursion_normal > 2.0)  # canvas pixels: a clearly visible inward motion
    assert np.all(excursion_akinetic < 0.2 * excursion_normal)
    x0, y0, x1, y1 = spec.bbox
    std_normal = normal.clean[:, y0:y1, x0:x1].astype(np.float32).std(axis=0).mean()
    std_akinetic = akinetic.clean[:, y0:y1, x0:x1].astype(np.float32).std(axis=0).mean()
    assert std_normal > 1.1 * std_akinetic


def test_dyskinetic_segments_bulge_outwards():
    clip = render_clip(_spec("A2C"), _heart(3))
    shown = ~np.isnan(clip.segment_radii[0])
    es = int(np.argmax(clip.contraction))
    ed = int(np.argmin(clip.contraction))
    assert np.all(clip.segment_radii[es, shown] > clip.segment_radii[ed, shown])


def test_tissue_signal_zero_keeps_pixels_independent_of_relaxometry():
    spec = _spec("PLAX")
    a = render_clip(spec, _heart(0, t1=950.0), tissue_signal=0.0)
    b = render_clip(spec, _heart(0, t1=1200.0), tissue_signal=0.0)
    assert np.array_equal(a.frames, b.frames)
    c = render_clip(spec, _heart(0, t1=950.0), tissue_signal=1.0)
    d = render_clip(spec, _heart(0, t1=1200.0), tissue_signal=1.0)
    assert not np.array_equal(c.frames, d.frames)
    assert d.clean.mean() > c.clean.mean()  # fibrosis (high T1) brightens the myocardium


def test_views_render_as_a_sector_with_text_outside():
    for view in ("A4C", "A2C", "PLAX", "PSAX", "A3C"):
        spec = _spec(view, seed=11)
        text = BurnedText(("SOMEWHERE HOSPITAL", "DOE^JANE"), ("2019-01-01",))
        clip = render_clip(spec, _heart(0), text=text)
        frames, mask = clip.frames, clip.sector_mask
        assert frames.shape == (spec.n_frames, *spec.size, 3)
        assert spec.n_frames >= 2 * spec.fps * 60 / spec.heart_rate_bpm
        rows = spec.size[0]
        upper = mask.copy()
        upper[int(0.85 * rows):] = False  # the ECG band may cross the sector; nothing else may
        inside = frames[:, upper]
        assert np.array_equal(inside[..., 0], clip.clean[:, upper])
        assert np.array_equal(inside[..., 0], inside[..., 1])
        outside = frames[0][~mask]
        assert outside.any() and clip.clean[0][~mask].max() == 0
        blood_vs_tissue = clip.clean[0][mask]
        # Log-compressed like a scanner: black blood and noise floor, a few bright specular echoes.
        assert blood_vs_tissue.min() < 20 and np.percentile(blood_vs_tissue, 99) > 90


# --------------------------------------------------------------------------- CLI

def _run_cli(argv: list[str]) -> int:
    from echocmr import cli
    try:
        parser = cli.build_parser()
    except ModuleNotFoundError as exc:  # another stage's command is not there yet
        if "synth" in (exc.name or ""):
            raise
        from echocmr.commands import synth
        parser = argparse.ArgumentParser(prog="echocmr")
        synth.register(parser.add_subparsers(dest="command", required=True))
        args = parser.parse_args(argv)
        return args.func(args)
    del parser
    return cli.main(argv)


def test_cli_small_with_echonet_layout(tmp_path, capsys):
    out = tmp_path / "cohort"
    argv = ["synth", "--small", "--patients", "2", "--seed", "4", "--echonet", "--out", str(out)]
    assert _run_cli(argv) == 0
    assert '"patients": 2' in capsys.readouterr().out
    echo = _read_csv(out / "echo_index.csv")
    assert len({r["patient_id"] for r in echo}) == 2
    files = _read_csv(out / "echonet" / "FileList.csv")
    assert files and list(files[0]) == ["FileName", "EF", "ESV", "EDV", "FrameHeight", "FrameWidth",
                                        "FPS", "NumberOfFrames", "Split"]
    capture = cv2.VideoCapture(str(out / "echonet" / "Videos" / f"{files[0]['FileName']}.avi"))
    ok, frame = capture.read()
    capture.release()
    assert ok and frame.shape == (112, 112, 3)
