"""The published Sahashi et al. 2024 weights: import, exact preprocessing, fusion, evaluation.

The real files are never shipped, downloaded or needed: weight files in exactly the published
layout (torch.save'd r2plus1d_18(num_classes=1) state dicts, with and without the ``m.`` prefix)
are fabricated here from random weights, once per session (each is ~125 MB).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torchvision.models.video import r2plus1d_18

import dicom_factory as F
from echocmr.cli import main
from echocmr.official import OfficialWeightsError, import_official
from prepared_factory import make_prepared

pytestmark = pytest.mark.slow  # ~125 MB networks on CPU


def _random_state(seed: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    model = r2plus1d_18(weights=None, num_classes=1)
    for m in model.modules():  # non-trivial BatchNorm statistics, so eval mode matters
        if isinstance(m, torch.nn.BatchNorm3d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return model.state_dict()


@pytest.fixture(scope="session")
def published(tmp_path_factory) -> dict:
    """A4C_WallMotoion.pt saved with the wrapper prefix ``m.``, A4C_Scar.pt without it."""
    folder = tmp_path_factory.mktemp("published")
    wma, lge = _random_state(1), _random_state(2)
    torch.save({f"m.{k}": v for k, v in wma.items()}, folder / "A4C_WallMotoion.pt")
    torch.save(lge, folder / "A4C_Scar.pt")
    return {"dir": folder, "wma": wma, "lge": lge}


@pytest.fixture(scope="session")
def bundle(published, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bundles") / "published"
    assert main(["import-official", str(published["dir"]), "--out", str(out)]) == 0
    return out


def test_import_records_files_recipe_and_labels(bundle, published):
    meta = json.loads((bundle / "bundle.json").read_text())
    info = meta["official"]
    assert meta["description"] == "published weights, Sahashi et al. 2024, not retrained"
    assert meta["views"] == {"A4C": "A4C"} and info["targets"] == ["wma", "lge"]  # a subset imports
    import hashlib

    for name in ("A4C_WallMotoion.pt", "A4C_Scar.pt"):
        assert info["files"][name]["sha256"] == hashlib.sha256((published["dir"] / name).read_bytes()).hexdigest()
    assert info["files"]["A4C_WallMotoion.pt"]["had_m_prefix"] and not info["files"]["A4C_Scar.pt"]["had_m_prefix"]
    view = json.loads((bundle / "A4C.json").read_text())
    assert view["outputs"] == ["wma", "lge"] and view["model"]["arch"] == "r2plus1d_18_per_target"
    recipe = view["preprocessing"]
    assert (recipe["n_frames"], recipe["period"], recipe["min_frames"]) == (16, 2, 32)
    assert "B, G, R" in recipe["input"] and "no mean/std" in recipe["scale"]
    assert not list(bundle.glob("*.pt"))  # stored as safetensors only
    fusion = json.loads((bundle / "fusion.json").read_text())
    assert {m["method"] for t in fusion["targets"].values() for m in t["subsets"].values()} == {"mean"}


def test_hostile_and_wrong_files_are_refused(published, tmp_path):
    marker = tmp_path / "payload-ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    cases = {
        "wrong_shape": {**published["wma"], "fc.weight": torch.zeros(2, 512)},
        # padded past the size check, so the unpickler itself must refuse the payload
        "unsafe_weights": {"pad": torch.zeros(28_000_000), "x": Payload()},
        "wrong_size": {"fc.bias": torch.zeros(1)},
    }
    for code, content in cases.items():
        folder = tmp_path / code
        folder.mkdir()
        torch.save(content, folder / "PLAX_Scar.pt")
        with pytest.raises(OfficialWeightsError) as err:
            import_official(folder, tmp_path / f"out-{code}")
        assert err.value.code == code, err.value
        assert "PLAX_Scar.pt" in str(err.value) and not (tmp_path / f"out-{code}").exists()
    assert not marker.exists()
    with pytest.raises(OfficialWeightsError) as err:
        import_official(tmp_path, tmp_path / "x")
    assert err.value.code == "no_files"


def _reference_published(path: Path, state: dict, rgb: bool = False) -> float:
    """The published pipeline, written independently: cv2 read, first 32 frames, stride 2, BGR,
    /255, (N, 3, 16, 112, 112), sigmoid."""
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    video = np.array(frames)[:32][::2]  # (16, 112, 112, 3), B G R as OpenCV gives them
    if rgb:
        video = np.ascontiguousarray(video[..., ::-1])
    x = torch.tensor(video.transpose(3, 0, 1, 2)[None], dtype=torch.float32) / 255
    model = r2plus1d_18(num_classes=1)
    model.load_state_dict(state, strict=True)
    with torch.no_grad():
        return float(torch.sigmoid(model.eval()(x))[0, 0])


def _video(path: Path, n_frames: int, size: tuple[int, int], fourcc: str = "MJPG") -> Path:
    scene = F.make_scene(rows=size[1], cols=size[0], n_frames=n_frames, text=False, ecg=False)
    rgb = scene.rgb.astype(np.float32)
    rgb[..., 0] *= 0.6  # a colour cast, so that channel order changes the input
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 30, size)
    for frame in rgb.astype(np.uint8):
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def _predict_api(bundle: Path, paths: list[Path]) -> dict[str, dict[str, float]]:
    from echocmr.bundle import load_bundle
    from echocmr.official_infer import PublishedOptions, published_inputs
    from echocmr.study_prediction import ingest_study, predict_study

    sources = [(f"file {i + 1}", p) for i, p in enumerate(paths)]
    items = ingest_study(sources)
    options = PublishedOptions(published_inputs(sources, items))
    assert sorted(options.exact_inputs) == [0, 1]  # both 112x112 AVIs pass through; the MP4 does not
    result = predict_study(items, load_bundle(str(bundle)), {i: "A4C" for i in range(len(items))}, published=options)
    return {c.display_name: c.predictions for c in result.clips}


def test_predict_matches_the_published_pipeline(bundle, published, tmp_path, capsys):
    from echocmr.ingest import read_clip

    contract = _video(tmp_path / "a4c.avi", 40, (112, 112))
    short = _video(tmp_path / "short.avi", 31, (112, 112))
    other = _video(tmp_path / "big.mp4", 36, (160, 120), "mp4v")
    argv = ["predict", str(contract), str(short), str(other), "--model", str(bundle), "--json",
            "--view", "1=A4C", "--view", "2=A4C", "--view", "3=A4C"]
    assert main(argv) == 1  # the 31-frame video is dropped, as the published pipeline drops it
    result = json.loads(capsys.readouterr().out)
    assert result["model"]["model"] == "model: published weights, Sahashi et al. 2024, not retrained"
    assert "exact" in result["model"]["mode"] and "mean of the views" in result["model"]["fusion"]
    clips = {c["clip"]: c["predictions"] for c in result["clips"]}
    exact = _predict_api(bundle, [contract, short, other])  # unrounded (the JSON has 4 decimals)
    for target in ("wma", "lge"):
        expected = _reference_published(contract, published[target])
        assert exact["file 1"][target] == pytest.approx(expected, abs=1e-6)
        assert clips["file 1"][target] == pytest.approx(expected, abs=1e-4)
    swapped = _reference_published(contract, published["lge"], rgb=True)
    assert abs(swapped - expected) > 1e-4  # the test would notice a channel swap
    assert [r["clip"] for r in result["rejected"]] == ["file 2"] and "too_few_frames" in result["rejected"][0]["reason"]
    assert clips["file 2"] == {}
    # Other files go through EchoCMR ingestion; grey given as B = G = R, same sampling.
    grey = read_clip(other).frames[:32:2]
    x = torch.tensor(np.repeat(grey[None, None], 3, axis=1), dtype=torch.float32) / 255
    model = r2plus1d_18(num_classes=1)
    model.load_state_dict(published["lge"])
    with torch.no_grad():
        assert exact["file 3"]["lge"] == pytest.approx(float(torch.sigmoid(model.eval()(x))), abs=1e-6)
    assert result["global"]["wma"]["call"] is None  # no threshold was released


def test_fit_fusion_then_evaluate_gives_table2(bundle, tmp_path, capsys):
    import shutil

    own = tmp_path / "bundle"
    shutil.copytree(bundle, own)
    prepared = make_prepared(tmp_path / "prepared", views={"A4C": 16}, n_frames=34, with_rejected=False)
    assert main(["fit-fusion", "--model", str(own), "--data", str(prepared)]) == 0
    assert "fusion fitted on 2 validation studies" in capsys.readouterr().out  # the 13-frame one is dropped
    assert json.loads((own / "bundle.json").read_text())["official"]["fusion"]["fitted"] is True
    assert main(["evaluate", "--model", str(own), "--data", str(prepared), "--n-bootstrap", "50"]) == 0
    table = capsys.readouterr().out
    assert "Any WMA" in table and "Any LGE" in table and "T1" not in table
    metrics = json.loads((own / "results" / "metrics.json").read_text())
    assert {m["target"] for m in metrics} == {"wma", "lge"}
    assert set(json.loads((own / "results" / "operating_points.json").read_text())) == {"wma", "lge"}


def test_dashboard_names_the_published_model_and_predicts(bundle, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from echocmr.bundle import set_active_bundle

    root = Path(__file__).resolve().parents[1]
    monkeypatch.syspath_prepend(str(root / "dashboard"))
    monkeypatch.setenv("ECHOCMR_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ECHOCMR_MODEL", raising=False)
    set_active_bundle(bundle)
    at = AppTest.from_file(str(root / "dashboard" / "Home.py"), default_timeout=600)
    at.run()
    assert not at.exception, at.exception
    assert any("published weights, Sahashi et al. 2024, not retrained" in str(e.value) for e in at.info)
    at.switch_page("app_pages/predict.py").run()
    at.button[0].click().run()  # the shipped example study, through EchoCMR ingestion
    assert not at.exception, at.exception
    shown = "\n".join(str(e.value) for kind in ("info", "caption", "error") for e in getattr(at, kind))
    assert "mean of the views" in shown and "exact published preprocessing" in shown
    assert "Synthetic cohort" not in "\n".join(str(e.value) for e in at.warning)
    toggle = [t for t in at.toggle if str(t.key).startswith("published-windows-")][0]
    toggle.set_value(True).run()
    assert not at.exception, at.exception
    assert "test-time averaging over 4 windows" in "\n".join(str(e.value) for e in at.caption)
