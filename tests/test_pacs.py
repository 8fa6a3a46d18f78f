"""PACS over DICOMweb against a real Orthanc: search, pull (resumable, ultrasound only), predict
in memory, and clear refusals for a server that is down, refuses the credentials or fails."""

from __future__ import annotations

import csv
import dataclasses
import http.server
import threading
from pathlib import Path

import pydicom
import pytest

from dicom_factory import CT_IMAGE, make_scene, to_bytes, base_dataset, set_pixels, _meta
from orthanc_server import PASSWORD, USER, free_port, needs_orthanc, start_orthanc
from echocmr import pull as pull_module
from echocmr.cli import main
from echocmr.config import SynthConfig
from echocmr.pacs import PacsConfig, PacsError, StudyQuery, connect, search_studies
from echocmr.pull import pull

pytestmark = needs_orthanc


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """Two synthetic patients' echo studies, plus a CT series inside the first study."""
    from echocmr.synth import generate_cohort

    root = tmp_path_factory.mktemp("pacs_cohort")
    generate_cohort(dataclasses.replace(SynthConfig.small(seed=3), n_patients=2), root / "c")
    with open(root / "c" / "echo_index.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    first = pydicom.dcmread(root / "c" / rows[0]["file"], stop_before_pixels=True)
    scene = make_scene(32, 32, n_frames=1)
    ct = base_dataset(scene, modality="CT", sop_class=CT_IMAGE, regions=False)
    ct.StudyInstanceUID, ct.PatientID, ct.StudyDate = first.StudyInstanceUID, first.PatientID, first.StudyDate
    set_pixels(ct, scene, "MONOCHROME2")
    _meta(ct, pydicom.uid.ExplicitVRLittleEndian)
    return {"rows": rows, "root": root / "c", "first": first, "ct": to_bytes(ct)}


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory, cohort):
    server = start_orthanc(tmp_path_factory.mktemp("orthanc"))
    try:
        for row in cohort["rows"]:
            server.upload((cohort["root"] / row["file"]).read_bytes())
        server.upload(cohort["ct"])
        yield server
    finally:
        server.stop()


def _config(orthanc, password: str = PASSWORD) -> PacsConfig:
    return PacsConfig(orthanc.dicomweb, "basic", USER, password)


def _us_files(cohort, patient: str) -> int:
    return sum(1 for r in cohort["rows"] if r["patient_id"] == patient)


def test_search_that_finds_nothing_writes_nothing(orthanc, tmp_path):
    assert search_studies(connect(_config(orthanc)), StudyQuery(patient="NOBODY-000")) == []
    summary = pull(_config(orthanc), StudyQuery(patient="NOBODY-000"), tmp_path / "archive")
    assert summary.studies == 0 and not (tmp_path / "archive").exists()


def test_pull_by_patient_skips_the_ct_series_and_index_reads_the_archive(orthanc, cohort, tmp_path, capsys,
                                                                        monkeypatch):
    patient = cohort["first"].PatientID
    monkeypatch.setenv("ECHOCMR_PACS_PASSWORD", PASSWORD)
    archive = tmp_path / "archive"
    assert main(["pull", "--dicomweb", orthanc.dicomweb, "--auth", "basic", "--user", USER,
                 "--patient", patient, "--out", str(archive)]) == 0
    assert PASSWORD not in capsys.readouterr().out
    files = sorted(archive.rglob("*.dcm"))
    assert len(files) == _us_files(cohort, patient)  # the CT instance was not fetched
    assert {pydicom.dcmread(f, stop_before_pixels=True).Modality for f in files} == {"US"}
    assert main(["index", str(archive), "--out", str(tmp_path / "echo_index.csv"), "--workers", "1"]) == 0
    assert len(list(csv.DictReader(open(tmp_path / "echo_index.csv")))) == len(files)


def test_search_by_date_range_and_accession(orthanc, cohort):
    client = connect(_config(orthanc))
    first = cohort["first"]
    by_accession = search_studies(client, StudyQuery(accession=first.AccessionNumber))
    assert [s.study_uid for s in by_accession] == [first.StudyInstanceUID]
    assert by_accession[0].n_ultrasound == sum(1 for r in cohort["rows"] if r["study_id"] and
                                               r["study_date"].replace("-", "") == first.StudyDate
                                               and r["patient_id"] == first.PatientID)
    day = first.StudyDate
    assert first.StudyInstanceUID in {s.study_uid for s in search_studies(client, StudyQuery(since=day, until=day))}
    assert search_studies(client, StudyQuery(since="19000101", until="19000102")) == []


@pytest.mark.slow
def test_interrupted_pull_resumes_with_only_whole_files(orthanc, cohort, tmp_path, monkeypatch):
    real = pull_module.retrieve_bytes
    calls = []

    def dying(client, ref):
        if len(calls) == 2:
            raise KeyboardInterrupt  # the connection or the operator gives up after two instances
        calls.append(ref)
        return real(client, ref)

    monkeypatch.setattr(pull_module, "retrieve_bytes", dying)
    query = StudyQuery(since="19000101")
    with pytest.raises(KeyboardInterrupt):
        pull(_config(orthanc), query, tmp_path / "archive")
    assert len(list((tmp_path / "archive").rglob("*.dcm"))) == 2
    assert not [p for p in (tmp_path / "archive").rglob("*") if p.is_file() and p.suffix != ".dcm"]
    monkeypatch.setattr(pull_module, "retrieve_bytes", real)
    summary = pull(_config(orthanc), query, tmp_path / "archive")
    assert summary.already_there == 2 and summary.fetched == len(cohort["rows"]) - 2
    for path in (tmp_path / "archive").rglob("*.dcm"):
        assert pydicom.dcmread(path).pixel_array.size > 0


def test_wrong_password_is_refused_clearly_without_writing_or_echoing_it(orthanc, tmp_path, capsys, monkeypatch):
    with pytest.raises(PacsError) as refused:
        pull(_config(orthanc, "wrong-pass-1234"), StudyQuery(since="19000101"), tmp_path / "a")
    assert refused.value.code == "pacs_unauthorised" and "401" in str(refused.value)
    monkeypatch.setenv("ECHOCMR_PACS_PASSWORD", "wrong-pass-1234")
    assert main(["pull", "--dicomweb", orthanc.dicomweb, "--auth", "basic", "--user", USER,
                 "--since", "1900-01-01", "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert "pacs_unauthorised" in err and "wrong-pass-1234" not in err
    assert not (tmp_path / "a").exists()
    assert "wrong-pass" not in repr(_config(orthanc, "wrong-pass-1234"))


def test_server_down_is_reported_as_unreachable(tmp_path):
    config = PacsConfig(f"http://127.0.0.1:{free_port()}/dicom-web", timeout_s=5)
    with pytest.raises(PacsError) as down:
        pull(config, StudyQuery(patient="X"), tmp_path / "a")
    assert down.value.code == "pacs_unreachable" and not (tmp_path / "a").exists()


def test_server_error_500_is_reported(tmp_path):
    class Failing(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 — http.server's naming
            self.send_response(500)
            self.end_headers()
            self.wfile.write(b"internal error")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Failing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        config = PacsConfig(f"http://127.0.0.1:{server.server_address[1]}/dicom-web")
        with pytest.raises(PacsError) as failed:
            pull(config, StudyQuery(patient="X"), tmp_path / "a")
        assert failed.value.code == "pacs_server_error" and "500" in str(failed.value)
        assert not (tmp_path / "a").exists()
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow  # loads the model and runs it (~75 s on a loaded 2-core machine)
def test_predict_from_pacs_in_memory(orthanc, cohort, tmp_path, capsys, monkeypatch):
    import json

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ECHOCMR_PACS_PASSWORD", PASSWORD)
    study = cohort["first"].StudyInstanceUID
    main(["predict", "--dicomweb", orthanc.dicomweb, "--auth", "basic", "--user", USER,
          "--study", study, "--json"])
    result = json.loads(capsys.readouterr().out)
    n = sum(1 for r in cohort["rows"] if r["study_date"].replace("-", "") == cohort["first"].StudyDate
            and r["patient_id"] == cohort["first"].PatientID)
    assert len(result["clips"]) + len(result["rejected"]) == n and result["global"]
    assert list(tmp_path.iterdir()) == []  # nothing written where it ran


def test_config_from_secrets_mapping_refuses_unknown_keys_and_url_credentials():
    config = PacsConfig.from_mapping({"url": "https://pacs.example.org/dicom-web", "auth": "bearer", "token": "t0k"})
    assert "t0k" not in repr(config)
    with pytest.raises(PacsError):
        PacsConfig.from_mapping({"url": "https://pacs.example.org", "passwd": "x"})
    with pytest.raises(PacsError):
        PacsConfig("https://user:pw@pacs.example.org/dicom-web")
