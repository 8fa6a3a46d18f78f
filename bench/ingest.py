"""Benchmark: DICOM → 112×112 clip, ``read_clip`` vs the naive path, best of 3, one run.

Naive path: ``pydicom.dcmread(f).pixel_array`` (all frames decoded and colour-converted at full
size), then per frame ``cv2.cvtColor`` to grey and ``cv2.resize`` to 112×112 (cubic).
``read_clip`` runs with both JPEG recipes (``echocmr.ingest.reduced``): ``exact`` (full-resolution
decode; ``read_clip``'s default, the shipped and published models' recipe) and ``reduced``
(libjpeg's DCT-domain 1/2-1/8 decode; ``echocmr prepare``'s default).
Workloads: a realistic 120-frame 600×800 JPEG-baseline YBR_FULL_422 cine built by the test
factory, and a synthetic cohort at scanner size (480×640, mostly JPEG baseline).

Then, on every JPEG-baseline file: the reduced clip's pixel difference from the exact clip and
from an anti-aliased reference (full decode + INTER_AREA resize), in grey levels (mean / p99 /
max), and the shipped A4C model's outputs on the exact vs the reduced clip (largest absolute
difference of a binary output's probability, 2 test-time windows).
The last line printed is ``speedup: <ratio>`` (total naive time / total reduced ``read_clip``
time; goal >= 25).
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
import dicom_factory as factory  # noqa: E402
import numpy as np  # noqa: E402
import pydicom  # noqa: E402

from echocmr.config import IngestLimits  # noqa: E402
from echocmr.ingest import read_clip  # noqa: E402

EXACT = IngestLimits()
REDUCED = IngestLimits(jpeg_decode="reduced")


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
    config = dataclasses.replace(SynthConfig.small(), n_patients=3, native_size=SynthConfig().native_size,
                                 uncompressed_fraction=0.0)
    generate_cohort(config, tmp / "cohort")
    files = sorted((tmp / "cohort" / "dicom").rglob("*.dcm"))
    loads[f"synthetic cohort, 480×640 ({len(files)} files)"] = files
    return loads


def read_exact(path: Path):
    return read_clip(path, limits=EXACT)


def read_reduced(path: Path):
    return read_clip(path, limits=REDUCED)


def main() -> int:
    from fidelity import fidelity_rows, print_fidelity

    with tempfile.TemporaryDirectory(prefix="echocmr-bench-") as d:
        loads = workloads(Path(d))
        read_clip(next(iter(loads.values()))[0])  # warm imports and codecs
        rows, totals = [], np.zeros(3)
        for name, files in loads.items():
            times = np.array([best_of(naive, files), best_of(read_exact, files), best_of(read_reduced, files)])
            totals += times
            rows.append((name, times))
        fidelity = fidelity_rows([f for files in loads.values() for f in files], ROOT)
    print(f"{'workload':44s} {'naive s':>8s} {'exact s':>8s} {'reduced s':>9s} {'exact':>7s} {'reduced':>8s}")
    for name, (base, exact, reduced) in rows:
        print(f"{name:44s} {base:8.3f} {exact:8.3f} {reduced:9.3f} {base / exact:6.1f}x {base / reduced:7.1f}x")
    print_fidelity(fidelity)
    print(f"speedup exact: {totals[0] / totals[1]:.1f}")
    print(f"speedup: {totals[0] / totals[2]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
