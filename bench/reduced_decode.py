"""Measurement: libjpeg's reduced-scale (DCT-domain) decode vs full decode + cubic resize.

For JPEG-baseline DICOM cines, each frame is decoded at 1/1, 1/2, 1/4 and 1/8 scale (OpenCV's
IMREAD_REDUCED_* modes) wherever the sector's bounding square still has >= 112 px at that scale;
the sector geometry is scaled by the same factor and the frame goes through the same crop plan
(overlays zeroed, fan masked, cubic resize to 112). Reported per scale: decode + crop ms per
frame (one thread), the pixel difference from the exact clip (``read_clip``: full decode + cubic
resize; grey levels, mean / 99th percentile / max) and the shipped model's A4C outputs on both
clips (largest absolute difference of any binary output's probability). Scale 1/1 must match ``read_clip`` exactly.

This per-scale sweep (every eligible scale, decode + crop only) preceded the adopted option:
``IngestLimits(jpeg_decode="reduced")`` (``echocmr.ingest.reduced``; ``echocmr prepare``'s
default) picks the largest eligible scale, and ``bench/ingest.py`` measures that end to end.
The last line is ``reduced_decode_speedup: <x>``: ms/frame at full scale over the smallest scale
that was eligible on every file.
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import cv2  # noqa: E402
import dicom_factory as factory  # noqa: E402
import numpy as np  # noqa: E402

from echocmr.clip import SectorGeometry  # noqa: E402
from echocmr.config import IngestLimits  # noqa: E402
from echocmr.ingest import read_clip  # noqa: E402
from echocmr.ingest.dicom import DicomSource  # noqa: E402
from echocmr.ingest.resize import CropPlan  # noqa: E402

FLAGS = {1: (cv2.IMREAD_COLOR, cv2.IMREAD_GRAYSCALE),
         2: (cv2.IMREAD_REDUCED_COLOR_2, cv2.IMREAD_REDUCED_GRAYSCALE_2),
         4: (cv2.IMREAD_REDUCED_COLOR_4, cv2.IMREAD_REDUCED_GRAYSCALE_4),
         8: (cv2.IMREAD_REDUCED_COLOR_8, cv2.IMREAD_REDUCED_GRAYSCALE_8)}


def scaled(geom: SectorGeometry, k: int, shape: tuple[int, int]) -> SectorGeometry:
    """The sector in a frame decoded at 1/k (libjpeg rounds the size up)."""
    x0, y0, x1, y1 = geom.bbox
    h, w = -(-shape[0] // k), -(-shape[1] // k)
    box = (x0 // k, y0 // k, min(-(-x1 // k), w), min(-(-y1 // k), h))
    apex = ((geom.apex[0] + 0.5) / k - 0.5, (geom.apex[1] + 0.5) / k - 0.5)
    return dataclasses.replace(geom, bbox=box, apex=apex, radius=geom.radius / k)


def reduced_clip(path: Path, geom: SectorGeometry, k: int) -> tuple[np.ndarray, float]:
    """(frames uint8 (T, 112, 112), ms per frame) decoding at 1/k."""
    with DicomSource(path.read_bytes(), IngestLimits()) as src:
        if not src.fast:
            raise ValueError("not a JPEG-baseline file")
        fragments, colour, shape = src._fragments, src.colour_order, src.shape  # noqa: SLF001 - a measurement
        photometric = src.h.photometric
    plan = CropPlan.build(scaled(geom, k, shape) if k > 1 else geom, 112, colour)
    flag = FLAGS[k][0 if colour else 1]
    t0 = time.perf_counter()
    out = []
    for buf in fragments:
        img = cv2.imdecode(np.frombuffer(buf, np.uint8), flag)
        out.append(plan.apply(255 - img if photometric == "MONOCHROME1" else img))
    return np.stack(out), 1000 * (time.perf_counter() - t0) / len(fragments)


def workloads(tmp: Path) -> list[Path]:
    scene = factory.make_scene(600, 800, 60, seed=1)
    files = [factory.write_dicom(tmp / "cine.dcm", scene, syntax="jpeg_baseline", photometric="YBR_FULL_422")]
    from echocmr.config import SynthConfig
    from echocmr.synth import generate_cohort

    config = dataclasses.replace(SynthConfig.small(), n_patients=2, native_size=SynthConfig().native_size,
                                 uncompressed_fraction=0.0)
    generate_cohort(config, tmp / "cohort")
    return files + sorted((tmp / "cohort" / "dicom").rglob("*.dcm"))[:6]


def main() -> int:
    from echocmr.model_runner import load_view_model, predict_clips

    cv2.setNumThreads(1)
    from echocmr.targets import output_kind

    model = load_view_model(ROOT / "checkpoints" / "default" / "A4C")
    binary = [i for i, name in enumerate(model.outputs) if output_kind(name) == "binary"]
    rows: dict[int, list[tuple[float, float, float, float, float]]] = {k: [] for k in FLAGS}
    eligible_everywhere = set(FLAGS)
    with tempfile.TemporaryDirectory(prefix="echocmr-reduced-") as d:
        for path in workloads(Path(d)):
            exact = read_clip(path, limits=IngestLimits(decode_threads=1))
            side = max(exact.sector.bbox[2] - exact.sector.bbox[0], exact.sector.bbox[3] - exact.sector.bbox[1])
            eligible = {k for k in FLAGS if side // k >= 112}
            eligible_everywhere &= eligible
            reference = predict_clips(model, [exact.frames], n_clips=2)
            for k in sorted(eligible):
                frames, ms = reduced_clip(path, exact.sector, k)
                diff = np.abs(frames.astype(np.int16) - exact.frames.astype(np.int16))
                outputs = predict_clips(model, [frames], n_clips=2)
                rows[k].append((ms, float(diff.mean()), float(np.percentile(diff, 99)), float(diff.max()),
                                float(np.abs(outputs - reference)[:, binary].max())))
    print(f"{'scale':>5s} {'files':>5s} {'ms/frame':>9s} {'mean |d|':>9s} {'p99 |d|':>8s} {'max |d|':>8s} "
          f"{'model max |dp|':>14s}")
    for k, values in rows.items():
        if values:
            v = np.array(values)
            print(f"  1/{k} {len(v):5d} {v[:, 0].mean():9.2f} {v[:, 1].mean():9.2f} {v[:, 2].mean():8.1f} "
                  f"{v[:, 3].max():8.0f} {v[:, 4].max():14.4f}")
    smallest = max(eligible_everywhere)
    full = np.mean([r[0] for r in rows[1]])
    print("(|d|: grey levels 0-255 vs read_clip; |dp|: the shipped A4C model's probabilities, binary outputs)")
    print(f"reduced_decode_speedup: {full / np.mean([r[0] for r in rows[smallest]]):.2f} (1/{smallest})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
