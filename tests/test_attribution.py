"""Attribution (score map, integrated gradients, Grad-CAM, motion occlusion) of the WMA output: shapes,
completeness, each method against its definition, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from echocmr.attribution import (
    AttributionConfig,
    ClipAttribution,
    central_window,
    explain_clip,
    localisation_ratio,
    wma_output,
)
from echocmr.config import ModelConfig, to_dict
from echocmr.errors import ConfigError, InputError
from echocmr.model_runner import LoadedModel
from echocmr.models import build_model

FAST = AttributionConfig(n_steps=2, internal_batch_size=2)
OUTPUTS = ("wma_view", "lge_view", "wma")


def _tiny_model(outputs=OUTPUTS, n_frames: int = 4, period: int = 2, map_outputs: int = 0) -> LoadedModel:
    torch.manual_seed(0)
    config = ModelConfig(arch="compact", width=2, n_frames=n_frames, period=period, map_outputs=map_outputs)
    module = build_model(config, len(outputs)).eval()
    meta = {"kind": "view_model", "model": to_dict(config),
            "outputs": list(outputs), "normalisation": {"mean": 20.0, "std": 40.0}, "data": {}}
    return LoadedModel(module, meta, tuple(outputs))


def _frames(t: int = 12, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 200, size=(t, 112, 112), dtype=np.uint8)


def test_shapes_dtypes_and_window_alignment():
    model = _tiny_model()
    frames = _frames(12)
    result = explain_clip(model, frames, config=FAST)
    assert result.output == "wma_view" == wma_output(model)
    assert result.heat.shape == (4, 112, 112) and result.heat.dtype == np.float32
    assert result.frames.shape == (4, 112, 112) and result.frames.dtype == np.uint8
    assert result.frame_contribution.shape == result.frame_importance.shape == (4,)
    assert result.frame_indices.tolist() == central_window(model, 12).tolist()
    assert np.array_equal(result.frames, frames[result.frame_indices])
    assert np.all(np.diff(result.frame_indices) == 2)  # the model's period
    assert np.isclose(result.frame_importance.sum(), 1.0, atol=1e-5) and (result.frame_importance >= 0).all()
    assert (result.positive >= 0).all() and 0.0 < result.probability < 1.0


def test_completeness_and_determinism():
    """IG's attributions add up to logit(clip) - logit(baseline), up to the reported delta."""
    model = _tiny_model()
    frames = _frames(10, seed=3)
    a = explain_clip(model, frames, config=AttributionConfig(n_steps=4, internal_batch_size=3))
    total = float(a.heat.astype(np.float64).sum())
    assert total - (a.logit - a.baseline_logit) == pytest.approx(a.convergence_delta, abs=1e-3)
    assert a.frame_contribution.sum() == pytest.approx(total, rel=1e-4, abs=1e-4)
    b = explain_clip(model, frames, config=AttributionConfig(n_steps=4, internal_batch_size=3))
    assert np.array_equal(a.heat, b.heat) and a.logit == b.logit


def test_other_output_and_parameters_left_as_they_were():
    model = _tiny_model()
    before = [p.requires_grad for p in model.module.parameters()]
    lge = explain_clip(model, _frames(), output="lge_view", config=FAST)
    wma = explain_clip(model, _frames(), config=FAST)
    assert lge.output == "lge_view" and not np.array_equal(lge.heat, wma.heat)
    assert [p.requires_grad for p in model.module.parameters()] == before


def test_any_segment_wma_when_the_model_has_no_view_output():
    model = _tiny_model(outputs=("wma", "lge"))
    assert explain_clip(model, _frames(), config=FAST).output == "wma"
    with pytest.raises(ConfigError, match="no WMA output"):
        wma_output(_tiny_model(outputs=("lge",)))


@pytest.mark.parametrize("frames, shown", [
    (np.zeros((8, 112, 112), np.float32), "float32 (8, 112, 112)"),
    (np.zeros((8, 64, 64), np.uint8), "uint8 (8, 64, 64)"),
    (np.zeros((1, 112, 112), np.uint8), "uint8 (1, 112, 112)"),
    (np.zeros((112, 112), np.uint8), "uint8 (112, 112)"),
])
def test_bad_frames_name_the_shape_they_got(frames, shown):
    with pytest.raises(InputError) as info:
        explain_clip(_tiny_model(), frames, config=FAST)
    assert info.value.code == "bad_clip" and shown in str(info.value)


def test_bad_output_and_config_are_refused():
    with pytest.raises(ConfigError, match="no output 'ecv'"):
        explain_clip(_tiny_model(), _frames(), output="ecv", config=FAST)
    for bad in (dict(n_steps=0), dict(internal_batch_size=0), dict(baseline_grey=300), dict(method="occlusion"),
                dict(patch_px=8, stride_px=16), dict(patch_px=200)):
        with pytest.raises(ConfigError):
            AttributionConfig(**bad)


GRAD_CAM = AttributionConfig(method="grad-cam")


def test_grad_cam_is_the_definition_upsampled():
    """Grad-CAM of layer2 = sum over channels of (mean gradient of the logit) x activation,
    trilinearly upsampled to the window: recomputed here with plain hooks, not Captum."""
    model = _tiny_model()
    frames = _frames(12, seed=5)
    result = explain_clip(model, frames, config=GRAD_CAM)
    saved = {}
    hook = model.module.layer2.register_forward_hook(lambda m, i, o: saved.update(act=o))
    norm = model.meta["normalisation"]
    x = ((torch.from_numpy(frames[result.frame_indices].astype(np.float32)) - norm["mean"]) / norm["std"])[None, None]
    logit = model.module(x.expand(-1, 3, -1, -1, -1))[0, 0]
    hook.remove()
    grad, = torch.autograd.grad(logit, saved["act"])
    cam = (grad.mean(dim=(2, 3, 4), keepdim=True) * saved["act"]).sum(dim=1, keepdim=True)
    expected = torch.nn.functional.interpolate(cam, size=(4, 112, 112), mode="trilinear", align_corners=False)
    assert np.allclose(result.heat, expected[0, 0].detach().numpy(), atol=1e-6)
    assert result.heat.shape == (4, 112, 112) and result.heat.dtype == np.float32
    assert result.logit == pytest.approx(float(logit.detach()), abs=1e-6)
    assert np.isnan(result.baseline_logit) and np.isnan(result.convergence_delta)
    assert result.method.startswith("Grad-CAM") and np.isclose(result.frame_importance.sum(), 1.0, atol=1e-5)
    assert np.array_equal(explain_clip(model, frames, config=GRAD_CAM).heat, result.heat)  # deterministic


def test_grad_cam_of_a_per_target_model_reads_that_targets_network():
    """Published weights are one network per output: output k's map comes from network k's layer2."""
    from echocmr.attribution import _cam_layer
    from echocmr.models import PerTargetR2Plus1D

    module = PerTargetR2Plus1D(2)
    assert _cam_layer(module, 1) is module.nets[1].layer2 and _cam_layer(module, 0) is module.nets[0].layer2
    with pytest.raises(ConfigError, match="layer2"):
        _cam_layer(torch.nn.Linear(2, 2), 0)


def test_score_map_is_the_models_own_pooling_weights_upsampled():
    """For a map-pooled output, "auto" shows the map: its softmax weights at the model's sharpness,
    trilinearly upsampled to the window and summing to 1; no gradient, no baseline."""
    from echocmr.models import map_weights

    model = _tiny_model(n_frames=8, map_outputs=1)
    torch.nn.init.normal_(model.module.score_map.weight, 0, 0.5)
    frames = _frames(20, seed=2)
    result = explain_clip(model, frames)
    norm = model.meta["normalisation"]
    x = ((torch.from_numpy(frames[result.frame_indices].astype(np.float32)) - norm["mean"]) / norm["std"])[None, None]
    with torch.no_grad():
        scores, _ = model.module.maps(x.expand(-1, 3, -1, -1, -1))
        logit = float(model.module(x.expand(-1, 3, -1, -1, -1))[0, 0])
    up = torch.nn.functional.interpolate(map_weights(scores)[:, :1], size=(8, 112, 112), mode="trilinear",
                                         align_corners=False)[0, 0].double().numpy()
    assert np.allclose(result.heat, up / up.sum(), atol=1e-7) and result.heat.sum() == pytest.approx(1.0, abs=1e-5)
    assert np.allclose(result.frame_importance, result.frame_contribution, atol=1e-6)  # a share already
    assert np.ptp(result.frame_importance) > 0 and result.logit == pytest.approx(logit, abs=1e-6)
    assert result.method.startswith("the model's own WMA score map") and np.isnan(result.baseline_logit)
    assert np.array_equal(explain_clip(model, frames).heat, result.heat)  # deterministic


def test_auto_falls_back_to_integrated_gradients_and_score_map_needs_a_map():
    mapped = _tiny_model(n_frames=8, map_outputs=1)
    assert explain_clip(mapped, _frames(), output="lge_view", config=FAST).method.startswith("integrated")
    assert explain_clip(_tiny_model(), _frames(), config=FAST).method.startswith("integrated")
    assert explain_clip(mapped, _frames(), config=GRAD_CAM).method.startswith("Grad-CAM")  # asked for, given
    with pytest.raises(ConfigError, match="not pooled from a score map"):
        explain_clip(mapped, _frames(), output="lge_view", config=AttributionConfig(method="score-map"))
    with pytest.raises(ConfigError, match="not pooled from a score map"):
        explain_clip(_tiny_model(), _frames(), config=AttributionConfig(method="score-map"))


MOTION = AttributionConfig(method="motion-occlusion", patch_px=56, stride_px=28)


def test_motion_occlusion_is_the_logit_drop_when_a_patch_stands_still():
    """Recomputed by hand: each 56-px patch (every 28 px) replaced by its mean over the window,
    the logit's fall averaged over the patches covering a pixel; a still clip gets zero."""
    model = _tiny_model()
    frames = _frames(12, seed=7)
    result = explain_clip(model, frames, config=MOTION)
    norm = model.meta["normalisation"]
    x = ((torch.from_numpy(frames[result.frame_indices].astype(np.float32)) - norm["mean"]) / norm["std"])[None, None]

    def logit(clip):
        with torch.no_grad():
            return float(model.module(clip.expand(-1, 3, -1, -1, -1))[0, 0])

    total, count = np.zeros((112, 112)), np.zeros((112, 112))
    for top in range(0, 112 - 56 + 1, 28):
        for left in range(0, 112 - 56 + 1, 28):
            held = x.clone()
            patch = held[..., top:top + 56, left:left + 56]
            held[..., top:top + 56, left:left + 56] = patch.mean(dim=2, keepdim=True).expand_as(patch)
            total[top:top + 56, left:left + 56] += logit(x) - logit(held)
            count[top:top + 56, left:left + 56] += 1
    assert np.allclose(result.heat, np.broadcast_to(total / count, result.heat.shape), atol=1e-5)
    assert np.ptp(result.frame_importance) < 1e-6  # the same for every frame: no time resolution
    assert np.isnan(result.baseline_logit) and result.method.startswith("motion occlusion")
    still = np.repeat(frames[:1], 12, axis=0)
    assert np.abs(explain_clip(model, still, config=MOTION).heat).max() < 1e-5


def test_short_clip_is_stretched_over_one_window():
    model = _tiny_model(n_frames=4, period=2)
    result = explain_clip(model, _frames(3), config=FAST)
    assert result.heat.shape == (4, 112, 112) and result.frame_indices.max() <= 2


def test_localisation_ratio_chance_and_concentration():
    myo = np.zeros((2, 10, 10), bool)
    myo[:, 2:8, 2:8] = True  # 36 px per frame
    region = np.zeros_like(myo)
    region[:, 2:5, 2:8] = True  # half of it
    uniform = myo.astype(float)
    assert localisation_ratio(uniform, region, myo) == pytest.approx(1.0)
    focused = region.astype(float)
    assert localisation_ratio(focused, region, myo) == pytest.approx(2.0)  # all mass on half the area
    outside = (~myo).astype(float) + myo  # mass off the myocardium does not count
    assert localisation_ratio(outside, region, myo) == pytest.approx(1.0)
    assert np.isnan(localisation_ratio(np.zeros(myo.shape), region, myo))
    assert np.isnan(localisation_ratio(uniform, np.zeros_like(myo), myo))
    with pytest.raises(ValueError, match=r"\(2, 10, 10\).*\(1, 10, 10\)"):
        localisation_ratio(uniform, region[:1], myo)
    with pytest.raises(ValueError, match="non-negative"):
        localisation_ratio(-uniform, region, myo)


def test_overlay_pictures_and_files(tmp_path):
    from echocmr.attribution_media import overlay_figure, overlay_frames, safe_stem, write_explanation

    result = explain_clip(_tiny_model(), _frames(), config=FAST)
    frames = overlay_frames(result, size=64)
    assert frames.shape == (4, 64, 64, 3) and frames.dtype == np.uint8
    figure = overlay_figure(result, "title", tile=64)
    assert figure.ndim == 3 and figure.shape[2] == 3 and figure.shape[1] == 4 * 64
    assert safe_stem("a/b..c:d", 0) == "clip01_abcd" and safe_stem("", 2) == "clip03"
    written = write_explanation(tmp_path / "out", "clip01_abc", result, fps=30.0, synthetic=True)
    assert sorted(p.name for p in written) == ["clip01_abc.png", "clip01_abc.webm"]
    assert written[0].read_bytes().startswith(b"\x89PNG") and written[1].read_bytes().startswith(b"\x1a\x45\xdf\xa3")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["clip01_abc.png", "clip01_abc.webm"]
    with pytest.raises(ValueError, match="stem"):
        write_explanation(tmp_path, "../x", result, fps=30.0, synthetic=True)


def test_clip_attribution_is_a_typed_record():
    fields = set(ClipAttribution.__dataclass_fields__)
    assert {"heat", "frame_importance", "frame_indices", "output", "convergence_delta"} <= fields
