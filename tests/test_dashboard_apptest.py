"""Every dashboard page renders (streamlit.testing AppTest) on the shipped default model bundle."""

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from echocmr.atomic import atomic_write_json
from echocmr.targets import GLOBAL_TARGETS

ROOT = Path(__file__).resolve().parents[1]
HOME = ROOT / "dashboard" / "Home.py"
BUNDLE = ROOT / "checkpoints" / "default"


@pytest.fixture
def needs_bundle():
    # The shipped bundle is committed; its absence is a broken checkout, not a reason to skip.
    assert (BUNDLE / "bundle.json").is_file(), "checkpoints/default is missing: run `make demo-assets`"


pytestmark = pytest.mark.usefixtures("app_home")


def open_page(page: str | None = None) -> AppTest:
    at = AppTest.from_file(str(HOME), default_timeout=300)
    at.run()
    assert not at.exception, at.exception
    if page:
        at.switch_page(page)
        at.run()
        assert not at.exception, at.exception
    return at


def texts(at: AppTest) -> str:
    parts = [e.value for kind in ("markdown", "caption", "warning", "info", "error", "title", "subheader")
             for e in getattr(at, kind)]
    return "\n".join(str(p) for p in parts)


@pytest.mark.usefixtures("needs_bundle")
@pytest.mark.parametrize("page", [None, "app_pages/results.py", "app_pages/train.py", "app_pages/data.py",
                                  "app_pages/predict.py"])
def test_every_page_renders(page):
    at = open_page(page)
    synthetic = json.loads((BUNDLE / "bundle.json").read_text()).get("synthetic", False)
    if synthetic and page != "app_pages/train.py":
        assert "Synthetic cohort" in texts(at)
    assert "<" + "echocmr" not in texts(at) and "object at 0x" not in texts(at)  # no raw Python reprs


@pytest.mark.usefixtures("needs_bundle")
def test_predict_example_study_and_override():
    at = open_page("app_pages/predict.py")
    at.button[0].click().run()
    assert not at.exception, at.exception
    study = sorted(p for p in (BUNDLE / "examples").iterdir() if p.is_dir())[0]
    n_files = len(list(study.glob("*.dcm")))
    view_boxes = [s for s in at.selectbox if str(s.key).startswith("view-")]
    rejected = [e for e in at.error if "was not used" in str(e.value)]
    assert len(view_boxes) + len(rejected) == n_files and view_boxes
    fused = at.dataframe[0].value
    assert len(fused) == len([t for t in GLOBAL_TARGETS])
    assert {"Finding", "Prediction", "Threshold", "Call", "Sensitivity (test)", "Specificity (test)", "PPV (test)",
            "NPV (test)"} <= set(fused.columns)
    per_view = at.dataframe[1].value
    assert len(per_view.columns) >= 2  # Finding + at least one view
    # Override the first clip's view: the page re-predicts without error and marks the change.
    box = view_boxes[0]
    new = "other" if box.value != "other" else "A4C"
    box.set_value(new).run()
    assert not at.exception, at.exception
    assert [s for s in at.selectbox if s.key == box.key][0].value == new


@pytest.mark.usefixtures("needs_bundle")
def test_results_table2_has_a_row_per_target():
    from echocmr.evaluate import read_results, table2_frame

    at = open_page("app_pages/results.py")
    expected = len(table2_frame(read_results(BUNDLE / "results").metrics))
    assert len(at.dataframe[0].value) == expected > 0
    assert any("published (Sahashi et al. 2024, real patients)".lower() in str(m.value).lower() for m in at.markdown)


def test_train_page_without_data_offers_synthetic_cohort(tmp_path):
    at = open_page("app_pages/train.py")
    assert any("Generate and prepare" in b.label for b in at.button)
    assert any("No training runs yet" in str(i.value) for i in at.info)


def test_train_page_lists_runs_from_disk(app_home):
    home = app_home
    for name, state in (("run-a", "finished"), ("run-b", "stopped")):
        atomic_write_json(home / "runs" / name / "config.json", {"train": {"views": ["A4C"]}, "data": "/nowhere"})
        atomic_write_json(home / "runs" / name / "status.json", {
            "state": state, "pid": None, "view": "A4C", "epoch": 2, "epochs": 2,
            "started": f"2024-01-0{1 + (name == 'run-b')}T10:00:00+00:00", "updated": "2024-01-03T10:00:00+00:00",
            "message": ""})
        (home / "runs" / name / "metrics.jsonl").write_text("\n".join(json.dumps(
            {"view": "A4C", "epoch": e, "train_loss": 1 / e, "val_loss": 1.2 / e, "val": {"wma": 0.6, "t1": 50.0},
             "lr": 1e-3, "seconds": 1.5}) for e in (1, 2)) + "\n")
    at = open_page("app_pages/train.py")
    run_box = [s for s in at.selectbox if s.key == "run"][0]
    assert run_box.options == ["run-b", "run-a"] or list(run_box.options)[0].startswith("run-b")
    assert any("stopped" in str(m.value) for m in at.markdown)
    run_box.set_value("run-a").run()
    assert not at.exception, at.exception
    assert any("finished" in str(m.value) for m in at.markdown)


def _bundle_with_calls(tmp_path) -> Path:
    """The shipped bundle, made active from a copy whose call rules are computed from its own
    recorded results (echocmr.calls.points_from_results) when it predates them."""
    import shutil

    from echocmr.bootstrap_ci import IntervalSpec
    from echocmr.bundle import set_active_bundle
    from echocmr.calls import points_from_results
    from echocmr.evaluate import read_results, write_json

    copy = tmp_path / "bundle"
    shutil.copytree(BUNDLE, copy)
    points_path = copy / "results" / "operating_points.json"
    points = json.loads(points_path.read_text())
    if not all("called" in p for p in points.values()):
        write_json(points_path, points_from_results(read_results(copy / "results"), IntervalSpec(n_bootstrap=2000)))
    set_active_bundle(copy)
    return copy


@pytest.mark.usefixtures("needs_bundle")
def test_predict_page_calls_only_targets_with_signal(tmp_path):
    """Issue 13: a no-signal target is shown "not called"; called ones carry rates with intervals."""
    from echocmr.bootstrap_ci import describe_intervals
    from echocmr.calls import NOT_CALLED
    from echocmr.targets import TARGETS_BY_NAME

    bundle = _bundle_with_calls(tmp_path)
    points = json.loads((bundle / "results" / "operating_points.json").read_text())
    called = {t for t, p in points.items() if p["called"]}
    uncalled = set(points) - called
    # The shipped synthetic model has both kinds (T1/T2/ECV carry no signal in it).
    assert called and uncalled
    at = open_page("app_pages/predict.py")
    at.button[0].click().run()
    assert not at.exception, at.exception
    fused = at.dataframe[0].value.set_index("Finding")
    for t in uncalled:
        row = fused.loc[TARGETS_BY_NAME[t].label]
        assert row["Call"] == NOT_CALLED and row["Sensitivity (test)"] == "—"
    for t in called:
        row = fused.loc[TARGETS_BY_NAME[t].label]
        assert row["Call"] in ("Positive", "Negative", "Abnormal", "Normal")
        if TARGETS_BY_NAME[t].kind == "binary":
            for column in ("Sensitivity (test)", "Specificity (test)"):
                assert " to " in row[column] or "interval withheld" in row[column], row[column]
    warning = " ".join(str(w.value) for w in at.warning)
    assert "Not called" in warning and all(TARGETS_BY_NAME[t].label in warning for t in uncalled)
    summary = json.loads((bundle / "results" / "summary.json").read_text())
    assert describe_intervals(summary) in texts(at)  # level and method read from the results
