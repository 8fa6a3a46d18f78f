"""How far the reduced JPEG recipe moves pixels and the shipped model's outputs (``bench/ingest.py``).

Per JPEG-baseline file: ``read_clip`` exact vs reduced (``IngestLimits.jpeg_decode``), and both
against an anti-aliased reference (full decode, the same crop plan, INTER_AREA instead of the
cubic resize): the reduced recipe is an area average in the DCT domain, so its difference from
the exact clip is mostly the exact path's aliasing of speckle, which the reference shows.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from echocmr.config import IngestLimits
from echocmr.ingest import read_clip
from echocmr.ingest.dicom import DicomSource
from echocmr.ingest.resize import CropPlan


def area_reference(path: Path, exact) -> np.ndarray:
    """uint8 (T, 112, 112): full decode → the exact clip's crop plan → INTER_AREA resize."""
    with DicomSource(path.read_bytes(), IngestLimits()) as src:
        plan = CropPlan.build(exact.sector, 112, src.colour_order)
        out = []
        for frame in src.iter():
            clean = plan.clean(frame)
            square = np.zeros((plan.side, plan.side), np.uint8)
            (ox, oy), (h, w) = plan.offset, clean.shape
            square[oy:oy + h, ox:ox + w] = clean
            out.append(cv2.resize(square, (112, 112), interpolation=cv2.INTER_AREA))
    return np.stack(out)


def _diff(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    d = np.abs(a.astype(np.int16) - b.astype(np.int16))
    return float(d.mean()), float(np.percentile(d, 99)), float(d.max())


def fidelity_rows(files: list[Path], root: Path) -> list[dict]:
    """One dict per JPEG-baseline file that decoded at a reduced scale."""
    from echocmr.model_runner import load_view_model, predict_clips
    from echocmr.targets import output_kind

    model = load_view_model(root / "checkpoints" / "default" / "A4C")
    binary = [i for i, name in enumerate(model.outputs) if output_kind(name) == "binary"]
    rows = []
    for path in files:
        exact = read_clip(path, limits=IngestLimits())
        reduced = read_clip(path, limits=IngestLimits(jpeg_decode="reduced"))
        if reduced.decode_scale == 1:
            continue
        area = area_reference(path, exact)
        probs = predict_clips(model, [exact.frames, reduced.frames], n_clips=2)[:, binary]
        rows.append({"scale": reduced.decode_scale, "vs_exact": _diff(reduced.frames, exact.frames),
                     "exact_vs_area": _diff(exact.frames, area), "reduced_vs_area": _diff(reduced.frames, area),
                     "model_dp": float(np.abs(probs[0] - probs[1]).max())})
    return rows


def print_fidelity(rows: list[dict]) -> None:
    """A table per decode scale; grey levels 0-255."""
    print(f"\n{'scale':>5s} {'files':>5s} {'reduced vs exact':>22s} {'exact vs area':>20s} "
          f"{'reduced vs area':>20s} {'A4C max |dp|':>13s}")
    print(f"{'':11s} {'mean / p99 / max':>22s} {'mean / p99 / max':>20s} {'mean / p99 / max':>20s}")
    for scale in sorted({r["scale"] for r in rows}):
        group = [r for r in rows if r["scale"] == scale]

        def cell(key: str, group: list[dict] = group) -> str:
            v = np.array([r[key] for r in group])
            return f"{v[:, 0].mean():.2f} / {v[:, 1].mean():.0f} / {v[:, 2].max():.0f}"

        dp = max(r["model_dp"] for r in group)
        print(f"  1/{scale} {len(group):5d} {cell('vs_exact'):>22s} {cell('exact_vs_area'):>20s} "
              f"{cell('reduced_vs_area'):>20s} {dp:13.4f}")
    print("(grey levels on the 112×112 clip, mean over files of mean and p99, max of max; area: full decode + "
          "INTER_AREA resize; |dp|: the shipped A4C model's binary probabilities, exact vs reduced clip)")
