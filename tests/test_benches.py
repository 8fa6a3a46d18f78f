"""The benchmarks `make bench` runs stay runnable (tiny settings; their figures are not checked here)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_gpu_throughput_runs_on_cpu_with_tiny_settings(capsys):
    assert _load("gpu_throughput").main(["--device", "cpu", "--tiny", "--no-compile"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert any(line.startswith("infer bf16") for line in lines)
    assert lines[-1].startswith("train_clips_per_s: ") and float(lines[-1].split()[1]) > 0
