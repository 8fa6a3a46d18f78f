"""Pictures of an attribution: heat-map overlays (WebM video, PNG figure) and ``predict --explain``.

No Streamlit here: the dashboard and the CLI both call these. Only de-identified 112×112 model
frames reach this module; file names are built from pseudonymous clip ids, never from input names.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import cv2
import numpy as np

from .attribution import ClipAttribution
from .media import encode_png, encode_webm_rgb

HEAT_SIGMA_PX = 1.5  # display smoothing of the heat map (model pixels): IG maps are speckly
HEAT_PERCENTILE = 99.5  # the window's heat is scaled so this percentile of positive values is full colour
MAX_ALPHA = 0.65
STRIP_FRAMES = 8


def heat_scale(attribution: ClipAttribution) -> np.ndarray:
    """float32 (T, 112, 112) in [0, 1]: the positive attribution, lightly smoothed, scaled by one
    value for the whole window (so frames can be compared with each other)."""
    positive = np.stack([cv2.GaussianBlur(f, (0, 0), HEAT_SIGMA_PX) for f in attribution.positive])
    values = positive[positive > 0]
    top = float(np.percentile(values, HEAT_PERCENTILE)) if len(values) else 0.0
    if top <= 0:
        return np.zeros_like(positive, dtype=np.float32)
    return np.clip(positive / top, 0.0, 1.0).astype(np.float32)


def overlay_frames(attribution: ClipAttribution, size: int = 224) -> np.ndarray:
    """uint8 (T, size, size, 3) RGB: each window frame in grey with the heat map blended on top
    (inferno colours; transparent where the attribution is small)."""
    heat = heat_scale(attribution)
    out = np.empty((len(heat), size, size, 3), np.uint8)
    for t, (frame, h) in enumerate(zip(attribution.frames, heat)):
        grey = cv2.cvtColor(cv2.resize(frame, (size, size), interpolation=cv2.INTER_CUBIC), cv2.COLOR_GRAY2RGB)
        h_big = cv2.resize(h, (size, size), interpolation=cv2.INTER_LINEAR)
        colour = cv2.cvtColor(cv2.applyColorMap((h_big * 255).astype(np.uint8), cv2.COLORMAP_INFERNO), cv2.COLOR_BGR2RGB)
        alpha = (MAX_ALPHA * np.sqrt(h_big))[..., None]  # sqrt: faint evidence stays visible
        out[t] = (grey * (1 - alpha) + colour * alpha).astype(np.uint8)
    return out


def overlay_webm(attribution: ClipAttribution, fps: float, size: int = 224) -> bytes:
    """The overlay as a WebM playing the window's frames at ``fps`` / their spacing (real time)."""
    steps = np.diff(attribution.frame_indices)
    spacing = float(np.median(steps)) if len(steps) and np.median(steps) > 0 else 1.0
    return encode_webm_rgb(overlay_frames(attribution, size), fps / spacing)


def _curve(importance: np.ndarray, width: int, height: int) -> np.ndarray:
    """uint8 RGB (height, width): the per-frame importance as bars, one per frame, with labels."""
    img = np.full((height, width, 3), 255, np.uint8)
    n = len(importance)
    top = float(importance.max()) if n and importance.max() > 0 else 1.0
    left, bottom, plot_h = 40, height - 18, height - 40
    step = (width - left - 8) / max(n, 1)
    for t, value in enumerate(importance):
        x0 = int(left + t * step + 1)
        bar = int(plot_h * float(value) / top)
        cv2.rectangle(img, (x0, bottom - bar), (int(x0 + step - 2), bottom), (200, 80, 40), -1)
        if n <= 32 and (t % 2 == 0):
            cv2.putText(img, str(t + 1), (x0, height - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.32, (60, 60, 60), 1, cv2.LINE_AA)
    cv2.line(img, (left, bottom), (width - 8, bottom), (0, 0, 0), 1)
    cv2.putText(img, f"{top:.0%}", (2, bottom - plot_h + 8), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, "share of positive attribution per window frame", (left, 14), cv2.FONT_HERSHEY_SIMPLEX,
                0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return img


def overlay_figure(attribution: ClipAttribution, title: str, tile: int = 160) -> np.ndarray:
    """uint8 RGB figure: a title, ``STRIP_FRAMES`` evenly spaced overlay frames (numbered as window
    frames), and the per-frame importance bars underneath."""
    frames = overlay_frames(attribution, tile)
    picks = np.unique(np.linspace(0, len(frames) - 1, min(STRIP_FRAMES, len(frames))).round().astype(int))
    tiles = []
    for t in picks:
        img = frames[t].copy()
        cv2.putText(img, f"frame {t + 1}", (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(img)
    strip = np.hstack(tiles)
    head = np.full((26, strip.shape[1], 3), 255, np.uint8)
    cv2.putText(head, title, (4, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([head, strip, _curve(attribution.frame_importance, strip.shape[1], 110)])


def describe(attribution: ClipAttribution, synthetic: bool) -> str:
    """One line saying what the picture is."""
    origin = "synthetic-data model" if synthetic else "model"
    return (f"{attribution.method}; output {attribution.output} of the {origin}; "
            f"window P(WMA) {attribution.probability:.0%}; {len(attribution.frame_indices)} frames")


_SAFE = re.compile(r"[^A-Za-z0-9_-]")


def safe_stem(clip_id: str, index: int) -> str:
    """A file stem from a pseudonymous clip id (first 16 safe characters), or the clip number."""
    cleaned = _SAFE.sub("", clip_id or "")[:16]
    return f"clip{index + 1:02d}_{cleaned}" if cleaned else f"clip{index + 1:02d}"


def write_explanation(out_dir: str | os.PathLike, stem: str, attribution: ClipAttribution, fps: float,
                      synthetic: bool) -> list[Path]:
    """Write ``STEM.png`` (figure) and ``STEM.webm`` (overlay video) atomically into ``out_dir``."""
    from .atomic import atomic_write_bytes

    if _SAFE.sub("", stem) != stem or not stem:
        raise ValueError("an explanation file stem may hold only letters, digits, '-' and '_'")
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    png = encode_png(overlay_figure(attribution, describe(attribution, synthetic)))
    webm = overlay_webm(attribution, fps)
    return [atomic_write_bytes(folder / f"{stem}{suffix}", data) for suffix, data in ((".png", png), (".webm", webm))]


def explain_study(result, bundle, out_dir: str | os.PathLike, config=None) -> tuple[list[Path], list[str]]:
    """``predict --explain``: for every clip of a ``StudyPrediction`` that fed a view model, explain
    that model's WMA output and write its PNG and WebM. Returns (files written, problems); a clip
    that cannot be explained is reported and skipped, never stops the others."""
    from .attribution import AttributionConfig, explain_clip
    from .errors import EchoCMRError

    written: list[Path] = []
    problems: list[str] = []
    for clip in result.clips:
        if not clip.used_for:
            continue
        model = bundle.view_models[clip.used_for]
        try:
            attribution = explain_clip(model, clip.clip.frames, fps=clip.clip.fps, config=config or AttributionConfig())
            rate = model.target_fps or clip.clip.fps
            written += write_explanation(out_dir, safe_stem(clip.clip.clip_id, clip.index), attribution, rate,
                                         bool(getattr(bundle, "synthetic", True)))
        except EchoCMRError as exc:
            problems.append(f"{clip.display_name}: not explained: {exc}")
    return written, problems
