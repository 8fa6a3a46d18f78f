"""Pairing, labelling and splitting rules (PAPER.md, "Cohort and pairing" and "Labels")."""

import numpy as np
import pandas as pd
import pytest

from echocmr.config import LabelConfig
from echocmr.errors import InputError
from echocmr.labels import LGE_COLUMNS, WMA_COLUMNS, assign_splits, clip_targets, pair_studies, report_labels


def _reports(rows):
    base = {c: 0 for c in WMA_COLUMNS + LGE_COLUMNS}
    return pd.DataFrame([{**base, "t1_ms": 1000.0, "t2_ms": 50.0, "ecv_pct": 27.0, **row} for row in rows])


def test_pairing_takes_nearest_cmr_within_window():
    studies = pd.DataFrame({
        "patient_id": ["a", "a", "b", "c"],
        "study_id": ["s1", "s2", "s3", "s4"],
        "study_date": ["2015-01-10", "2015-06-01", "2016-03-01", "2017-01-01"],
    })
    reports = _reports([
        {"cmr_id": "m1", "patient_id": "a", "cmr_date": "2015-01-05"},
        {"cmr_id": "m2", "patient_id": "a", "cmr_date": "2015-01-12"},  # closer to s1
        {"cmr_id": "m3", "patient_id": "b", "cmr_date": "2016-04-15"},  # 45 days: outside
        {"cmr_id": "m4", "patient_id": "c", "cmr_date": "2016-12-31"},
    ])
    paired = pair_studies(studies, reports, window_days=30).set_index("study_id")
    assert paired.loc["s1", "cmr_id"] == "m2" and paired.loc["s1", "echo_cmr_days"] == 2
    assert pd.isna(paired.loc["s2", "cmr_id"])  # nearest CMR is months away
    assert pd.isna(paired.loc["s3", "cmr_id"])
    assert paired.loc["s4", "cmr_id"] == "m4" and paired.loc["s4", "echo_cmr_days"] == -1


def test_pairing_never_crosses_patients():
    studies = pd.DataFrame({"patient_id": ["a"], "study_id": ["s1"], "study_date": ["2015-01-10"]})
    reports = _reports([{"cmr_id": "m1", "patient_id": "b", "cmr_date": "2015-01-10"}])
    assert pd.isna(pair_studies(studies, reports, 30).loc[0, "cmr_id"])


def test_report_labels_thresholds_and_view_segments():
    reports = _reports([
        # segment 9 (mid inferoseptal) akinetic: shown in A4C only; LGE in segment 5 (PLAX).
        {"cmr_id": "m1", "patient_id": "a", "cmr_date": "2015-01-01", "wma_9": 2, "lge_5": 1,
         "t1_ms": 1061.0, "t2_ms": np.nan, "ecv_pct": 33.0},
        {"cmr_id": "m2", "patient_id": "b", "cmr_date": "2015-01-01"},
    ])
    labels = report_labels(reports, LabelConfig()).set_index("cmr_id")
    assert labels.loc["m1", "wma"] == 1 and labels.loc["m1", "lge"] == 1
    assert labels.loc["m1", "wma_view@A4C"] == 1 and labels.loc["m1", "wma_view@A2C"] == 0
    assert labels.loc["m1", "lge_view@PLAX"] == 1 and labels.loc["m1", "lge_view@A4C"] == 0
    assert labels.loc["m1", "t1_abnormal"] == 1  # > 1060 ms
    assert np.isnan(labels.loc["m1", "t2_abnormal"])  # not measured: masked, not "normal"
    assert labels.loc["m1", "ecv_abnormal"] == 0  # 33 % is not above 33 %
    assert labels.loc["m2", ["wma", "lge", "t1_abnormal"]].tolist() == [0, 0, 0]


def test_clip_targets_use_the_clips_own_view():
    reports = _reports([{"cmr_id": "m1", "patient_id": "a", "cmr_date": "2015-01-01", "wma_9": 1}])
    labels = report_labels(reports, LabelConfig())
    clips = pd.DataFrame({"cmr_id": ["m1", "m1", "m1"], "view": ["A4C", "A2C", "PSAX"]})
    out = clip_targets(clips, labels)
    assert out["wma_view"].tolist()[:2] == [1.0, 0.0]
    assert np.isnan(out["wma_view"].iloc[2])
    assert (out["wma"] == 1).all()


def test_missing_columns_are_named():
    with pytest.raises(InputError, match="lacks columns"):
        report_labels(pd.DataFrame({"cmr_id": ["m1"]}), LabelConfig())


def test_splits_are_patient_level_and_proportional():
    patients = pd.Series([f"p{i // 3}" for i in range(3000)])  # 1000 patients, 3 studies each
    splits = assign_splits(patients, (0.8, 0.1, 0.1), seed=1)
    assert len(splits) == 1000
    counts = pd.Series(splits).value_counts()
    assert counts["train"] == 800 and counts["val"] == 100 and counts["test"] == 100
    assert assign_splits(patients, (0.8, 0.1, 0.1), seed=1) == splits  # deterministic
    tiny = assign_splits(pd.Series(["a", "b", "c"]), (0.8, 0.1, 0.1), seed=0)
    assert sorted(tiny.values()) == ["test", "train", "val"]
