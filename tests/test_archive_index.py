"""``echocmr index``: headers only, skip counts by reason, zips and DICOMDIR, resume, help text."""

from __future__ import annotations

import csv
import json
import shutil
import zipfile
from pathlib import Path

import pydicom
import pydicom.fileset
import pytest

from dicom_factory import CT_IMAGE, make_scene, write_dicom
from echocmr import archive_index
from echocmr.archive_index import build_index, index_location, journal_path
from echocmr.cli import main


def _export(root: Path) -> dict[str, Path]:
    """A small PACS export: 3 cines, a CT, a single-frame US, a text file, a duplicate, a corrupt file."""
    scene = make_scene(64, 80, n_frames=6)
    files = {f"cine{k}": write_dicom(root / "P1" / f"cine{k}.dcm", scene) for k in range(3)}
    files["ct"] = write_dicom(root / "P1" / "ct.dcm", make_scene(64, 80, 2), modality="CT", sop_class=CT_IMAGE)
    files["still"] = write_dicom(root / "P2" / "still.dcm", make_scene(64, 80, n_frames=1))
    (root / "P2" / "notes.txt").write_text("not an image")
    shutil.copy(files["cine0"], root / "P2" / "copy_of_cine0.dcm")
    corrupt = (root / "P2" / "corrupt.dcm")
    corrupt.write_bytes(files["cine1"].read_bytes()[:300])
    return files


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_folder_index_counts_skips_by_reason_and_reads_headers_only(tmp_path, monkeypatch):
    _export(tmp_path / "export")
    touched = []
    real = pydicom.dcmread
    monkeypatch.setattr(pydicom, "dcmread", lambda *a, **k: touched.append(k) or real(*a, **k))
    summary = build_index([tmp_path / "export"], tmp_path / "echo_index.csv")
    assert all(k.get("stop_before_pixels") for k in touched) and touched
    assert summary.rows == 3
    assert summary.skipped == {"not_dicom": 1, "not_ultrasound": 1, "single_frame": 1, "unreadable": 1,
                               "duplicate_sop_instance": 1, "dicomdir": 0}
    rows = _rows(tmp_path / "echo_index.csv")
    assert list(rows[0])[:4] == ["patient_id", "study_id", "study_date", "file"]
    assert {r["frames"] for r in rows} == {"6"} and {r["rows"] for r in rows} == {"64"}
    assert rows[0]["study_date"] == "2020-01-02" and rows[0]["colour"] == "RGB" and rows[0]["frame_rate"] == "50.0"
    assert all((tmp_path / r["file"]).is_file() for r in rows)  # relative to the CSV's folder
    assert not journal_path(tmp_path / "echo_index.csv").exists()


def test_zip_members_and_dicomdir_are_indexed(tmp_path):
    files = _export(tmp_path / "export")
    with zipfile.ZipFile(tmp_path / "export.zip", "w") as zf:
        zf.write(files["cine2"], "DICOM/IM1")
        zf.write(files["ct"], "DICOM/IM2")
    fileset = pydicom.fileset.FileSet()
    for name in ("cine0", "cine1"):
        ds = pydicom.dcmread(files[name])
        ds.StudyID, ds.SeriesNumber, ds.InstanceNumber, ds.StudyTime = "1", 1, 1, "101112"
        fileset.add(ds)
    fileset.write(tmp_path / "media")
    summary = build_index([tmp_path / "export.zip", tmp_path / "media" / "DICOMDIR"], tmp_path / "idx.csv")
    assert summary.rows == 3 and summary.skipped["not_ultrasound"] == 1
    files_column = sorted(r["file"] for r in _rows(tmp_path / "idx.csv"))
    assert files_column[0] == "export.zip::DICOM/IM1"
    # prepare reads zip members through the same location syntax
    data = archive_index.open_location(str(tmp_path / "export.zip::DICOM/IM1"), 10**8)
    assert data == files["cine2"].read_bytes()


def test_interrupted_index_resumes_without_rereading(tmp_path, monkeypatch):
    _export(tmp_path / "export")
    out = tmp_path / "echo_index.csv"
    calls = []

    def dying(location):
        if len(calls) == 4:
            raise KeyboardInterrupt  # the operator's Ctrl-C (or a kill) after 4 files
        calls.append(location)
        return index_location(location)

    monkeypatch.setattr(archive_index, "index_location", dying)
    with pytest.raises(KeyboardInterrupt):
        build_index([tmp_path / "export"], out, flush_every=1)
    assert not out.exists() and len(archive_index.read_json_lines(journal_path(out))) == 4
    monkeypatch.setattr(archive_index, "index_location", index_location)
    seen = []
    mapper = lambda fn, items: map(fn, (seen.append(i) or i for i in items))  # noqa: E731
    summary = build_index([tmp_path / "export"], out, mapper=mapper)
    assert summary.resumed == 4 and len(seen) == 4  # only the other 4 of 8 files
    assert summary.rows == 3 and sum(summary.skipped.values()) == 5


def test_parallel_cli_and_help_say_patient_ids_stay_on_the_hospital_side(tmp_path, capsys):
    _export(tmp_path / "export")
    with pytest.raises(SystemExit):
        main(["index", "--help"])
    assert "hospital side" in capsys.readouterr().out
    assert main(["index", str(tmp_path / "export"), "--out", str(tmp_path / "i.csv"), "--workers", "2"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rows"] == 3 and report["skipped"]["duplicate_sop_instance"] == 1


def test_header_read_is_bounded(tmp_path, monkeypatch):
    files = _export(tmp_path / "export")
    monkeypatch.setattr(archive_index, "MAX_HEADER_BYTES", 400)
    assert index_location(str(files["cine0"])).skip == "unreadable"
