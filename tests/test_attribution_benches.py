"""The attribution benches stay runnable (tiny settings; their figures are not checked here)."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
pytestmark = pytest.mark.slow


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_localisation_bench_prints_its_ratio_last(capsys):
    assert _load("attribution_localisation").main(["--clips", "1", "--steps", "1", "--control"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert any(line.startswith("paired difference") for line in lines)
    assert re.fullmatch(r"ratio: -?[\d.]+ \[-?[\d.]+, -?[\d.]+\]|ratio: nan \[nan, nan\]", lines[-1]), lines[-1]


def test_cpu_bench_prints_seconds_last(capsys):
    assert _load("attribution_cpu").main(["--repeats", "1", "--steps", "1"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("seconds: ") and float(last.split()[1]) > 0
