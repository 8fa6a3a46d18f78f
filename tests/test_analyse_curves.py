"""Learning curve and power grid: resumable cells, nested subsets, detection read-out."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from prepared_factory import make_prepared

from echocmr.analyse import AnalysisError
from echocmr.analyse import curves as K
from echocmr.cli import main
from echocmr.prepared import read_manifest as load_manifest

TINY = K.CurveConfig(epochs=1, max_train_clips=8, n_bootstrap=50, native_size=(96, 128), workers=1)


def test_smallest_detected_signal_per_size():
    records = [{"n_patients": n, "signal": s, "seconds": 1.0,
                "rows": [{"target": "t1_abnormal", "auroc": a, "ci_low": lo, "ci_high": 0.9}]}
               for n, s, a, lo in [(100, 0.0, 0.5, 0.4), (100, 0.5, 0.6, 0.45), (100, 1.0, 0.7, 0.55),
                                   (400, 0.0, 0.5, 0.45), (400, 0.5, 0.62, 0.53), (400, 1.0, 0.8, 0.7),
                                   (200, 1.0, 0.6, None)]]
    frame = K.long_rows(records, ("n_patients", "signal"))
    assert K.smallest_detected(frame, "t1_abnormal") == {100: 1.0, 200: None, 400: 0.5}
    # The figure's legend says it in words (filled markers: detected).
    from echocmr.analyse.figures import power_figure

    record = {"inputs": {"target": "t1_abnormal", "signals": [0.0, 0.5, 1.0]}, "title": "t",
              "smallest_detected": {"100": 1.0, "200": None, "400": 0.5}, "rows": frame.to_dict(orient="records")}
    names = [trace.name for trace in power_figure(record).data]
    assert names == ["100 patients (smallest detected: 1)", "200 patients (no signal up to 1 detected)",
                     "400 patients (smallest detected: 0.5)"]


def test_a_finished_cell_is_skipped_and_its_work_removed(tmp_path):
    calls = []

    def compute():
        (tmp_path / "work").mkdir(exist_ok=True)
        calls.append(1)
        return {"rows": [], "value": 3}

    first = K._run_cell(tmp_path / "out", "c1", tmp_path / "work", compute)
    again = K._run_cell(tmp_path / "out", "c1", tmp_path / "work", compute)
    assert calls == [1] and first["value"] == again["value"] == 3 and not (tmp_path / "work").exists()
    assert json.loads((tmp_path / "out" / "cells" / "c1.json").read_text())["cell"] == "c1"


def test_subsets_are_nested_and_leave_val_and_test_alone(tmp_path):
    prepared = make_prepared(tmp_path / "prepared", views={"A4C": 30})
    order = K.training_patients(prepared, seed=0)
    assert K.training_patients(prepared, seed=0) == order != K.training_patients(prepared, seed=1)
    assert len(order) == len(set(order)) == 18
    sub = K.subset_prepared(prepared, set(order[:5]), tmp_path / "sub")
    before, after = load_manifest(prepared), load_manifest(sub)
    assert set(after.loc[after["split"] == "train", "patient"]) == set(order[:5])
    assert (after.loc[before["split"] != "train", "split"] == before.loc[before["split"] != "train", "split"]).all()
    assert (sub / "clips" / f"{after['clip_id'].iloc[0]}.npy").is_file()
    with pytest.raises(AnalysisError, match="bad_fractions"):
        K.learning_curve(prepared, tmp_path / "lc", [0.0], TINY)
    with pytest.raises(AnalysisError, match="bad_grid"):
        K.power_grid(tmp_path / "pw", [-1.0], [100], TINY)


@pytest.mark.slow
def test_learning_curve_trains_each_fraction_and_resumes(tmp_path, monkeypatch):
    prepared = make_prepared(tmp_path / "prepared", views={"A4C": 30})
    out = tmp_path / "lc"
    assert main(["analyse", "learning-curve", "--data", str(prepared), "--out", str(out), "--fractions",
                 "0.5,1", "--epochs", "1", "--max-train-clips", "8", "--n-bootstrap", "50"]) == 0
    record = json.loads((out / "learning_curve.json").read_text())
    patients = sorted({r["n_train_patients"] for r in record["rows"]})
    assert patients == [9, 18] and record["synthetic"] is True
    assert {r["target"] for r in record["rows"]} >= {"wma", "lge"}
    assert not (out / "work").exists()  # intermediate data removed per cell
    import echocmr.train

    monkeypatch.setattr(echocmr.train, "train_model", lambda *a, **k: pytest.fail("a finished cell retrained"))
    assert main(["analyse", "learning-curve", "--data", str(prepared), "--out", str(out), "--fractions",
                 "0.5,1", "--epochs", "1"]) == 0
    assert pd.read_csv(out / "learning_curve.csv")["n_train_patients"].nunique() == 2


@pytest.mark.slow
def test_power_cell_end_to_end(tmp_path):
    out = tmp_path / "power"
    assert main(["analyse", "power", "--signal", "1", "--patients", "20", "--out", str(out), "--epochs", "1",
                 "--max-train-clips", "16", "--n-bootstrap", "50", "--native-size", "96,128",
                 "--workers", "1"]) == 0
    record = json.loads((out / "power.json").read_text())
    assert record["kind"] == "power" and record["inputs"]["sizes"] == [20]
    assert {r["target"] for r in record["rows"]} == set(K.TISSUE_TARGETS)
    assert set(record["smallest_detected"]) == {"20"}
    assert (out / "cells" / "power_n20_s1.json").is_file()
