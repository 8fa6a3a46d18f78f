"""Per-segment (AHA 17) labels, masking, loss, study fusion and held-out evaluation on tiny data."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from echocmr.config import EvalConfig, LabelConfig, TrainConfig
from echocmr.errors import CheckpointError
from echocmr.labels import LGE_COLUMNS, WMA_COLUMNS, clip_targets, report_labels
from echocmr.segment_eval import SEGMENTS_FILE, evaluate_segments, read_segment_results, write_segment_results
from echocmr.segments import (
    EXAMPLE_TRUTH_FILE,
    read_example_truth,
    study_segment_frame,
    study_segments,
    truth_from_scores,
    truth_to_json,
)
from echocmr.targets import BULLSEYE, SEGMENT_OUTPUTS, VIEW_SEGMENTS, output_kind, segment_output, views_showing


def _reports(wma: list[list[int]], lge: list[list[int]]) -> pd.DataFrame:
    rows = []
    for k, (w, g) in enumerate(zip(wma, lge)):
        row = {"cmr_id": f"C{k}", "patient_id": f"P{k}", "cmr_date": "2024-01-01", "t1_ms": 1000, "t2_ms": 50,
               "ecv_pct": 28}
        row.update(dict(zip(WMA_COLUMNS, w)))
        row.update(dict(zip(LGE_COLUMNS, g)))
        rows.append(row)
    return pd.DataFrame(rows)


def test_rules_cover_the_17_segments_once():
    assert len(SEGMENT_OUTPUTS) == 34 and output_kind("lge_seg17") == "binary" and output_kind("t1") == "continuous"
    assert sorted(c.segment for c in BULLSEYE) == list(range(1, 18))
    assert views_showing(17) == ("A4C", "A2C") and views_showing(2) == ("PLAX",)
    for ring, total in ((0, 360), (1, 360), (2, 360), (3, 360)):
        assert sum(c.width for c in BULLSEYE if c.ring == ring) == total
    # AHA orientation: anterior (1, 7, 13) at the top, septum (2, 3; 14) on the viewer's left.
    by = {c.segment: c.theta for c in BULLSEYE}
    assert by[1] == by[7] == by[13] == 0 and by[2] == 300 and by[14] == 270 and by[16] == 90


def test_segment_labels_follow_the_view_thresholds_and_are_masked_by_view():
    wma = [[0] * 17 for _ in range(2)]
    lge = [[0] * 17 for _ in range(2)]
    wma[0][3] = 1  # segment 4 (basal inferior, A2C) hypokinetic
    wma[1][2] = 2  # segment 3 (basal inferoseptal, A4C) akinetic
    lge[1][16] = 1  # apex
    labels = report_labels(_reports(wma, lge), LabelConfig())
    assert labels.loc[0, "wma_seg4"] == 1 and labels.loc[0, "wma_seg3"] == 0 and labels.loc[1, "lge_seg17"] == 1
    clips = pd.DataFrame({"cmr_id": ["C0", "C0", "C1", "C1"], "view": ["A2C", "A4C", "A4C", "PSAX"]})
    out = clip_targets(clips, labels)
    shown = {v: {segment_output("wma", s) for s in segs} for v, segs in VIEW_SEGMENTS.items()}
    for i, view in enumerate(out["view"]):
        for name in (n for n in SEGMENT_OUTPUTS if n.startswith("wma")):
            value = out.loc[i, name]
            assert math.isnan(value) == (name not in shown.get(view, set())), (view, name)
    assert out.loc[0, "wma_seg4"] == 1 and out.loc[0, "wma_view"] == 1
    assert out.loc[1, "wma_view"] == 0  # A4C does not show segment 4
    assert out.loc[2, "wma_seg3"] == 1 and out.loc[2, "lge_seg17"] == 1
    # A stricter threshold (akinetic and worse) applies to the segments too.
    strict = report_labels(_reports(wma, lge), LabelConfig(wma_min_score=2))
    assert strict.loc[0, "wma_seg4"] == 0 and strict.loc[1, "wma_seg3"] == 1


def test_masked_segments_contribute_no_loss_or_gradient():
    from echocmr.dataset import target_arrays
    from echocmr.models import multitask_loss

    rows = pd.DataFrame({"wma_seg3": [1.0, np.nan], "wma_seg4": [np.nan, 0.0]})
    values, mask = target_arrays(rows, ("wma_seg3", "wma_seg4"), {})
    assert mask.tolist() == [[1, 0], [0, 1]]
    out = torch.tensor([[2.0, 50.0], [-30.0, -1.0]], requires_grad=True)
    loss = multitask_loss(out, torch.from_numpy(values), torch.from_numpy(mask), [0, 1], [])
    loss.backward()
    assert out.grad[0, 1] == 0 and out.grad[1, 0] == 0 and out.grad[0, 0] != 0 and out.grad[1, 1] != 0
    expected = (torch.nn.functional.softplus(torch.tensor(-2.0)) + torch.nn.functional.softplus(torch.tensor(-1.0))) / 2
    assert float(loss.detach()) == pytest.approx(float(expected), rel=1e-5)


def test_view_models_get_segment_outputs_only_when_the_manifest_has_them():
    from echocmr.train_tasks import plan_tasks

    new = plan_tasks(TrainConfig(view_classifier=False), ["wma"] + list(SEGMENT_OUTPUTS))
    old = plan_tasks(TrainConfig(view_classifier=False), ["wma"])
    assert all(len(t.outputs) == 44 for t in new) and all(len(t.outputs) == 10 for t in old)


def test_study_segment_probability_is_the_mean_over_clips_that_show_it():
    a4c = {segment_output(f, s): 0.2 for f in ("wma", "lge") for s in range(1, 18)}
    a4c["wma_seg17"] = 0.8
    a2c = {segment_output(f, s): 0.6 for f in ("wma", "lge") for s in range(1, 18)}
    result = study_segments([("A4C", a4c), ("A4C", {**a4c, "wma_seg3": 0.4}), ("A2C", a2c), ("A2C", {"wma": 0.9})])
    assert result.value("wma", 3) == pytest.approx(0.3)  # A4C only: (0.2 + 0.4) / 2
    assert result.value("wma", 4) == pytest.approx(0.6)  # A2C only (the target-only clip adds nothing)
    assert result.value("wma", 17) == pytest.approx((0.8 + 0.8 + 0.6) / 3)  # apex: A4C and A2C
    assert math.isnan(result.value("wma", 2)) and result.views[2] == ()  # PLAX segment, no PLAX clip
    assert result.views[17] == ("A4C", "A2C")
    # The frame version (evaluation) applies the same rule.
    clip_preds = pd.DataFrame([{"clip_id": f"c{i}", "study": "S", "patient": "P", "split": "test", "view": v, **p}
                               for i, (v, p) in enumerate([("A4C", a4c), ("A4C", {**a4c, "wma_seg3": 0.4}),
                                                           ("A2C", a2c)])])
    frame = study_segment_frame(clip_preds)
    assert frame.loc[0, "wma_seg3"] == pytest.approx(0.3) and frame.loc[0, "wma_seg17"] == pytest.approx(2.2 / 3)
    assert math.isnan(frame.loc[0, "wma_seg2"])
    json.dumps(result.to_json(), allow_nan=False)  # strict JSON


def _cohort(n_patients: int, rng: np.random.Generator, signal: float = 3.0):
    """Clip predictions and manifest labels: two studies per patient (A4C + A2C clips each)."""
    preds, labels = [], []
    for p in range(n_patients):
        for s in range(2):
            study = f"S{p}-{s}"
            truth = {n: float(rng.random() < 0.4) for n in SEGMENT_OUTPUTS}
            truth["lge_seg4"] = 0.0  # never positive: too few units
            for view in ("A4C", "A2C"):
                shown = {segment_output(f, x) for f in ("wma", "lge") for x in VIEW_SEGMENTS[view]}
                logits = {n: signal * (truth[n] - 0.5) + rng.normal() for n in SEGMENT_OUTPUTS}
                key = {"clip_id": f"{study}-{view}", "study": study, "patient": f"P{p}", "split": "test", "view": view}
                preds.append({**key, **{n: 1 / (1 + math.exp(-v)) for n, v in logits.items()}})
                labels.append({**key, "status": "ok", **{n: (truth[n] if n in shown else np.nan)
                                                          for n in SEGMENT_OUTPUTS}})
    return pd.DataFrame(preds), pd.DataFrame(labels)


def test_per_segment_auroc_with_patient_bootstrap_and_insufficient_segments(tmp_path):
    clip_preds, labels = _cohort(30, np.random.default_rng(0))
    config = EvalConfig(n_bootstrap=200, seed=0, min_class_units=5)
    result = evaluate_segments(clip_preds, labels, config, synthetic=True)
    assert result is not None and len(result.records) == 34
    seg3 = result.record("wma", 3)
    assert seg3.status == "ok" and seg3.ci_low <= seg3.auroc <= seg3.ci_high and seg3.auroc > 0.7
    assert seg3.n == 60 and seg3.views == ("A4C",)
    assert result.record("lge", 4).status == "insufficient" and math.isnan(result.record("lge", 4).auroc)
    assert "minimum 5" in result.record("lge", 4).note
    plax = result.record("wma", 2)  # no PLAX clips in this cohort
    assert plax.status == "no_data" and plax.n == 0
    assert result.info["ci_method"] == config.ci_method and result.info["resample_unit"] == "patient"
    write_segment_results(result, tmp_path)
    back = read_segment_results(tmp_path)
    assert back is not None and back.record("wma", 3).auroc == pytest.approx(seg3.auroc)
    assert back.record("lge", 4).status == "insufficient" and len(back.predictions) == len(result.predictions)
    # Models without segment outputs: no segment results at all.
    assert evaluate_segments(clip_preds[["clip_id", "study", "patient", "split", "view"]], labels, config) is None


def test_segment_results_are_read_as_untrusted(tmp_path):
    from echocmr.metrics import MetricRecord
    from echocmr.results import ResultsBundle, read_results, write_results

    bundle = ResultsBundle(pd.DataFrame(columns=["study", "patient", "split", "view", "target", "y_true", "y_pred"]),
                           [MetricRecord("wma", "global", "auroc", 0.8, 0.7, 0.9, 10)], summary={"synthetic": True})
    write_results(bundle, tmp_path)
    assert read_results(tmp_path).segments is None  # a bundle without segments still reads
    clip_preds, labels = _cohort(8, np.random.default_rng(1))
    write_segment_results(evaluate_segments(clip_preds, labels, EvalConfig(n_bootstrap=50)), tmp_path)
    assert read_results(tmp_path).segments is not None
    data = json.loads((tmp_path / SEGMENTS_FILE).read_text())
    data["records"][0]["auroc"] = 7.5  # out of range
    (tmp_path / SEGMENTS_FILE).write_text(json.dumps(data))
    damaged = read_results(tmp_path)
    assert damaged.segments is None and "auroc" in damaged.segments_problem and "7.5" not in damaged.segments_problem
    data["records"][0].update(auroc=None, segment=99)
    (tmp_path / SEGMENTS_FILE).write_text(json.dumps(data))
    assert "unknown" in read_results(tmp_path).segments_problem
    (tmp_path / SEGMENTS_FILE).write_bytes(b"x" * (2 * 1024 * 1024))
    assert read_results(tmp_path).segments is None


def test_example_truth_round_trip_and_refusal(tmp_path):
    truth = truth_from_scores({4: 1, 3: 0}, {17: 1}, wma_min_score=1)
    assert truth.value("wma", 4) == 1 and truth.value("wma", 3) == 0 and math.isnan(truth.value("wma", 5))
    (tmp_path / EXAMPLE_TRUTH_FILE).write_text(json.dumps(truth_to_json(truth, synthetic=True)))
    back = read_example_truth(tmp_path)
    assert back is not None and back.value("lge", 17) == 1 and math.isnan(back.value("lge", 1))
    assert read_example_truth(tmp_path / "absent") is None
    bad = truth_to_json(truth, synthetic=True)
    bad["wma"]["4"] = "=HYPERLINK()"
    (tmp_path / EXAMPLE_TRUTH_FILE).write_text(json.dumps(bad))
    with pytest.raises(CheckpointError):
        read_example_truth(tmp_path)


def test_demo_writes_the_example_study_truth_from_its_paired_report(tmp_path):
    from echocmr.demo import write_example_truth

    wma, lge = [[0] * 17, [0] * 17], [[0] * 17, [0] * 17]
    wma[1][9] = 3  # the report within 30 days: segment 10 dyskinetic
    reports = _reports(wma, lge).assign(patient_id="P0", cmr_date=["2023-01-01", "2024-01-05"])
    reports.to_csv(tmp_path / "cmr_reports.csv", index=False)
    study = pd.Series({"patient_id": "P0", "study_id": "S1", "study_date": "2024-01-01", "file": "x.dcm"})
    write_example_truth(tmp_path, study, tmp_path)
    truth = read_example_truth(tmp_path)
    assert truth is not None and truth.value("wma", 10) == 1 and truth.value("wma", 9) == 0
    assert json.loads((tmp_path / EXAMPLE_TRUTH_FILE).read_text())["synthetic"] is True
