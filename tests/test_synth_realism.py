"""The renderer's realism: look ranges, rhythm, tissue-bound texture, dropout, PLAX without apex,
labels for measuring, and the statistics ``bench/realism.py`` prints."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from echocmr.synth import HeartState, draw_clip_spec, render_clip
from echocmr.synth.anatomy import SCENES
from echocmr.synth.canvas import prepare_canvas, render_canvas
from echocmr.synth.look import Look, Realism, beat_strength, draw_rhythm, phase_track
from echocmr.synth.measure import clip_stats, speckle_widths
from echocmr.synth.spec import clip_rhythm
from echocmr.targets import N_SEGMENTS


def _heart(score: int = 0) -> HeartState:
    return HeartState(wma=np.full(N_SEGMENTS, score, np.int8), transmural=np.zeros(N_SEGMENTS, bool),
                      excursion=0.3, lv_scale=1.0, wall_scale=1.0, septal_scale=1.0,
                      t1_ms=1020.0, t2_ms=49.0, ecv_pct=28.0)


def _spec(view: str = "A4C", seed: int = 5, **look):
    spec = draw_clip_spec(np.random.default_rng(seed), view, (160, 208), 2.0)
    return dataclasses.replace(spec, look=dataclasses.replace(spec.look, **look)) if look else spec


def test_every_look_value_is_drawn_inside_its_range():
    realism = Realism()
    rng = np.random.default_rng(0)
    for view in ("A4C", "PLAX"):
        for _ in range(50):
            look = realism.draw_look(rng, view)
            for f in dataclasses.fields(Look):
                lo, hi = getattr(realism, f.name)
                assert lo * 0.5 - 1e-9 <= getattr(look, f.name) <= hi + 1e-9, f.name
            if view == "PLAX":
                assert look.foreshortening == 0.0


def test_clips_hold_three_to_five_beats_with_variable_rr_and_occasional_ectopics():
    rng = np.random.default_rng(1)
    beats, ectopic = [], 0
    for _ in range(300):
        spec = draw_clip_spec(rng, "A4C", (120, 160), 2.0)
        phases, strength = clip_rhythm(spec)
        beats.append(phases[-1] - phases[0])
        ectopic += bool(strength.min() < 0.9)
        assert np.all(np.diff(phases) > 0)
    assert 2.5 <= np.percentile(beats, 5) and np.percentile(beats, 95) <= 5.5
    assert 0.02 < ectopic / 300 < 0.2
    n_beats, rr = draw_rhythm(np.random.default_rng(2), dataclasses.replace(Realism(), ectopic_probability=1.0), 3.0)
    assert 3.0 <= n_beats <= 5.0 and len(rr) >= n_beats + 2
    k = int(np.argmin(rr))
    assert rr[k] < 0.8 and rr[k + 1] > 1.2 and beat_strength(rr)[k] < 1.0
    phase, _ = phase_track((1.0, 0.5, 1.5), 0.0, 1.0, np.array([0.0, 0.5, 1.25, 1.5, 2.25]))
    assert np.allclose(phase, [0.0, 0.5, 1.5, 2.0, 2.5])


def test_myocardial_texture_moves_with_the_wall():
    """The texture sits on the wall's own coordinates: contraction moves the pattern with it."""
    spec = _spec("PSAX")
    cs = prepare_canvas(spec, _heart(0), 0.0, np.random.default_rng(spec.seed))
    relaxed, endo0 = render_canvas(cs, 0.0)
    contracted, endo1 = render_canvas(cs, 1.0)
    assert np.all(endo1[cs.tables.wall > 0.5] < endo0[cs.tables.wall > 0.5])
    lv = cs.lv
    # Texture values of the wall pixels are the same set (re-sampled), not a fixed image field.
    wall0 = relaxed[lv.window][(lv.rho > endo0[lv.psi] + 0.05) & (lv.rho < endo0[lv.psi] + 0.1)]
    assert wall0.std() > 0.1 * wall0.mean()  # textured, not a flat grey wall


def test_lateral_dropout_darkens_the_lateral_side_only():
    heart = _heart(0)
    strong = render_clip(_spec("A4C", lateral_dropout=0.85, apical_dropout=0.0), heart)
    none = render_clip(_spec("A4C", lateral_dropout=0.0, apical_dropout=0.0), heart)
    spec = strong.spec
    x0, y0, x1, y1 = spec.bbox
    mid_rows = slice(int(spec.apex[1] + 0.35 * spec.radius), int(spec.apex[1] + 0.65 * spec.radius))
    half = int(spec.apex[0])
    side = slice(half + 1, x1) if spec.lateral_side > 0 else slice(x0, half)
    other = slice(x0, half) if spec.lateral_side > 0 else slice(half + 1, x1)
    lateral = strong.clean[:, mid_rows, side].mean() / none.clean[:, mid_rows, side].mean()
    medial = strong.clean[:, mid_rows, other].mean() / none.clean[:, mid_rows, other].mean()
    assert lateral < 0.8 * medial


def test_plax_does_not_show_the_apex():
    assert {seg for seg, _, _ in SCENES["PLAX"].arcs}.isdisjoint({14, 16, 17})
    clip = render_clip(_spec("PLAX"), _heart(0))
    assert np.isnan(clip.segment_radii[:, [13, 15, 16]]).all()


def test_labels_mark_blood_inside_myocardium_and_stay_out_of_the_frames():
    spec = _spec("A4C")
    with_labels = render_clip(spec, _heart(0), labels=True)
    without = render_clip(spec, _heart(0))
    assert without.labels is None
    assert np.array_equal(with_labels.frames, without.frames)  # measuring never changes pixels
    lab = with_labels.labels
    assert lab.shape == with_labels.clean.shape and set(np.unique(lab)) == {0, 1, 2}
    blood = with_labels.clean[lab == 1].astype(float).mean()
    myo = with_labels.clean[lab == 2].astype(float).mean()
    assert myo > 2 * blood


def test_speckle_width_grows_with_the_look_and_statistics_measure_it():
    narrow = render_clip(_spec("A4C", speckle_lateral=0.010), _heart(0))
    wide = render_clip(_spec("A4C", speckle_lateral=0.025), _heart(0))
    mask = narrow.sector_mask.copy()
    w_narrow = speckle_widths(narrow.clean[0], mask)[0]
    w_wide = speckle_widths(wide.clean[0], mask)[0]
    assert w_wide > 1.3 * w_narrow
    frames = narrow.clean[:6, :112, :112]
    stats = clip_stats(frames, mask[:112, :112])
    summary = stats.summary()
    assert summary["p5"] <= summary["p50"] <= summary["p95"] and np.isnan(summary["contrast"])
    assert 0.0 < summary["temporal_corr"] < 1.0


@pytest.mark.parametrize("view", ["A4C", "PLAX"])
def test_gain_and_dynamic_range_change_the_display(view):
    dark = render_clip(_spec(view, headroom_db=36.0), _heart(0))
    bright = render_clip(_spec(view, headroom_db=26.0), _heart(0))
    assert bright.clean[:, bright.sector_mask].mean() > dark.clean[:, dark.sector_mask].mean() + 10


def test_wall_motion_abnormalities_range_from_one_segment_to_many():
    from sklearn.metrics import roc_auc_score

    from echocmr.config import SynthConfig
    from echocmr.synth import generate_patients

    patients = generate_patients(SynthConfig(seed=7), n=2000)
    positive = [p for p in patients if p.any_wma]
    extent = np.array([(p.heart.wma > 0).sum() for p in positive])
    assert 0.42 <= len(positive) / len(patients) <= 0.55  # the paper's ~48 %
    assert 0.2 <= np.mean(extent <= 2) and np.mean(extent >= 6) >= 0.15  # single segments to many
    any_wma = np.array([p.any_wma for p in patients])
    lvef = np.array([p.lvef_pct for p in patients])
    assert roc_auc_score(any_wma, -lvef) < 0.92  # LVEF alone no longer nearly solves the task
