"""View review: the classifier's calls on a prepared cohort, confirmed labels, fine-tuning on them."""

from __future__ import annotations

import json

import pytest

from echocmr.bundle import active_bundle_dir, load_bundle
from echocmr.cli import main
from echocmr.prepared import read_manifest
from echocmr.errors import ConfigError
from echocmr.view_review import (LABELS_FILE, classify_prepared, read_labels, review_queue, save_labels,
                                 view_counts)
from prepared_factory import make_prepared

pytestmark = pytest.mark.slow  # classifies and fine-tunes ~30 clips on CPU


@pytest.fixture
def prepared(tmp_path, monkeypatch):
    monkeypatch.setenv("ECHOCMR_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ECHOCMR_MODEL", raising=False)
    return make_prepared(tmp_path / "prepared", views={"A4C": 8, "A2C": 8, "PLAX": 8, "PSAX": 5}, n_frames=24)


def test_review_save_and_fine_tune(prepared, tmp_path, capsys):
    classifier = load_bundle(str(active_bundle_dir())).view_classifier
    predictions = classify_prepared(prepared, classifier)
    assert len(predictions) == 29 and predictions["confidence"].between(0, 1).all()
    queue = review_queue(predictions, read_labels(prepared))
    assert list(queue["confidence"]) == sorted(queue["confidence"])  # least certain first
    with pytest.raises(ConfigError, match="who"):
        save_labels(prepared, {"a4c000": "A4C"}, "", predictions)
    with pytest.raises(ConfigError, match="one of"):
        save_labels(prepared, {"a4c000": "A5C"}, "JS", predictions)
    truth = {c: ("other" if c.startswith("psax") else c[:-3].upper()) for c in predictions["clip_id"]}
    save_labels(prepared, {c: "PLAX" for c in list(truth)[:3]}, "first reviewer", predictions)
    labels = save_labels(prepared, truth, "J. Smith", predictions)  # later confirmations replace earlier ones
    assert len(labels) == 29 and set(labels["confirmed_by"]) == {"J. Smith"}
    assert read_labels(prepared).equals(labels)
    assert not list(prepared.glob(f".{LABELS_FILE}*"))  # atomic: no temporary file left
    counts = view_counts(predictions, labels).set_index("view")
    assert counts.loc["A4C", "confirmed"] == 8 and counts.loc["other", "confirmed"] == 5

    out = tmp_path / "runs"
    assert main(["train", "--view-classifier-only", "--data", str(prepared), "--out", str(out),
                 "--classifier-epochs", "2", "--run-name", "vc"]) == 0
    text = capsys.readouterr().out
    assert "held-out accuracy after" in text and "95% CI" in text and "confusion" in text
    report = json.loads((out / "vc" / "report.json").read_text())
    after = report["after"]
    splits = read_manifest(prepared).query("status == 'ok'")["split"]
    n_train, n_held = int((splits == "train").sum()), int(splits.isin(["val", "test"]).sum())
    assert report["n_train"] == n_train and report["n_heldout"] == n_held == after["n"] > 0
    assert sum(map(sum, after["confusion"]["matrix"])) == n_held and 0 <= after["ci_low"] <= after["accuracy"] <= after["ci_high"]
    assert set(after["per_view"]) == {"A4C", "A2C", "PLAX", "other"}
    from echocmr.model_runner import load_view_classifier

    tuned = load_view_classifier(out / "vc" / "view_classifier" / "best")
    assert tuned.meta["fine_tuned"]["n_train"] == n_train
