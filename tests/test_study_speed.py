"""The fast study path (batched windows gathered from uint8, larger CPU batches, channels-last
convolutions) gives the predictions of the per-window reference path: the same views, the same
clips feeding the same models, every value equal to float32 rounding."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from dicom_factory import make_scene, write_dicom
from echocmr.bundle import active_bundle_dir, load_bundle
from echocmr.model_runner import (
    CPU_BATCH_ELEMENTS,
    CPU_MAX_BATCH,
    LoadedModel,
    _transform,
    _window_batch,
    _window_plan,
    _windows,
    inference_batch_size,
    predict_clips,
)
from echocmr.models import prepare_input
from echocmr.study_prediction import ingest_study, predict_study

# A window's outputs move by up to ~2e-6 with the other windows that share its batch (MKL-DNN
# blocks the batch); the fast path may differ from the reference by that float32 rounding only.
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def bundle():
    return load_bundle(str(active_bundle_dir()))


@torch.inference_mode()
def reference_outputs(model: LoadedModel, frames_list: list[np.ndarray], n_clips, batch_size: int = 16) -> np.ndarray:
    """The path before the fast one: one float tensor per window (``dataset.to_tensor``), batches
    of ``batch_size`` in the default memory layout, per-video mean of the transformed outputs."""
    windows = [(v, w) for v, frames in enumerate(frames_list) for w in _windows(frames, model, n_clips)]
    sums = np.zeros((len(frames_list), len(model.outputs)))
    counts = np.zeros(len(frames_list))
    for begin in range(0, len(windows), batch_size):
        chunk = windows[begin:begin + batch_size]
        logits = model.module(prepare_input(torch.stack([w for _, w in chunk]), model.device)).float()
        for (v, _), row in zip(chunk, _transform(model, logits).numpy()):
            sums[v] += row
            counts[v] += 1
    return sums / counts[:, None]


def test_batched_windows_are_bit_identical_to_per_window_tensors(bundle):
    model = bundle.view_models["A4C"]
    rng = np.random.default_rng(0)
    videos = [rng.integers(0, 256, (n, 112, 112), dtype=np.uint8) for n in (70, 16, 9)]
    plan = _window_plan(model, videos, 4)
    assert [v for v, _ in plan] == [0, 0, 0, 0, 1, 2]  # a short video gives its distinct windows only
    expected = torch.stack([w for frames in videos for w in _windows(frames, model, 4)])
    assert torch.equal(_window_batch(model, videos, plan), expected)


def test_fast_path_matches_the_reference_on_random_clips(bundle):
    rng = np.random.default_rng(1)
    videos = [rng.integers(0, 256, (n, 112, 112), dtype=np.uint8) for n in (80, 33, 20)]
    for model in (bundle.view_classifier, bundle.view_models["PLAX"]):
        fast = predict_clips(model, videos, n_clips=3, batch_size=4, fast_cpu=True)  # one batch of 64
        assert fast == pytest.approx(reference_outputs(model, videos, 3, batch_size=4), abs=TOLERANCE)


def test_a_small_study_predicts_what_the_reference_path_predicts(bundle, tmp_path):
    scenes = [make_scene(96, 128, n_frames=n, seed=k) for k, n in enumerate((40, 36, 34, 1, 12))]
    sources = [(f"f{k}", write_dicom(tmp_path / f"{k}.dcm", s).read_bytes()) for k, s in enumerate(scenes)]
    items = ingest_study(sources)
    overrides = {0: "A4C", 1: "A4C", 2: "PLAX"}  # item 3 is a still, item 4 too short
    result = predict_study(items, bundle, overrides)
    from echocmr.model_runner import at_model_rate

    classifier = bundle.view_classifier
    ref_probs = reference_outputs(classifier, [at_model_rate(i.clip.frames, i.clip.fps, classifier) for i in items], 2)
    for clip, probs in zip(result.clips, ref_probs):
        assert [clip.view_probs[k] for k in classifier.outputs] == pytest.approx(list(probs), abs=TOLERANCE)
    assert [c.used_for for c in result.clips] == ["A4C", "A4C", "PLAX", "", ""]
    for view in ("A4C", "PLAX"):
        model = bundle.view_models[view]
        members = [c for c in result.clips if c.used_for == view]
        ref = reference_outputs(model, [at_model_rate(c.clip.frames, c.clip.fps, model) for c in members], 4)
        for clip, row in zip(members, ref):
            assert [clip.predictions[k] for k in model.outputs] == pytest.approx(list(row), abs=TOLERANCE)
        assert [result.per_view[view][k] for k in model.outputs] == pytest.approx(list(ref.mean(axis=0)), abs=TOLERANCE)


def _model(arch: str, width: int, n_frames: int) -> LoadedModel:
    meta = {"model": {"arch": arch, "width": width, "n_frames": n_frames, "period": 2}, "kind": "view_model"}
    return LoadedModel(nn.Linear(1, 1), meta, ("lvef",))


def test_cpu_batches_grow_only_for_small_models():
    assert inference_batch_size(_model("compact", 8, 8), 16) == CPU_MAX_BATCH
    assert 16 < inference_batch_size(_model("compact", 8, 16), 16) <= CPU_MAX_BATCH
    assert inference_batch_size(_model("r2plus1d_18", 8, 32), 16) == 16  # R(2+1)D-18: the caller's batch
    # a smaller request is raised only to what fits the budget (5 R(2+1)D-18 windows of 32 frames)
    assert inference_batch_size(_model("r2plus1d_18", 8, 32), 2) == CPU_BATCH_ELEMENTS // (2 * 64 * 32 * 56 * 56) == 5


def test_study_files_decode_side_by_side_in_order(tmp_path):
    """Files read by the pool's workers at once come back in the sources' order, each the same
    clip (frames and pseudonyms) a one-at-a-time read gives, a bad file failing alone."""
    from echocmr.ingest import read_study_isolated
    from echocmr.ingest.study_files import read_files_isolated

    good = [write_dicom(tmp_path / f"{k}.dcm", make_scene(64, 80, n_frames=6 + k, seed=k)).read_bytes() for k in range(3)]
    sources = [good[0], b"not an echo file", good[1], good[2]]
    salt = b"s" * 16
    together = read_files_isolated(sources, salt=salt, session="speed-test")
    assert [len(found) for found in together] == [1, 1, 1, 1]
    assert together[1][0].clip is None and together[1][0].error.code == "unknown_format"
    for number, (data, found) in enumerate(zip(sources, together), start=1):
        alone = read_study_isolated(data, name=f"file {number}", salt=salt, session="speed-test")[0]
        assert found[0].display_name == alone.display_name == f"file {number}"
        if alone.clip is not None:
            assert np.array_equal(found[0].clip.frames, alone.clip.frames)
            assert found[0].clip.clip_id == alone.clip.clip_id and found[0].clip.n_frames == 6 + [0, 0, 1, 2][number - 1]


def _static_text_mask_before(crops, fan):
    """``burned_text.static_text_mask`` as it was (float diff for stills, ``np.isin`` for specks)."""
    import cv2

    from echocmr.ingest import burned_text as bt

    if len(crops) < bt.MIN_FRAMES:
        return None
    stack = np.stack(crops).astype(np.float32)
    if float(np.abs(np.diff(stack, axis=0)).max()) == 0.0:
        return None
    std, mean = stack.std(axis=0), stack.mean(axis=0)
    box = (bt.NEIGHBOURHOOD_PX, bt.NEIGHBOURHOOD_PX)
    around = cv2.blur(std, box)
    brighter = mean - cv2.blur(mean, box) >= bt.CONTRAST
    text = (std < bt.STATIC_STD) & (mean >= bt.MIN_TEXT_GREY) & ((around >= bt.MOVING_STD) | brighter) & (fan > 0)
    kernel = np.ones((3, 3), np.uint8)
    mask = cv2.morphologyEx(text.astype(np.uint8) * 255, cv2.MORPH_CLOSE, kernel)
    _, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    mask[np.isin(labels, np.flatnonzero(stats[:, cv2.CC_STAT_AREA] < bt.MIN_COMPONENT_PX))] = 0
    return cv2.bitwise_and(cv2.dilate(mask, kernel), fan)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_burned_text_mask_is_the_same_as_before(seed):
    from echocmr.ingest.burned_text import static_text_mask

    rng = np.random.default_rng(seed)
    h, w = 180, 240
    fan = np.zeros((h, w), np.uint8)
    fan[10:, 20:220] = 255
    crops = [rng.integers(0, 256, (h, w), dtype=np.uint8) for _ in range(16)]
    for crop in crops:  # static text strokes, isolated static specks, still dark blood pool
        crop[40:46, 60:140] = 150
        crop[100:140, 80:160] = 10
        crop[120:123, 90:130] = 160
        crop[::17, ::23] = 200
    after, before = static_text_mask(crops, fan), _static_text_mask_before(crops, fan)
    assert np.array_equal(after, before) and after.any()
    assert static_text_mask([crops[0]] * 8, fan) is None and _static_text_mask_before([crops[0]] * 8, fan) is None
