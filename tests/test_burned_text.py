"""Burned-in text inside the fan is found (static amid moving tissue) and masked in the clip
and the preview; a still says it was not checked."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

import dicom_factory as F
from echocmr.ingest import read_clip
from echocmr.ingest.burned_text import NONE_FOUND, NOT_CHECKED, static_text_mask


def _scene_with_text(grey: int = 150, n_frames: int = 12):
    scene = F.make_scene(240, 320, n_frames, seed=5, text=False, ecg=False)
    layer = np.zeros(scene.fan.shape, np.uint8)
    cv2.putText(layer, "DOE JANE 1961", (100, 120), cv2.FONT_HERSHEY_SIMPLEX, 0.8, 255, 2)
    text = (layer > 0) & scene.fan
    scene.rgb[:, text] = grey
    return scene, text


@pytest.mark.parametrize("grey", [100, 150, 255])
def test_static_text_inside_the_fan_is_masked_in_clip_and_preview(tmp_path, grey):
    scene, text = _scene_with_text(grey)
    clip = read_clip(str(F.write_dicom(tmp_path / "t.dcm", scene)))
    assert clip.burned_text.startswith("masked")
    preview = cv2.cvtColor(clip.preview, cv2.COLOR_RGB2GRAY)  # same size: 240 rows ≤ 480
    assert preview.shape == text.shape
    assert np.mean(preview[text] == 0) > 0.97  # the text pixels are gone from the preview
    # …and from the 112×112 clip (the pixels the text fell on there are zeroed).
    x0, y0, x1, y1 = clip.sector.bbox
    side = max(x1 - x0, y1 - y0)
    square = np.zeros((side, side), np.uint8)
    ox, oy = (side - (x1 - x0)) // 2, (side - (y1 - y0)) // 2
    square[oy:oy + y1 - y0, ox:ox + x1 - x0] = text[y0:y1, x0:x1]
    small = cv2.resize(square, (112, 112), interpolation=cv2.INTER_AREA) > 0
    assert np.mean(clip.frames[:, small] == 0) > 0.95


def test_a_clip_without_text_loses_almost_nothing(tmp_path):
    scene = F.make_scene(240, 320, 12, seed=5, text=False, ecg=False)
    clip = read_clip(str(F.write_dicom(tmp_path / "n.dcm", scene)))
    assert clip.burned_text == NONE_FOUND


def test_the_tissue_around_text_is_barely_touched():
    scene, text = _scene_with_text(150)
    grey = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in scene.rgb])
    mask = static_text_mask(list(grey), scene.fan.astype(np.uint8) * 255) > 0
    tissue = scene.fan & ~text
    assert mask[text].mean() > 0.97 and mask[tissue].mean() < 0.04  # the 1-px ring around glyphs


def test_a_still_says_it_was_not_checked(tmp_path):
    scene, _ = _scene_with_text(150, n_frames=1)
    clip = read_clip(str(F.write_dicom(tmp_path / "s.dcm", scene)))
    assert clip.burned_text == NOT_CHECKED
