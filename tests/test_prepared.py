"""The prepared-format reader (echocmr.prepared), the JSON reader and the shared rules: one way each."""

from __future__ import annotations

import math
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest
from prepared_factory import make_prepared

from echocmr.errors import ConfigError, InputError
from echocmr.jsonfile import now_iso, read_json, write_json
from echocmr.metrics import is_positive, sensitivity_specificity
from echocmr.prepared import (
    check_frame_rate,
    clip_path,
    has_manifest,
    list_prepared,
    open_clip,
    prepared_target_fps,
    read_manifest,
    read_prepare_json,
    summarise,
)
from echocmr.targets import GLOBAL, MODEL_VIEWS, VIEW_ORDER


def test_manifest_ids_stay_text_and_empty_cells_are_missing(tmp_path):
    prepared = make_prepared(tmp_path / "p", views={"A4C": 4})
    manifest = pd.read_csv(prepared / "manifest.csv", dtype=str, keep_default_na=False)
    # A pseudonym that reads like a missing-value marker, and an unlabelled target.
    manifest.loc[0, ["patient", "study"]] = ["NA", "null"]
    manifest.loc[1, "wma"] = ""
    manifest.to_csv(prepared / "manifest.csv", index=False)
    back = read_manifest(prepared)
    assert back.loc[0, "patient"] == "NA" and back.loc[0, "study"] == "null"
    assert math.isnan(back.loc[1, "wma"]) and back["wma"].dtype == np.float64
    assert pd.isna(back.loc[0, "reason"])  # an empty text cell is missing too, never ""
    assert summarise(prepared)["patients"]  # the Data page's summary reads the same way


def test_prepared_folder_errors_name_the_fix(tmp_path):
    with pytest.raises(ConfigError, match="echocmr prepare"):
        read_manifest(tmp_path)
    assert read_prepare_json(tmp_path) == {} and prepared_target_fps(tmp_path) == 0.0 and not has_manifest(tmp_path)
    (tmp_path / "prepare.json").write_text('{"config": ')
    with pytest.raises(ConfigError, match="damaged"):
        read_prepare_json(tmp_path)
    with pytest.raises(InputError, match="plain file name"):
        clip_path(tmp_path, "../secret")
    with pytest.raises(ConfigError, match="--target-fps 25"):
        check_frame_rate(25.0, 0.0, "the A4C model")
    check_frame_rate(25.0, 25.0, "the A4C model")


def test_clips_and_folders_are_found_through_the_reader(tmp_path):
    prepared = make_prepared(tmp_path / "prepared" / "a", views={"A2C": 2})
    assert list_prepared(tmp_path / "prepared") == [prepared]
    clip = open_clip(prepared, read_manifest(prepared)["clip_id"].iloc[0])
    assert clip.dtype == np.uint8 and clip.shape[1:] == (112, 112)


def test_json_reader_and_utc_times(tmp_path):
    write_json(tmp_path / "x.json", {"a": float("nan"), "b": np.int64(3)})
    assert read_json(tmp_path / "x.json") == {"a": None, "b": 3}
    (tmp_path / "torn.json").write_text('{"a": ')
    with pytest.raises(ConfigError, match="torn.json"):
        read_json(tmp_path / "torn.json")
    assert read_json(tmp_path / "torn.json", default=None) is None
    assert read_json(tmp_path / "missing.json", default={}) == {}
    stamp = datetime.fromisoformat(now_iso())
    assert stamp.utcoffset() == timezone.utc.utcoffset(None)


def test_one_positive_call_rule_and_one_view_order():
    scores = np.array([0.2, 0.5, 0.7])
    assert is_positive(scores, 0.5).tolist() == [False, True, True]  # a score at the threshold is positive
    assert sensitivity_specificity(np.array([0, 1, 1]), scores, 0.5) == (1.0, 1.0)
    assert VIEW_ORDER == (*MODEL_VIEWS, GLOBAL)
