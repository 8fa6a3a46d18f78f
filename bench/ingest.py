"""Benchmark: DICOM → 112×112 clip, ``read_clip`` vs the naive path, best of 3, one run.

Naive path: ``pydicom.dcmread(f).pixel_array`` (all frames decoded and colour-converted at full
size), then per frame ``cv2.cvtColor`` to grey and ``cv2.resize`` to 112×112 (cubic).
Workloads: a realistic 120-frame 600×800 JPEG-baseline YBR_FULL_422 cine built by the test
factory, and the synthetic cohort when ``echocmr.synth`` is available.
The last line printed is ``speedup: <ratio>`` (total naive time / total read_clip time).
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pydicom  # noqa: E402

import dicom_factory as factory  # noqa: E402
from echocmr.ingest import read_clip  # noqa: E402


def naive(path: Path) -> np.ndarray:
    """uint8 (T, 112, 112) the straightforward way."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path)
        arr = ds.pixel_array
    if int(ds.get("NumberOfFrames", 1) or 1) == 1:
        arr = arr[None]
    out = []
    for frame in arr:
        grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) if frame.ndim == 3 else frame
        out.append(cv2.resize(grey, (112, 112), interpolation=cv2.INTER_CUBIC))
    return np.stack(out)


def best_of(fn, files: list[Path], repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for f in files:
            fn(f)
        times.append(time.perf_counter() - t0)
    return min(times)


def workloads(tmp: Path) -> dict[str, list[Path]]:
    scene = factory.make_scene(600, 800, 120, seed=1)
    cine = factory.write_dicom(tmp / "cine.dcm", scene, syntax="jpeg_baseline", photometric="YBR_FULL_422")
    loads = {"cine 120×600×800 JPEG YBR_FULL_422": [cine]}
    from echocmr.config import SynthConfig
    from echocmr.synth import generate_cohort

    # Scanner-sized frames (SynthConfig's default 480×640), not the tiny test preset's 192×256:
    # the benchmark is about the files a hospital exports.
    config = dataclasses.replace(SynthConfig.small(), n_patients=3, native_size=SynthConfig().native_size)
    generate_cohort(config, tmp / "cohort")
    files = sorted((tmp / "cohort" / "dicom").rglob("*.dcm"))
    loads[f"synthetic cohort, 480×640 ({len(files)} files)"] = files
    return loads


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="echocmr-bench-") as d:
        loads = workloads(Path(d))
        read_clip(next(iter(loads.values()))[0])  # warm imports and codecs
        rows, total_ours, total_naive = [], 0.0, 0.0
        for name, files in loads.items():
            ours = best_of(read_clip, files)
            base = best_of(naive, files)
            total_ours += ours
            total_naive += base
            rows.append((name, base, ours))
    print(f"{'workload':44s} {'naive s':>9s} {'read_clip s':>12s} {'speedup':>8s}")
    for name, base, ours in rows:
        print(f"{name:44s} {base:9.3f} {ours:12.3f} {base / ours:7.1f}x")
    print(f"speedup: {total_naive / total_ours:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
