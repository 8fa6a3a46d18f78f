"""Validation of the attribution on synthetic clips: the renderer's segment map and territories,
the positive control's data and training, and whether the shipped model's WMA score map lands on
the one akinetic segment (and its integrated gradients on the myocardium)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest

from echocmr.attribution import AttributionConfig
from echocmr.attribution_check import bootstrap_mean, localisation_cases, one_akinetic, visible_segments
from echocmr.synth import HeartState, draw_clip_spec, render_clip
from echocmr.synth.segments import UNASSIGNED, segment_label_frames, segment_labels_112, segment_territories, shown_segments

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = ROOT / "checkpoints" / "default"


def _heart() -> HeartState:
    return HeartState(wma=np.zeros(17, np.int8), transmural=np.zeros(17, bool), excursion=0.3, lv_scale=1.0,
                      wall_scale=1.0, septal_scale=1.0, t1_ms=1000.0, t2_ms=49.0, ecv_pct=28.0)


@pytest.mark.parametrize("view", ["A4C", "A2C", "PLAX"])
def test_segment_map_is_the_renderers_myocardium(view):
    spec = dataclasses.replace(draw_clip_spec(np.random.default_rng(4), view, (160, 208), 2.0), n_frames=6)
    heart = one_akinetic(_heart(), shown_segments(view)[1])
    labels = segment_label_frames(spec, heart)
    rendered = render_clip(spec, heart, labels=True)
    assert labels.shape == rendered.clean.shape and labels.dtype == np.uint8
    assert np.array_equal(labels > 0, rendered.labels == 2)  # exactly the pixels drawn as LV myocardium
    assert set(np.unique(labels)) - {0} <= set(shown_segments(view)) | {UNASSIGNED}
    assert np.array_equal(labels, segment_label_frames(spec, heart))  # pure: same in, same out


def test_akinetic_segment_stays_put_while_normal_ones_move():
    spec = draw_clip_spec(np.random.default_rng(8), "A4C", (160, 208), 2.0)
    segment = visible_segments(spec, _heart())[0]
    labels = segment_label_frames(spec, one_akinetic(_heart(), segment))

    def spread(seg):  # how far the segment's centroid travels over the clip (px)
        ys, xs = zip(*[np.argwhere(f == seg).mean(axis=0) for f in labels if (f == seg).any()])
        return float(np.hypot(np.ptp(ys), np.ptp(xs)))

    others = [s for s in visible_segments(spec, _heart()) if s != segment and s != 17]
    assert spread(segment) < min(spread(s) for s in others)


def test_segment_labels_follow_the_ingested_clip():
    from echocmr.attribution_check import ingest_rendered

    spec = draw_clip_spec(np.random.default_rng(2), "A2C", (240, 320), 2.0)
    heart = _heart()
    from echocmr.synth.measure import labels_to_112

    rendered = render_clip(spec, heart, bgr=True, labels=True)
    clip = ingest_rendered(rendered, spec)
    small = segment_labels_112(segment_label_frames(spec, heart), clip)
    assert small.shape == clip.frames.shape and small.dtype == np.uint8
    wall, blood = small > 0, labels_to_112(rendered.labels, clip) == 1
    # Aligned with the model's own 112×112 frames: the wall is far brighter than the cavity it surrounds.
    assert wall.mean() > 0.02 and clip.frames[wall].mean() > 3 * clip.frames[blood].mean()
    shifted = np.roll(wall, 12, axis=2)  # a misregistered map would not be
    assert clip.frames[shifted & ~wall].mean() < clip.frames[wall].mean()


def test_visible_segments_leave_out_what_the_fan_cuts():
    spec = draw_clip_spec(np.random.default_rng(2), "A4C", (240, 320), 2.1)
    shown = visible_segments(spec, _heart())
    assert shown and set(shown) <= set(shown_segments("A4C"))
    first = segment_label_frames(dataclasses.replace(spec, n_frames=1), _heart())[0]
    for seg in set(shown_segments("A4C")) - set(shown):
        assert (first == seg).sum() < 0.5 * max((first == s).sum() for s in shown)


def test_segment_territories_give_each_lv_pixel_its_nearest_segment():
    segments = np.zeros((2, 8, 12), np.uint8)
    segments[:, 0, 1:3] = 3  # a wall piece at the top left ...
    segments[:, 0, 9:11] = 9  # ... and one at the top right
    segments[1, 0, 9:11] = 0  # frame 1: the right piece is gone, its pixels go to the left one
    lv = np.zeros_like(segments)
    lv[:, :6, :] = 1  # cavity and wall; rows 6-7 are outside the LV
    territories = segment_territories(segments, lv)
    assert territories.dtype == np.uint8 and territories.shape == segments.shape
    assert (territories[:, 6:] == 0).all()  # outside the LV: no territory
    assert (territories[0, :6, :5] == 3).all() and (territories[0, :6, 7:] == 9).all()
    assert (territories[1, :6] == 3).all()
    assert (segment_territories(np.zeros_like(segments), lv) == 0).all()  # no wall drawn: nothing to assign
    with pytest.raises(ValueError, match=r"segments \(2, 8, 12\) and lv \(2, 8, 11\)"):
        segment_territories(segments, lv[..., :11])


def test_positive_control_is_taught_single_segments_on_a_copy():
    import torch

    from echocmr.attribution_control import PositiveControlConfig, control_clips, train_positive_control
    from echocmr.model_runner import load_view_model

    base = load_view_model(BUNDLE / "A2C")
    before = {k: v.clone() for k, v in base.module.state_dict().items()}
    config = PositiveControlConfig(view="A2C", n_clips=4, epochs=1, batch_size=2)
    clips, targets = control_clips(base, config)
    assert len(clips) == 4 and all(c.dtype == np.uint8 and c.shape[1:] == (112, 112) for c in clips)
    assert targets.shape == (4, 1 + len(shown_segments("A2C")))
    assert targets[0::2, 0].tolist() == [1, 1] and targets[0::2, 1:].sum(axis=1).tolist() == [1, 1]
    assert not targets[1::2].any()  # odd clips: every segment normal
    lines = []
    control = train_positive_control(base, config, log=lines.append)
    assert len(lines) == 1 and re.fullmatch(r"positive control A2C: epoch 1/1 loss \d+\.\d{4}", lines[0]), lines
    assert control.outputs == base.outputs and control.module is not base.module
    assert all(torch.equal(v, base.module.state_dict()[k]) for k, v in before.items())  # base untouched
    assert any(not torch.equal(v, before[k]) for k, v in control.module.state_dict().items() if v.is_floating_point())
    assert not control.module.training


def test_positive_control_needs_the_per_segment_outputs():
    from torch import nn

    from echocmr.attribution_control import supervised_outputs
    from echocmr.model_runner import LoadedModel

    columns, names = supervised_outputs(LoadedModel(nn.Identity(), {}, ("wma", "wma_view", "wma_seg1", "wma_seg2",
                                                                         "wma_seg5", "wma_seg8", "wma_seg11")), "PLAX")
    assert names == ["wma_view", "wma_seg8", "wma_seg2", "wma_seg5", "wma_seg11"] and columns == [1, 5, 3, 4, 6]
    with pytest.raises(ValueError, match=r"lacks outputs \['wma_seg17', 'wma_seg15', 'wma_seg10'"):
        supervised_outputs(LoadedModel(nn.Identity(), {}, ("wma_view",)), "A2C")


def test_bootstrap_mean_interval():
    mean, lo, hi = bootstrap_mean(np.array([1.0, 2.0, 3.0, np.nan]))
    assert mean == pytest.approx(2.0) and lo < mean < hi
    assert all(np.isnan(bootstrap_mean(np.array([np.nan]))))


@pytest.fixture(scope="module")
def shipped_models():
    from echocmr.bundle import load_bundle

    return load_bundle(str(BUNDLE)).view_models


@pytest.fixture(scope="module")
def shipped_cases(shipped_models):
    """24 synthetic clips (8 per model view), one akinetic segment each, and their all-normal
    twins, explained the page's way (the default: the shipped model's own WMA score map)."""
    return list(localisation_cases(shipped_models, 24, seed=0, control=True))


@pytest.mark.slow
def test_shipped_model_points_at_the_akinetic_segment(shipped_cases):
    """The issue's test: the map's share inside the akinetic segment over the segment's share of
    the myocardium is clearly above chance (bootstrap lower bound > 1), and above what the same
    segment gets in the clip's all-normal twin (paired lower bound > 0): not where segments lie."""
    ratios = np.array([c.ratio for c in shipped_cases])
    paired = ratios - np.array([c.control_ratio for c in shipped_cases])
    mean, low, _ = bootstrap_mean(ratios)
    assert np.isfinite(ratios).all() and low > 1.0, f"localisation ratio {mean:.2f}, lower bound {low:.2f}"
    mean, low, _ = bootstrap_mean(paired)
    assert low > 0.0, f"paired difference {mean:.2f}, lower bound {low:.2f}"
    assert {c.view for c in shipped_cases} == {"A4C", "A2C", "PLAX"}
    assert all(np.isfinite(c.territory_ratio) and 0 <= c.segment_probability <= 1 for c in shipped_cases)


@pytest.mark.slow
def test_integrated_gradients_of_the_shipped_model_look_at_the_myocardium(shipped_models):
    """Its positive integrated gradients concentrate on the LV wall: their share of the attribution
    is clearly above the wall's share of the fan (bootstrap lower bound > 1)."""
    cases = list(localisation_cases(shipped_models, 6, seed=0, control=False,
                                    config=AttributionConfig(method="integrated-gradients")))
    concentration = np.array([c.on_myocardium / c.myocardium_area for c in cases])
    mean, low, _ = bootstrap_mean(concentration)
    assert low > 1.0, f"myocardium concentration {mean:.2f}, lower bound {low:.2f}"
    assert all(re.fullmatch(r"A4C|A2C|PLAX", c.view) for c in cases)
