"""Burned-in text *inside* the fan: found by being static while the tissue around it moves.

Overlay text outside the sector is removed by the sector mask; text drawn inside it (a name or
a date of birth at grey level 150 in the near field) survived. Tissue speckle changes from
frame to frame; burned-in text and markers do not, and they stand out from their
neighbourhood. A pixel inside the fan is masked when, over the sampled frames, its temporal
standard deviation is below ``STATIC_STD`` grey levels, its mean is at least ``MIN_TEXT_GREY``
and the mean standard deviation around it (``NEIGHBOURHOOD_PX``) is at least ``MOVING_STD``
(it sits amid moving tissue) or its mean is ``CONTRAST`` above the neighbourhood's (text
over still, dark blood pool); the mask is closed, specks under ``MIN_COMPONENT_PX`` are
dropped (tissue has isolated static pixels; glyphs are strokes) and it is grown by a pixel.

With fewer than ``MIN_FRAMES`` distinct frames (a still image) nothing can be told apart: the
clip says "not checked" rather than promising a clean image. Measured on generated cases by
``bench/burned_text.py`` (README, "Security").
"""

from __future__ import annotations

import cv2
import numpy as np

MIN_FRAMES = 4
STATIC_STD = 3.0  # grey levels: a text pixel's standard deviation over the sampled frames
MOVING_STD = 6.0  # mean standard deviation around it: tissue that moves
MIN_TEXT_GREY = 40  # dark, still blood pool is not text (and masking it would change nothing)
NEIGHBOURHOOD_PX = 21
CONTRAST = 30.0  # grey levels above the neighbourhood's mean (text over still blood pool)
SAMPLE_FRAMES = 16
MIN_COMPONENT_PX = 15

NOT_CHECKED = "not checked (too few frames to tell static text from tissue)"
NONE_FOUND = "none found"


def sample_indices(n_frames: int) -> set[int]:
    n = max(1, int(n_frames))
    return set(np.linspace(0, n - 1, min(n, SAMPLE_FRAMES)).round().astype(int).tolist())


def static_text_mask(crops: list[np.ndarray], fan: np.ndarray) -> np.ndarray | None:
    """uint8 (h, w), 255 = static text inside ``fan`` (uint8, 255 inside); None: not checkable."""
    if len(crops) < MIN_FRAMES:
        return None
    grey = np.stack(crops)
    if not np.any(grey[1:] != grey[:-1]):  # the same frame repeated: a still
        return None
    stack = grey.astype(np.float32)
    std, mean = stack.std(axis=0), stack.mean(axis=0)
    # The neighbourhood's typical motion: a static pixel amid moving tissue is an overlay.
    box = (NEIGHBOURHOOD_PX, NEIGHBOURHOOD_PX)
    around = cv2.blur(std, box)  # a mean: dense glyphs do not hide the tissue
    # Over still, dark blood pool nothing moves: there, text is what is much brighter than around.
    brighter = mean - cv2.blur(mean, box) >= CONTRAST
    text = (std < STATIC_STD) & (mean >= MIN_TEXT_GREY) & ((around >= MOVING_STD) | brighter) & (fan > 0)
    kernel = np.ones((3, 3), np.uint8)
    mask = cv2.morphologyEx(text.astype(np.uint8) * 255, cv2.MORPH_CLOSE, kernel)
    # Tissue has isolated static pixels (saturated or black speckle); glyphs are strokes.
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    small = stats[:, cv2.CC_STAT_AREA] < MIN_COMPONENT_PX  # per label (a lookup: one pass)
    mask[small[labels]] = 0
    return cv2.bitwise_and(cv2.dilate(mask, kernel), fan)


def describe(mask: np.ndarray | None) -> str:
    """The clip's ``burned_text`` field."""
    if mask is None:
        return NOT_CHECKED
    pixels = int(np.count_nonzero(mask))
    return f"masked ({pixels} px of static text or markers inside the sector)" if pixels else NONE_FOUND
