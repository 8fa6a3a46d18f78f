"""Per-segment findings end to end on the session's tiny trained bundle: manifest labels, prepare
resume, checkpoint outputs, results bundle, `predict --json`, and both dashboard pages (AppTest);
an old bundle (the shipped default, targets only) keeps working and says it has no segments."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from echocmr.targets import SEGMENT_OUTPUTS, VIEW_SEGMENTS, segment_output

ROOT = Path(__file__).resolve().parents[1]
HOME = ROOT / "dashboard" / "Home.py"
DEFAULT = ROOT / "checkpoints" / "default"


@pytest.fixture(scope="session")
def segment_bundle(tiny_bundle, tmp_path_factory) -> Path:
    """The tiny trained bundle (segment outputs) with the shipped model's view classifier: the
    one-epoch classifier is too unsure for the example study's clips to reach the view models."""
    bundle = tmp_path_factory.mktemp("segment-bundle") / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    for suffix in (".json", ".safetensors"):
        shutil.copy2(DEFAULT / f"view_classifier{suffix}", bundle / f"view_classifier{suffix}")
    # The shipped classifier records the exact-decode recipe; at this cohort's 192x256 frames the
    # sector is too small for a reduced decode, so both recipes give the same pixels: record the
    # view models' recipe so the bundle is served as one (study_prediction.bundle_jpeg_decode).
    recipe = json.loads((bundle / "A4C.json").read_text())["data"].get("jpeg_decode", "exact")
    meta = json.loads((bundle / "view_classifier.json").read_text())
    meta.setdefault("data", {})["jpeg_decode"] = recipe
    (bundle / "view_classifier.json").write_text(json.dumps(meta))
    return bundle


def test_manifest_has_segment_labels_only_for_segments_the_view_shows(prepared_cohort):
    from echocmr.prepared import read_manifest

    manifest = read_manifest(prepared_cohort)
    ok = manifest[(manifest["status"] == "ok") & manifest["view"].isin(list(VIEW_SEGMENTS))]
    assert len(ok) and set(SEGMENT_OUTPUTS) <= set(manifest.columns)
    for view, shown in VIEW_SEGMENTS.items():
        rows = ok[ok["view"] == view]
        for s in range(1, 18):
            column = rows[segment_output("wma", s)]
            assert column.notna().all() if s in shown else column.isna().all(), (view, s)
    # wma_view is "any WMA in the view's segments": the same labels, aggregated.
    a4c = ok[ok["view"] == "A4C"]
    any_seg = a4c[[segment_output("wma", s) for s in VIEW_SEGMENTS["A4C"]]].max(axis=1)
    assert (any_seg == a4c["wma_view"]).all()


def test_prepare_again_rebuilds_only_the_manifest(synthetic_cohort, prepared_cohort, tmp_path, monkeypatch):
    """A folder prepared before segment labels gains them without ingesting anything again."""
    from conftest import PREPARE_SALT

    from echocmr import prepare as prep
    from echocmr.config import PrepareConfig
    from echocmr.prepare import PrepareSources, prepare_dataset

    folder = tmp_path / "prepared"
    shutil.copytree(prepared_cohort, folder)
    manifest = pd.read_csv(folder / "manifest.csv")
    manifest.drop(columns=list(SEGMENT_OUTPUTS)).to_csv(folder / "manifest.csv", index=False)

    def no_ingest(task):
        raise AssertionError("a file was ingested again")

    monkeypatch.setattr(prep, "_ingest_one", no_ingest)
    sources = PrepareSources.from_cohort(synthetic_cohort, known_views=synthetic_cohort / "ground_truth" / "clips.csv")
    rebuilt = prepare_dataset(sources, folder, PrepareConfig(use_known_views=True, workers=2), salt=PREPARE_SALT)
    assert set(SEGMENT_OUTPUTS) <= set(rebuilt.columns)
    assert sorted(rebuilt["clip_id"].dropna().astype(str)) == sorted(manifest["clip_id"].dropna().astype(str))


def test_bundle_records_segment_outputs_and_held_out_segment_aurocs(tiny_bundle):
    from echocmr.results import read_results

    meta = json.loads((tiny_bundle / "A4C.json").read_text())
    assert meta["outputs"][-34:] == list(SEGMENT_OUTPUTS)
    res = read_results(tiny_bundle / "results")
    assert res.segments is not None and len(res.segments.records) == 34
    assert {r.status for r in res.segments.records} <= {"ok", "insufficient", "no_data"}
    for r in res.segments.records:
        if r.status == "ok":
            assert r.ci_low <= r.auroc <= r.ci_high
        else:
            assert math.isnan(r.auroc) and r.note
    assert res.segments.info["synthetic"] is True and res.segments.info["n_bootstrap"] == 200
    assert set(res.segments.predictions["split"]) == {"test"}


def test_predict_json_has_segment_probabilities(tiny_bundle, synthetic_cohort, capsys):
    from echocmr.cli import main

    index = pd.read_csv(synthetic_cohort / "echo_index.csv", dtype=str)
    study = index[index["study_id"] == index["study_id"].iloc[0]]
    files = [str(synthetic_cohort / f) for f in study["file"]]
    # The one-epoch classifier is unsure of views: give each clip its known view (as a user would).
    known = pd.read_csv(synthetic_cohort / "ground_truth" / "clips.csv", dtype=str).set_index("file")["view"]
    views = [f"--view={n}={known[f] if known[f] in VIEW_SEGMENTS else 'other'}"
             for n, f in enumerate(study["file"], start=1)]
    main(["predict", *files, "--model", str(tiny_bundle), "--json", *views])
    out = json.loads(capsys.readouterr().out)
    segments = out["segments"]
    used_views = {c["fed_view_model"] for c in out["clips"] if c["fed_view_model"]}
    shown = {s for v in used_views for s in VIEW_SEGMENTS[v]}
    assert shown and all(0 <= segments["wma"][str(s)] <= 1 for s in shown)
    assert all(segments["lge"][str(s)] is None for s in set(range(1, 18)) - shown)
    assert all(not k.startswith(("wma_seg", "lge_seg")) for p in out["per_view"].values() for k in p)


@pytest.fixture(scope="module")
def old_bundle(segment_bundle, tmp_path_factory) -> Path:
    """The segment bundle as a bundle from before segments: view models with the ten target
    outputs only (the head's first ten rows, re-saved as a normal checkpoint), no segment results."""
    from echocmr.checkpoint import load_checkpoint, save_checkpoint

    old = tmp_path_factory.mktemp("old") / "bundle"
    shutil.copytree(segment_bundle, old)
    for view in VIEW_SEGMENTS:
        module, meta = load_checkpoint(old / view)
        state = module.state_dict()
        state["fc.weight"], state["fc.bias"] = state["fc.weight"][:10], state["fc.bias"][:10]
        meta = {k: v for k, v in meta.items() if k not in ("sha256", "format_version")}
        save_checkpoint(old / view, state, {**meta, "outputs": meta["outputs"][:10]})
    for name in ("segments.json", "segment_predictions.csv"):
        (old / "results" / name).unlink()
    return old


def _example_items():
    from echocmr.study_prediction import ingest_study

    study = sorted(p for p in (DEFAULT / "examples").iterdir() if p.is_dir())[0]
    return ingest_study([(f.name, f.read_bytes()) for f in sorted(study.glob("*.dcm"))])


def test_a_bundle_without_segment_outputs_still_predicts(old_bundle):
    from echocmr.bundle import load_bundle
    from echocmr.results import read_results
    from echocmr.study_prediction import predict_study

    pred = predict_study(_example_items(), load_bundle(str(old_bundle)))
    assert pred.fused and pred.segments is None and pred.to_json()["segments"] is None
    assert read_results(old_bundle / "results").segments is None


# ----------------------------------------------------------------------------- pages (AppTest)


def _open(page: str) -> AppTest:
    at = AppTest.from_file(str(HOME), default_timeout=300)
    at.run()
    at.switch_page(page)
    at.run()
    assert not at.exception, at.exception
    return at


def _texts(at: AppTest) -> str:
    return "\n".join(str(e.value) for kind in ("markdown", "caption", "info", "error", "subheader")
                     for e in getattr(at, kind))


def _bullseyes(at: AppTest) -> list[dict]:
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    return [c for c in charts if any(t.get("type") == "barpolar" for t in c["data"])]


def test_pages_draw_segment_bullseyes_for_a_model_with_segments(app_home, segment_bundle):
    from echocmr.bundle import set_active_bundle

    set_active_bundle(segment_bundle)
    at = _open("app_pages/predict.py")
    at.button[0].click().run()
    assert not at.exception, at.exception
    assert "Where: per AHA segment" in _texts(at)
    drawn = _bullseyes(at)
    assert drawn, "no bullseye on the Predict page"
    bars = next(t for t in drawn[0]["data"] if t["type"] == "barpolar")
    assert len(bars["theta"]) == 17 and "predicted probability" in " ".join(bars["customdata"])

    at = _open("app_pages/results.py")
    text = _texts(at)
    assert "hover a segment for its interval" in text and "synthetic cohort" in text
    drawn = _bullseyes(at)
    assert len(drawn) >= 3  # held-out AUROC, and one test study's prediction beside its CMR truth
    hovers = " ".join(next(t for t in drawn[0]["data"] if t["type"] == "barpolar")["customdata"])
    assert "AUROC" in hovers or "withheld" in hovers
    assert "CMR truth" in json.dumps([c["layout"].get("title") for c in drawn])


def test_pages_say_plainly_when_a_model_has_no_segments(app_home, old_bundle):
    from echocmr.bundle import set_active_bundle

    set_active_bundle(old_bundle)
    at = _open("app_pages/predict.py")
    at.button[0].click().run()
    assert not at.exception, at.exception
    assert "predicts no per-segment findings" in _texts(at) and not _bullseyes(at)
    at = _open("app_pages/results.py")
    assert "no per-segment AUROCs" in _texts(at) and not _bullseyes(at)
