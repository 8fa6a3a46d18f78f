"""Realism benchmark: synthetic echo vs real echo after the same ingestion (112×112, 30 fps).

Real echo comes only from files shipped inside installed PyPI packages (never downloaded):
pydicom's ``examples_ybr_color.dcm`` is a real apical 4-chamber colour cine (30 frames). pydicom's
other ultrasound test files are not cardiac cines of a model view (a lymph node, small parts, an
obstetric still, a 60×80 byte-swapped test image), so they are not used. The real file is only
measured, never used to draw or fit the renderer's random values.

Per model view it renders ``--clips`` synthetic clips (240×320, the demo's size), writes each as a
JPEG DICOM in memory, ingests it with ``echocmr.ingest.read_clip(target_fps=30)`` exactly like a
real file, and measures (``echocmr.synth.measure``): grey percentiles 5/25/50/75/95 and mean inside
the fan, % of fan pixels above 120, myocardium:blood contrast, speckle correlation width (FWHM of
the residual's autocorrelation, lateral × axial px) and the frame-to-frame correlation of the
speckle residual. Synthetic myocardium/blood regions come from the renderer's own labels; on the
real cine they are the fixed polygons ``REAL_MYOCARDIUM`` / ``REAL_BLOOD`` below, hand-set once on
the ingested 112×112 clip (septum and lateral wall; LV cavity above the mitral leaflets).

The *real range* of a statistic is the min–max of its per-frame values on the real cine, widened
by a measurement tolerance (15 %, at least ``ABS_TOLERANCE``): one cine cannot show the spread
between studies, so the tolerance stands in for it. A view's synthetic figure is the median over
its clips. The last line is ``within_real_range: K/N``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from echocmr.config import SynthConfig  # noqa: E402
from echocmr.ingest.pipeline import read_clip  # noqa: E402
from echocmr.synth import generate_patients, render_clip  # noqa: E402
from echocmr.synth.measure import ClipStats, clip_stats, labels_to_112, sector_mask_112  # noqa: E402

VIEWS = ("A4C", "A2C", "PLAX")
REAL_FILES = {"A4C": "examples_ybr_color.dcm"}  # pydicom/data/test_files
# (x, y) vertices on the ingested 112×112 real A4C cine.
REAL_MYOCARDIUM = (((44, 46), (50, 46), (51, 78), (46, 78)),  # interventricular septum
                   ((69, 42), (74, 44), (74, 76), (69, 76)))  # lateral wall (drops out)
REAL_BLOOD = (((53, 44), (65, 44), (65, 60), (53, 60)),)  # LV cavity
ABS_TOLERANCE = {"p5": 2.0, "p25": 2.0, "p50": 2.0, "p75": 3.0, "p95": 5.0, "mean": 2.0, "bright_pct": 0.5,
                 "contrast": 0.3, "corr_lateral": 0.3, "corr_axial": 0.3, "temporal_corr": 0.03}
TARGET_FPS = 30.0


def _polygons(polys) -> np.ndarray:
    img = np.zeros((112, 112), np.uint8)
    for poly in polys:
        cv2.fillPoly(img, [np.array(poly, np.int32)], 1)
    return img > 0


def real_clip(name: str):
    import pydicom

    return read_clip(str(Path(os.path.dirname(pydicom.__file__)) / "data" / "test_files" / name),
                     target_fps=TARGET_FPS)


def real_stats(name: str) -> ClipStats:
    clip = real_clip(name)
    return clip_stats(clip.frames, sector_mask_112(clip), _polygons(REAL_MYOCARDIUM), _polygons(REAL_BLOOD))


def save_picture(path: Path, tiles: list[tuple[np.ndarray, str]]) -> None:
    """One row of 112×112 frames, shown 2× with a caption each (a small PNG for the README)."""
    cols = []
    for img, title in tiles:
        head = np.zeros((22, 224), np.uint8)
        cv2.putText(head, title, (4, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.42, 230, 1, cv2.LINE_AA)
        cols += [np.vstack([head, cv2.resize(img, (224, 224), interpolation=cv2.INTER_NEAREST)]),
                 np.full((246, 4), 60, np.uint8)]
    cv2.imwrite(str(path), np.hstack(cols[:-1]), [cv2.IMWRITE_PNG_COMPRESSION, 9])


def _dicom_bytes(rendered, spec) -> bytes:
    from echocmr.synth.dicom_writer import clip_dicom_bytes

    return clip_dicom_bytes(rendered.frames, spec, "BENCH")


def synthetic_stats(view: str, n_clips: int, seed: int, first: list | None = None
                    ) -> tuple[list[ClipStats], float, int]:
    """Per-clip stats of ``n_clips`` synthetic clips of ``view``; render seconds and frames.

    ``first``: when given, the first ingested frame of the first clip is appended to it.
    """
    from echocmr.synth import draw_clip_spec

    patients = generate_patients(SynthConfig(n_patients=n_clips, seed=seed))
    rng = np.random.default_rng([seed, VIEWS.index(view)])
    out, seconds, frames = [], 0.0, 0
    for patient in patients:
        spec = draw_clip_spec(rng, view, (240, 320), 2.1)
        start = time.perf_counter()
        try:
            rendered = render_clip(spec, patient.heart, bgr=True, labels=True)
        except TypeError:  # a renderer without labels (measuring the old one): no contrast
            rendered = render_clip(spec, patient.heart, bgr=True)
        seconds += time.perf_counter() - start
        frames += spec.n_frames
        clip = read_clip(_dicom_bytes(rendered, spec), target_fps=TARGET_FPS)
        if first is not None and not out:
            first.append(clip.frames[0])
        mask = sector_mask_112(clip)
        labels = getattr(rendered, "labels", None)
        if labels is None:
            out.append(clip_stats(clip.frames, mask))
            continue
        lab = labels_to_112(labels, clip)
        # The 30 fps resampling picks frames; take the label frames at the same times.
        idx = np.round(np.arange(len(clip.frames)) * spec.fps / TARGET_FPS).astype(int).clip(0, len(lab) - 1)
        out.append(clip_stats(clip.frames, mask, lab[idx] == 2, lab[idx] == 1))
    return out, seconds, frames


def real_range(stats: ClipStats) -> dict[str, tuple[float, float]]:
    ranges = {}
    for key, values in stats.per_frame().items():
        values = values[np.isfinite(values)]
        lo, hi = float(values.min()), float(values.max())
        tol_lo = max(0.15 * abs(lo), ABS_TOLERANCE[key])
        tol_hi = max(0.15 * abs(hi), ABS_TOLERANCE[key])
        ranges[key] = (lo - tol_lo, hi + tol_hi)
    return ranges


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=8, help="synthetic clips per view")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--picture", type=Path, help="write the real and one synthetic frame per view (PNG)")
    args = parser.parse_args(argv)
    firsts: list[np.ndarray] = []
    real = real_stats(REAL_FILES["A4C"])
    ranges = real_range(real)
    real_summary = real.summary()
    print("real: A4C pydicom examples_ybr_color.dcm (the only real cine of a model view shipped on PyPI);"
          " every view is compared with it")
    within = total = 0
    render_s = render_frames = 0
    for view in VIEWS:
        clips, seconds, frames = synthetic_stats(view, args.clips, args.seed, firsts)
        render_s, render_frames = render_s + seconds, render_frames + frames
        summaries = [c.summary() for c in clips]
        print(f"\n{view}: {len(clips)} synthetic clips")
        print(f"  {'statistic':<14}{'synthetic (median, IQR over clips)':>38}{'real A4C':>10}{'real range':>18}  in")
        for key, (lo, hi) in ranges.items():
            vals = np.array([s[key] for s in summaries], float)
            med = float(np.nanmedian(vals)) if np.isfinite(vals).any() else float("nan")
            q1, q3 = (np.nanpercentile(vals, [25, 75]) if np.isfinite(vals).any() else (np.nan, np.nan))
            ok = bool(lo <= med <= hi)
            within, total = within + ok, total + 1
            print(f"  {key:<14}{med:>18.2f} ({q1:7.2f} – {q3:7.2f}){'':>3}{real_summary[key]:>10.2f}"
                  f"{lo:>9.2f} – {hi:<7.2f} {'yes' if ok else 'NO'}")
    print(f"\nrender: {render_s / max(render_frames, 1) * 1000:.2f} ms/frame, "
          f"{render_s / (len(VIEWS) * args.clips):.2f} s/clip at 240x320 "
          f"({render_frames / (len(VIEWS) * args.clips):.0f} frames/clip)")
    if args.picture:
        tiles = [(real_clip(REAL_FILES["A4C"]).frames[0], "real A4C (pydicom)")]
        save_picture(args.picture, tiles + [(f, f"synthetic {v}") for f, v in zip(firsts, VIEWS)])
    print(f"within_real_range: {within}/{total}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
