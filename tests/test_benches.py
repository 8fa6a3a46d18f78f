"""The benchmarks `make bench` runs stay runnable (tiny settings; their figures are not checked here)."""

from __future__ import annotations

import importlib.util
import re
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


@pytest.mark.slow
def test_localisation_bench_prints_its_ratio_last(capsys):
    assert _load("attribution_localisation").main(["--clips", "1", "--steps", "1", "--control"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert any(line.startswith("paired difference") for line in lines)
    assert re.fullmatch(r"ratio: -?[\d.]+ \[-?[\d.]+, -?[\d.]+\]|ratio: nan \[nan, nan\]", lines[-1]), lines[-1]


@pytest.mark.slow
def test_localisation_bench_positive_control_scores_each_method_on_the_taught_copy(capsys):
    args = ["--clips", "1", "--steps", "1", "--views", "A2C", "--positive-control", "--control-clips", "2",
            "--control-epochs", "1", "--methods", "score-map,integrated-gradients"]
    assert _load("attribution_localisation").main(args) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("positive control A2C: epoch 1/1 loss ")
    headers = [line for line in lines if line.startswith("bundle: ")]
    assert len(headers) == 2 and all("(positive control: fine-tuned copies)" in h and "views A2C" in h for h in headers)
    assert "score-map" in headers[0] and "integrated-gradients" in headers[1]
    assert re.fullmatch(r"ratio: -?[\d.]+ \[-?[\d.]+, -?[\d.]+\]|ratio: nan \[nan, nan\]", lines[-1]), lines[-1]


def test_localisation_bench_refuses_an_unknown_method_before_any_work():
    from echocmr.errors import ConfigError

    with pytest.raises(ConfigError, match="attribution method must be one of"):
        _load("attribution_localisation").main(["--methods", "integrated-gradients,saliency"])


@pytest.mark.slow
def test_attribution_cpu_bench_prints_seconds_last(capsys):
    assert _load("attribution_cpu").main(["--repeats", "1", "--steps", "1"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("seconds: ") and float(last.split()[1]) > 0
