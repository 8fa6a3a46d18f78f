"""Checkpoints (safetensors + JSON, checksums, refusal of pickles) and the inference helpers."""

from __future__ import annotations

import hashlib
import json
import pickle
import random

import numpy as np
import pytest
import torch
from torch import nn

from echocmr import checkpoint as ckpt
from echocmr.config import ModelConfig, to_dict
from echocmr.errors import CheckpointError
from echocmr.model_runner import (classify_views, load_view_classifier, load_view_model, predict_clips,
                               predict_prepared)
from echocmr.models import build_model
from echocmr.targets import CLASSIFIER_LABELS, TARGETS, TARGETS_BY_NAME

from prepared_factory import make_clip, make_prepared

NAMES = tuple(t.name for t in TARGETS)
TINY = ModelConfig(arch="compact", width=4, n_frames=8, period=2)
SCALING = {"t1": {"mean": 1000.0, "std": 50.0}, "t2": {"mean": 48.0, "std": 6.0}, "ecv": {"mean": 28.0, "std": 5.0}}


def _meta(kind: str = "view_model", outputs: tuple[str, ...] = NAMES) -> dict:
    return {"kind": kind, "model": to_dict(TINY), "view": "A4C" if kind == "view_model" else None,
            "outputs": list(outputs), "normalisation": {"mean": 80.0, "std": 60.0},
            "target_scaling": SCALING if kind == "view_model" else {}, "train": {},
            "data": {"synthetic": True, "dataset": "test"}}


class Wrapper(nn.Module):
    """Stands in for DistributedDataParallel: keys gain a ``module.`` prefix."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module


class Marker:
    """Unpickling this would create a file: proof that a payload ran."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture()
def saved(tmp_path):
    torch.manual_seed(0)
    model = build_model(TINY, len(NAMES))
    stem = tmp_path / "A4C"
    ckpt.save_checkpoint(stem, Wrapper(model), _meta())
    return stem, model


def test_round_trip_plain_keys_and_metadata(saved):
    stem, model = saved
    weights = stem.with_suffix(".safetensors").read_bytes()
    meta = json.loads(stem.with_suffix(".json").read_text())
    assert meta["sha256"] == hashlib.sha256(weights).hexdigest() and meta["format_version"] == 1
    loaded, meta2 = ckpt.load_checkpoint(stem)
    assert not any(k.startswith(("module.", "_orig_mod.")) for k in loaded.state_dict())
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)
    assert meta2["outputs"] == list(NAMES) and not loaded.training
    assert not list(stem.parent.glob(".*.tmp"))  # no temp files left behind


def test_tampered_weights_are_refused(saved):
    stem, _ = saved
    path = stem.with_suffix(".safetensors")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="do not match their recorded checksum"):
        ckpt.load_checkpoint(stem)


@pytest.mark.parametrize("update_checksum", [False, True])
def test_a_pickle_payload_is_never_executed(saved, tmp_path, update_checksum):
    stem, _ = saved
    marker = tmp_path / "pwned"
    payload = pickle.dumps(Marker(str(marker)))
    stem.with_suffix(".safetensors").write_bytes(payload)
    if update_checksum:  # an attacker who also rewrites the JSON still gets nowhere
        meta = json.loads(stem.with_suffix(".json").read_text())
        meta["sha256"] = hashlib.sha256(payload).hexdigest()
        stem.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="checksum" if not update_checksum else "not a safetensors"):
        ckpt.load_checkpoint(stem)
    assert not marker.exists()


def test_oversized_and_mismatched_checkpoints_are_refused(saved, monkeypatch):
    stem, _ = saved
    meta = json.loads(stem.with_suffix(".json").read_text())
    meta["model"]["width"] = 8  # architecture no longer fits the weights
    stem.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="do not fit"):
        ckpt.load_checkpoint(stem)
    monkeypatch.setattr(ckpt, "MAX_WEIGHTS_BYTES", 100)
    with pytest.raises(CheckpointError, match="larger than"):
        ckpt.load_checkpoint(stem)


def test_a_map_pooled_model_round_trips_and_its_map_count_is_checked(tmp_path):
    """map_outputs is part of the recorded architecture: the same number rebuilds the same model;
    another number does not fit the weights and is refused, as is one out of bounds."""
    import dataclasses

    torch.manual_seed(0)
    config = dataclasses.replace(TINY, map_outputs=1)
    model = build_model(config, len(NAMES)).eval()
    stem = tmp_path / "A4C"
    ckpt.save_checkpoint(stem, model, {**_meta(), "model": to_dict(config)})
    loaded, meta = ckpt.load_checkpoint(stem)
    x = torch.randn(1, 3, 8, 112, 112)
    with torch.inference_mode():
        assert torch.equal(loaded(x), model(x)) and meta["model"]["map_outputs"] == 1
    for value, match in ((2, "do not fit"), (0, "do not fit"), (10_000, "map_outputs must be")):
        broken = {**meta, "model": {**meta["model"], "map_outputs": value}}
        stem.with_suffix(".json").write_text(json.dumps(broken))
        with pytest.raises(CheckpointError, match=match):
            ckpt.load_checkpoint(stem)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_training_state_round_trips_with_weights_only(tmp_path):
    model = build_model(TINY, 3)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.randn(2, 3, 8, 112, 112)).sum().backward()
    optimizer.step()
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2)
    np.random.seed(1), random.seed(2), torch.manual_seed(3)
    state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": ckpt.rng_state(),
             "counters": {"epoch": 3, "best_score": -float("inf")}, "record": None}
    ckpt.save_training_state(tmp_path / "last", state)
    expected = (np.random.rand(), random.random(), torch.rand(1))
    loaded = ckpt.load_training_state(tmp_path / "last")
    ckpt.set_rng_state(loaded["rng"])
    assert (np.random.rand(), random.random(), torch.rand(1)) == expected
    optimizer.load_state_dict(loaded["optimizer"])
    assert loaded["counters"]["epoch"] == 3
    marker = tmp_path / "pwned"
    ckpt.state_path(tmp_path / "evil").write_bytes(pickle.dumps(Marker(str(marker))))
    with pytest.raises(CheckpointError, match="could not be read safely"):
        ckpt.load_training_state(tmp_path / "evil")
    assert not marker.exists()


def test_predict_clips_gives_probabilities_and_units(saved, tmp_path):
    stem, _ = saved
    model = load_view_model(stem)
    rng = np.random.default_rng(0)
    videos = [make_clip(rng, "A4C", bool(i % 2), n) for i, n in enumerate((30, 5, 12))]
    preds = predict_clips(model, videos, n_clips=4, batch_size=5)
    assert preds.shape == (3, len(NAMES)) and np.isfinite(preds).all()
    for k, name in enumerate(NAMES):
        if TARGETS_BY_NAME[name].kind == "binary":
            assert np.all((preds[:, k] >= 0) & (preds[:, k] <= 1))
        else:  # an untrained head outputs ~0 standardised, i.e. ~ the training mean in units
            assert np.allclose(preds[:, k], SCALING[name]["mean"], atol=3 * SCALING[name]["std"])
    one = predict_clips(model, videos[:1], n_clips=4, batch_size=1)
    assert np.allclose(one[0], preds[0], atol=1e-5)  # batching does not change results
    with pytest.raises(CheckpointError, match="view_classifier"):
        load_view_classifier(stem)


def test_classify_views_and_predict_prepared(tmp_path):
    classifier = build_model(TINY, len(CLASSIFIER_LABELS))
    ckpt.save_checkpoint(tmp_path / "view_classifier", classifier, _meta("view_classifier", CLASSIFIER_LABELS))
    loaded = load_view_classifier(tmp_path / "view_classifier")
    rng = np.random.default_rng(0)
    results = classify_views(loaded, [make_clip(rng, v, False, 16) for v in ("A4C", "PLAX")])
    for view, confidence, probs in results:
        assert view in CLASSIFIER_LABELS and confidence == max(probs.values())
        assert abs(sum(probs.values()) - 1) < 1e-6
    prepared = make_prepared(tmp_path / "prepared")
    ckpt.save_checkpoint(tmp_path / "A4C", build_model(TINY, len(NAMES)), _meta())
    frame = predict_prepared(load_view_model(tmp_path / "A4C"), prepared, "test", "A4C", n_clips=2)
    assert list(frame.columns[:5]) == ["clip_id", "study", "patient", "split", "view"]
    assert list(frame.columns[5:]) == list(NAMES) and len(frame) > 0 and set(frame["split"]) == {"test"}


@pytest.mark.parametrize("committed", [False, True])
def test_finish_interrupted_save_promotes_committed_weights_and_drops_the_rest(tmp_path, committed):
    """After a crash mid-save: weights the JSON committed are promoted; uncommitted ones deleted."""
    torch.manual_seed(0)
    old, new = build_model(TINY, len(NAMES)), build_model(TINY, len(NAMES))
    stem = tmp_path / "best"
    ckpt.save_checkpoint(stem, old, _meta())
    ckpt.save_checkpoint(tmp_path / "staged", new, _meta())
    (tmp_path / "staged.safetensors").rename(ckpt.pending_weights_path(stem))
    if committed:  # the crash came after the JSON: it names the staged weights
        (tmp_path / "staged.json").replace(stem.with_suffix(".json"))
    ckpt.finish_interrupted_save(stem)
    assert not ckpt.pending_weights_path(stem).exists()
    survivor = new if committed else old
    loaded, _ = ckpt.load_checkpoint(stem)
    assert all(torch.equal(v, survivor.state_dict()[k]) for k, v in loaded.state_dict().items())
    data = stem.with_suffix(".safetensors").read_bytes()
    assert hashlib.sha256(data).hexdigest() == ckpt.read_meta(stem)["sha256"]  # promoted, not just readable
