"""Glue between the analyses and their files: run one, write its JSON atomically, read it back.

Each analysis writes ``<name>.json`` = {"kind", "created", "synthetic", "inputs", "rows": [...], …}
into an analysis folder; the dashboard and README figures read only these files.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from ..atomic import atomic_write_json, atomic_write_text
from . import AnalysisError
from . import compare as C

MAX_ANALYSIS_JSON_BYTES = 16 * 1024 * 1024
ANALYSIS_KINDS = ("comparison", "confounders", "learning_curve", "power")


def _level() -> float:
    from ..config import EvalConfig

    return EvalConfig().ci_level


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _synthetic(results: Path) -> bool | None:
    summary = results / "summary.json"
    if summary.is_file() and summary.stat().st_size < 1 << 20:
        return json.loads(summary.read_text(encoding="utf-8")).get("synthetic")
    return None


def write_analysis(out: Path, name: str, record: dict, frame=None) -> Path:
    """Write ``out/<name>.json`` (and ``<name>.csv`` of ``frame``) atomically."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if frame is not None:
        atomic_write_text(out / f"{name}.csv", frame.to_csv(index=False))
    return atomic_write_json(out / f"{name}.json", _jsonable(record))


def _jsonable(obj):
    import math

    if isinstance(obj, float):
        return None if math.isnan(obj) or math.isinf(obj) else obj
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "item"):  # numpy scalars
        return _jsonable(obj.item())
    return obj


def read_analysis(path) -> dict:
    """One analysis JSON (bounded, kind checked); JSON nulls stay None."""
    p = Path(path)
    if not p.is_file():
        raise AnalysisError("no_analysis", f"no analysis file {p.name!r}")
    if p.stat().st_size > MAX_ANALYSIS_JSON_BYTES:
        raise AnalysisError("too_large", f"analysis file over {MAX_ANALYSIS_JSON_BYTES >> 20} MiB")
    data = json.loads(p.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or data.get("kind") not in ANALYSIS_KINDS or not isinstance(data.get("rows"), list):
        raise AnalysisError("bad_analysis", f"{p.name!r} is not an EchoCMR analysis file")
    return data


def list_analyses(folder) -> dict[str, Path]:
    """``{name: path}`` of the analysis files in ``folder`` (empty when there is none)."""
    f = Path(folder)
    return {p.stem: p for p in sorted(f.glob("*.json"))} if f.is_dir() else {}


def run_comparison(run_a, run_b=None, view: str = "global", n_bootstrap: int = 2000, seed: int = 0,
                   out=None) -> dict:
    """``echocmr compare`` as a function: returns the record (and writes it when ``out``).
    Intervals at EvalConfig's level (95 %)."""
    level = _level()
    results_a = C.results_dir(run_a)
    pred_a = C.read_predictions(results_a)
    boot: dict[str, Any] = {"n_bootstrap": n_bootstrap, "seed": seed, "level": level}
    if run_b is None:
        rows = C.compare_views(pred_a, **boot)
        name, title = "compare_views", "Each view (A) vs fused (B)"
    else:
        rows = C.compare_bundles(pred_a, C.read_predictions(run_b), ("A", "B"), view=view, **boot)
        name, title = "compare_runs", f"Run A vs run B, {view} predictions"
    synthetic = _synthetic(results_a)
    title += (f" — held-out test set ({'synthetic' if synthetic else 'real' if synthetic is False else 'unknown'}"
              f" data); ΔAUROC = A − B, {level * 100:g}% patient-bootstrap percentile CI "
              f"({n_bootstrap} resamples), DeLong p with studies as units")
    frame = C.comparison_frame(rows)
    record = {"kind": "comparison", "name": name, "title": title, "created": _now(), "synthetic": synthetic,
              "inputs": {"a": Path(run_a).name, "b": Path(run_b).name if run_b else None, "view": view},
              "ci_level": level, "n_bootstrap": n_bootstrap, "seed": seed,
              "rows": frame.to_dict(orient="records")}
    record = _jsonable(record)
    if out is not None:
        write_analysis(Path(out), name, record, frame)
    return {**record, "table": C.format_comparisons(rows, level)}


def run_confounders(run, prepared=None, demo: tuple[int, int] | None = None, n_bootstrap: int = 500,
                    seed: int = 0, out=None) -> dict:
    """``echocmr analyse confounders`` as a function. Covariates come from ``prepared`` (its
    manifest) or, for the shipped model, ``demo`` = (n_patients, seed) of the demo cohort."""
    from ..targets import BINARY_TARGETS, GLOBAL_TARGETS
    from . import confounders as K
    from .covariates import covariates_from_manifest, demo_covariates, study_frame

    level = _level()
    if (prepared is None) == (demo is None):
        raise AnalysisError("bad_arguments", "give the prepared dataset (--data) or --demo-cohort, not both")
    results = C.results_dir(run)
    if prepared is not None:
        covariates = covariates_from_manifest(prepared)
    else:
        assert demo is not None  # checked above: exactly one of the two is given
        covariates = demo_covariates(*demo)
    if covariates["lvef_pct"].isna().all():
        raise AnalysisError("no_lvef", "the CMR reports of this dataset have no lvef_pct column: "
                                       "re-run echocmr prepare on reports that have one")
    frame = study_frame(C.read_predictions(results), covariates)
    targets = [t for t in BINARY_TARGETS if t in GLOBAL_TARGETS]
    strata, increments = K.confounder_analysis(frame, targets, n_bootstrap, seed)
    synthetic = _synthetic(results)
    data = "synthetic" if synthetic else "real" if synthetic is False else "unknown"
    record = {
        "kind": "confounders", "name": "confounders", "created": _now(), "synthetic": synthetic,
        "title": (f"Fused model on the held-out test set ({data} data, {frame['study'].nunique()} studies); "
                  f"{level * 100:g}% patient-bootstrap percentile CIs ({n_bootstrap} resamples); "
                  "incremental value: nested logistic regressions fitted on the test studies, "
                  "likelihood-ratio test of the echo logit, ΔAUROC refitted on every resample"),
        "inputs": {"run": Path(run).name, "covariates": "prepared manifest" if prepared is not None else "demo cohort"},
        "ci_level": level, "n_bootstrap": n_bootstrap, "seed": seed,
        "rows": K.as_frame(strata).to_dict(orient="records"),
        "incremental": K.as_frame(increments).to_dict(orient="records"),
    }
    record = _jsonable(record)
    if out is not None:
        write_analysis(Path(out), "confounders", record)
    return record


def _num(x) -> str:
    return "—" if x is None else f"{x:.3f}"


def format_confounders(record: dict) -> str:
    """Both confounder tables as text."""
    lines = [record["title"], "", f"{'target':<14}{'stratum':<16}{'n':>5}{'pos':>5}  AUROC (CI)"]
    for r in record["rows"]:
        ci = "" if r["ci_low"] is None else f" ({r['ci_low']:.3f}–{r['ci_high']:.3f})"
        auc = "—" if r["auroc"] is None else f"{r['auroc']:.3f}"
        lines.append(f"{r['target']:<14}{r['stratum']:<16}{r['n_studies']:>5}{r['n_positive']:>5}  {auc}{ci} {r['note']}")
    lines += ["", "AUROC of the covariate model without / with the echo logit: in-sample, and [5-fold "
                  "cross-validated by patient]", f"{'target':<14}{'echo model added to':<30}{'AUROC cov':>10}{'+echo':>8}  "
                  f"{'ΔAUROC (CI)':<28}{'LR χ²':>8}{'p':>9}  {'[CV cov, +echo]'}"]
    for r in record["incremental"]:
        ci = "" if r["ci_low"] is None else f" ({r['ci_low']:+.3f} to {r['ci_high']:+.3f})"
        lines.append(f"{r['target']:<14}{r['covariates']:<30}{r['auroc_covariates']:>10.3f}{r['auroc_combined']:>8.3f}  "
                     f"{r['delta']:+.3f}{ci:<22}{r['lr_statistic']:>8.2f}{r['lr_p']:>9.3g}  "
                     f"[{_num(r['auroc_covariates_cv'])}, {_num(r['auroc_combined_cv'])}]")
    return "\n".join(lines)


def _curve_title(kind: str, config) -> str:
    from ..config import EvalConfig

    return (f"{kind}: held-out test AUROC of the fused {'+'.join(config.views)} model with "
            f"{EvalConfig().ci_level * 100:g}% patient-bootstrap percentile CIs ({config.n_bootstrap} resamples); "
            f"{config.preset} preset, synthetic data")


def run_learning_curve(prepared, out, fractions, config, work=None) -> dict:
    """``echocmr analyse learning-curve`` as a function: cells, then ``learning_curve.json``."""
    from dataclasses import asdict

    from ..prepared import read_prepare_json
    from .curves import learning_curve, long_rows

    records = learning_curve(prepared, out, fractions, config, work)
    frame = long_rows(records, ("fraction", "n_train_patients"))
    synthetic = read_prepare_json(Path(prepared)).get("synthetic")
    title = _curve_title("Learning curve", config)
    if not synthetic:
        title = title.replace("synthetic data", "real data" if synthetic is False else "data of unknown origin")
    record = {"kind": "learning_curve", "name": "learning_curve", "created": _now(), "synthetic": synthetic,
              "title": title, "inputs": {"data": Path(prepared).name, "fractions": sorted(fractions)},
              "config": asdict(config), "rows": frame.to_dict(orient="records")}
    write_analysis(Path(out), "learning_curve", record, frame)
    return _jsonable(record)


def run_power(out, signals, sizes, config, target: str = "t1_abnormal", work=None) -> dict:
    """``echocmr analyse power`` as a function: cells, then ``power.json`` with the smallest
    detected signal per cohort size."""
    from dataclasses import asdict

    from .curves import long_rows, power_grid, smallest_detected

    records = power_grid(out, signals, sizes, config, work)
    frame = long_rows(records, ("n_patients", "signal"))
    smallest = smallest_detected(frame, target) if not frame.empty else {}
    record = {"kind": "power", "name": "power", "created": _now(), "synthetic": True,
              "title": _curve_title("Detectable tissue signal", config) + (
                  f"; detected = the {target} AUROC interval lies above 0.5"),
              "inputs": {"signals": sorted(signals), "sizes": sorted(sizes), "target": target},
              "config": asdict(config), "smallest_detected": {str(k): v for k, v in smallest.items()},
              "rows": frame.to_dict(orient="records")}
    write_analysis(Path(out), "power", record, frame)
    return _jsonable(record)
