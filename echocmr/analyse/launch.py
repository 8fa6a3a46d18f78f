"""Launch the analyses in the background from the dashboard (processes, as for training runs).

A run's analyses write into ``RUN/results/analyses`` (where the Results page looks); the power
grid is not tied to a model and writes into ``$ECHOCMR_HOME/analyses/power``. Each launch is a
``echocmr analyse …`` command under :func:`echocmr.processes.launch_job`, so it survives the page,
can be stopped, and resumes its finished cells when launched again.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from . import AnalysisError

RUN_ANALYSES = ("confounders", "learning-curve")


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "echocmr.cli", *args]


def _run_data(run_dir: Path) -> str:
    config = run_dir / "config.json"
    data = json.loads(config.read_text(encoding="utf-8")).get("data") if config.is_file() else None
    if not data:
        raise AnalysisError("no_data", f"run {run_dir.name} does not say which prepared data set it used")
    return str(data)


def analysis_log(run_dir, kind: str) -> Path:
    return Path(run_dir) / f"analysis-{kind}.log"


def analysis_command(run_dir, kind: str) -> list[str]:
    """The ``echocmr analyse`` command of ``kind`` for a run (evaluated: ``RUN/results``)."""
    run_dir = Path(run_dir)
    results, data = run_dir / "results", _run_data(run_dir)
    if kind == "confounders":
        return _cli("analyse", "confounders", "--run", str(results), "--data", data, "--out", str(results / "analyses"))
    if kind == "learning-curve":
        return _cli("analyse", "learning-curve", "--data", data, "--out", str(results / "analyses"),
                    "--work", str(run_dir / "analysis-work"))
    raise AnalysisError("unknown_analysis", f"unknown analysis {kind!r}; known: {', '.join(RUN_ANALYSES)}")


def start_analysis(run_dir, kind: str):
    """Start ``kind`` for an evaluated run in the background; returns the processes.Job."""
    from ..processes import launch_job

    if not (Path(run_dir) / "results" / "predictions.csv").is_file():
        raise AnalysisError("not_evaluated", "evaluate the run first: the analyses read its held-out results")
    return launch_job(analysis_command(run_dir, kind), analysis_log(run_dir, kind), kind=f"analyse-{kind}")


def power_folder(home) -> Path:
    return Path(home) / "analyses" / "power"


def start_power(home, signals: list[float], sizes: list[int]):
    """The power grid in the background, into ``home/analyses/power``."""
    from ..processes import launch_job

    out = power_folder(home)
    command = _cli("analyse", "power", "--signal", ",".join(f"{s:g}" for s in signals),
                   "--patients", ",".join(str(n) for n in sizes), "--out", str(out))
    return launch_job(command, out.parent / "power.log", kind="analyse-power")


def cells_done(folder) -> int:
    """Finished cells of a learning-curve / power grid (its progress)."""
    cells = Path(folder) / "cells"
    return len(list(cells.glob("*.json"))) if cells.is_dir() else 0
