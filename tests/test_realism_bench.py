"""bench/realism.py runs end to end on the real pydicom cine and prints its verdict last."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "realism.py"


def _bench():
    spec = importlib.util.spec_from_file_location("realism_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_real_cine_regions_and_statistics():
    bench = _bench()
    stats = bench.real_stats(bench.REAL_FILES["A4C"]).summary()
    # The hand-set polygons sit on myocardium brighter than the LV cavity, as on the scanner.
    assert 1.5 < stats["contrast"] < 15
    assert stats["p5"] <= stats["p50"] <= stats["p95"] and 0 < stats["bright_pct"] < 5
    ranges = bench.real_range(bench.real_stats(bench.REAL_FILES["A4C"]))
    assert all(lo < hi for lo, hi in ranges.values())


@pytest.mark.slow
def test_bench_prints_every_statistic_and_the_verdict_last(capsys, tmp_path):
    bench = _bench()
    assert bench.main(["--clips", "1", "--picture", str(tmp_path / "p.png")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    k, n = map(int, re.fullmatch(r"within_real_range: (\d+)/(\d+)", lines[-1]).groups())
    assert n == 3 * 11 and 0 <= k <= n
    assert sum(line.strip().startswith("contrast") for line in lines) == 3
    import cv2

    assert cv2.imread(str(tmp_path / "p.png")).shape[1] > 4 * 224 and np.isfinite(k)
