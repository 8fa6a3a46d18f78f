"""``echocmr preprocess`` and ``read_study`` on archives; the synthetic cohort end to end."""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile

import cv2
import numpy as np
import pytest

import dicom_factory as F
from echocmr.ingest import read_clip, read_study
from test_ingest_phi import cli_main

ID = re.compile(r"C[0-9a-f]{10}")


@pytest.fixture(scope="module")
def scene():
    return F.make_scene(120, 160, 6, seed=21)


def test_preprocess_writes_pseudonymous_outputs_and_reports_failures(scene, tmp_path, capsys):
    good = F.write_dicom(tmp_path / "in" / "Smith_John_echo.dcm", scene, syntax="jpeg_baseline", photometric="YBR_FULL_422")
    bad = tmp_path / "in" / "Doe_Jane.dcm"
    bad.write_bytes(b"not a dicom at all" * 20)
    out = tmp_path / "out"
    status = cli_main(["preprocess", str(good), str(bad), "--out", str(out)])
    assert status == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    m = re.fullmatch(r"accepted (C[0-9a-f]{10}) 6 frames 50 fps", lines[0])
    assert m, lines[0]
    assert lines[1] == "rejected file 2: [unknown_format] not a DICOM (no DICM preamble), AVI, MP4, PNG or JPEG file"
    clip_id = m.group(1)
    assert sorted(p.name for p in out.iterdir()) == [f"{clip_id}.json", f"{clip_id}.npy", f"{clip_id}.png"]
    frames = np.load(out / f"{clip_id}.npy", allow_pickle=False)
    assert frames.shape == (6, 112, 112) and frames.dtype == np.uint8
    np.testing.assert_array_equal(frames, read_clip(good).frames)
    meta = json.loads((out / f"{clip_id}.json").read_text())
    assert meta["n_frames"] == 6 and meta["fps"] == 50.0 and meta["fps_source"] == "FrameTime"
    assert meta["sector"]["source"] == "regions" and meta["source_format"] == "dicom"
    assert meta["pixel_spacing_mm"] > 0 and meta["clip_id"] == clip_id
    preview = cv2.imread(str(out / f"{clip_id}.png"))
    assert preview.shape == (120, 160, 3)
    text = " ".join(lines) + json.dumps(meta)
    assert "Smith" not in text and "Doe" not in text


def test_preprocess_all_good_exit_zero_and_fps(scene, tmp_path, capsys):
    a = F.write_dicom(tmp_path / "a.dcm", scene, fps=60.0)
    b = F.write_dicom(tmp_path / "b.dcm", scene, syntax="rle")
    assert cli_main(["preprocess", str(a), str(b), "--out", str(tmp_path / "o"), "--fps", "30"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [l.split()[0] for l in lines] == ["accepted", "accepted"]
    assert lines[0].endswith("3 frames 30 fps")


def _zip(entries) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return buf.getvalue()


def test_read_study_zip_members(scene, tmp_path):
    d1 = F.write_dicom(tmp_path / "1.dcm", scene).read_bytes()
    d2 = F.write_dicom(tmp_path / "2.dcm", scene, syntax="jpeg_baseline", photometric="YBR_FULL_422").read_bytes()
    ok, png = cv2.imencode(".png", cv2.cvtColor(scene.rgb[0], cv2.COLOR_RGB2BGR))
    data = _zip([("PATIENT SMITH/echo1.dcm", d1), ("PATIENT SMITH/notes.txt", b"Smith, John 1961"),
                 ("PATIENT SMITH/echo2.dcm", d2), ("still.png", png.tobytes())])
    items = read_study(data, name="file 2")
    assert [i.display_name for i in items] == [f"file 2 (zip member {k})" for k in (1, 2, 3, 4)]
    assert [i.index for i in items] == [0, 1, 2, 3]
    assert items[1].error.code == "unknown_format" and items[1].clip is None
    assert items[0].clip is not None and items[2].clip is not None and items[3].clip.source_format == "image"
    assert items[3].clip.n_frames == 1
    assert all("SMITH" not in i.display_name and "Smith" not in str(i.error or "") for i in items)


def test_read_study_refuses_unsafe_names():
    assert read_study(b"junk", name="Smith John.dcm")[0].display_name == "upload"


def test_cli_zip_input(scene, tmp_path, capsys):
    data = _zip([("a.dcm", F.write_dicom(tmp_path / "a.dcm", scene).read_bytes()), ("b.txt", b"x")])
    z = tmp_path / "study.zip"
    z.write_bytes(data)
    assert cli_main(["preprocess", str(z), "--out", str(tmp_path / "o")]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("accepted C") and lines[1].startswith("rejected file 1 (zip member 2): [unknown_format]")


# -- the synthetic cohort ------------------------------------------------------------------


def test_ingest_every_file_of_a_small_synthetic_cohort(small_cohort, caplog):
    root = small_cohort  # tests/conftest.py: SynthConfig.small(), written once per session
    rows = list(csv.DictReader(open(root / "ground_truth" / "clips.csv", newline="")))
    assert rows
    phi_cols = [c for c in rows[0] if c.startswith("phi_")]
    for row in rows:
        clip = read_clip(root / row["file"], salt=b"cohort")
        assert clip.n_frames == int(row["n_frames"])
        assert clip.fps == pytest.approx(float(row["fps"]), rel=1e-3)
        expected_source = "regions" if row["has_regions"] == "1" else "pixels"
        assert clip.sector.source == expected_source
        fields = repr(clip) + clip.clip_id + clip.study_id + clip.series_id
        for col in phi_cols:
            value = row[col]
            for token in {value, *re.split(r"[\^ ,\-]", value)} - {""}:
                if len(token) >= 4:
                    assert token not in fields and token not in caplog.text
        # Burned-in text lies in the top rows outside the fan; the preview must be black there.
        p = clip.preview
        x0, y0, x1, y1 = clip.sector.bbox
        left, right = p[:, : max(x0 - 2, 0)], p[:, x1 + 2:]
        assert (left.size == 0 or left.max() == 0) and (right.size == 0 or right.max() == 0)
