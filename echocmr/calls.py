"""Calls: when a finding may be called positive/negative, and how good the call is.

* **One convention**: a score (probability or value) is called positive when it is **at or above**
  the threshold — :func:`echocmr.metrics.is_positive`, used by the metrics, the operating points
  and the predictions alike.
* **Only where there is signal**: a target is called only if the held-out test evidence supports
  a signal — binary: the fused AUROC's lower confidence bound is above 0.5; continuous: the fused
  R²'s lower bound is above 0. A target whose interval was withheld (too few patients) or whose
  bound does not clear the line shows its value marked :data:`NOT_CALLED`.
* **Operating point**: binary targets — the Youden-J threshold on the validation split; on the
  test split sensitivity, specificity, PPV and NPV at that threshold, each with a bootstrap
  interval over the same resamples as the rest of the results (withheld, with the reason, when
  fewer than ``min_units`` patients are in its denominator). Continuous targets — the clinical
  cut-off (``targets.TARGETS_BY_NAME[t].abnormal_above``).
"""

from __future__ import annotations

import math

import numpy as np

from .bootstrap_ci import IntervalSpec, estimate, format_interval
from .metrics import is_positive
from .targets import TARGETS_BY_NAME

NOT_CALLED = "no reliable signal in held-out data — not called"
RATES = {  # name: (denominator: which items, numerator within it)
    "sensitivity": ("with the finding", "called positive"),
    "specificity": ("without the finding", "called negative"),
    "ppv": ("called positive", "with the finding"),
    "npv": ("called negative", "without the finding"),
}


def signal_evidence(record) -> tuple[bool, str]:
    """Is there held-out signal? ``record``: the fused AUROC (binary) or R² (continuous)
    MetricRecord of a target (None: not evaluated). Returns (supported, why)."""
    if record is None or not math.isfinite(record.value):
        return False, "not evaluated on held-out data"
    line = 0.5 if record.metric == "auroc" else 0.0
    name = "AUROC" if record.metric == "auroc" else "R²"
    if not (math.isfinite(record.ci_low) and math.isfinite(record.ci_high)):
        return False, f"{name} {record.value:.3f} has no interval ({record.note or 'undefined'})"
    shown = f"{name} {record.value:.3f} ({format_interval(record.ci_low, record.ci_high)})"
    if record.ci_low > line:
        return True, f"{shown}: lower bound above {line:g}"
    return False, f"{shown}: lower bound not above {line:g}"


def _masks(y: np.ndarray, called: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    pos = y > 0.5
    return {"sensitivity": (pos, called), "specificity": (~pos, ~called),
            "ppv": (called, pos), "npv": (~called, ~pos)}


def _rate_samples(den: np.ndarray, num: np.ndarray, counts: np.ndarray) -> np.ndarray:
    c = np.asarray(counts, dtype=np.float64)
    d = c @ den.astype(np.float64)
    n = c @ (den & num).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(d > 0, n / np.where(d > 0, d, 1.0), np.nan)


def rates_with_intervals(y: np.ndarray, score: np.ndarray, threshold: float, counts: np.ndarray,
                         units: np.ndarray, spec: IntervalSpec, min_units: int) -> dict[str, dict]:
    """Sensitivity, specificity, PPV, NPV at ``threshold`` with bootstrap intervals.

    y, score, units ``(n,)``; counts ``(B, n)``. Each rate: ``{value, ci_low, ci_high, n, n_units,
    note}`` — ``n`` studies and ``n_units`` resampling units in its denominator; fewer than
    ``min_units`` units → no interval, and ``note`` says why.
    """
    called = is_positive(score, threshold)
    out = {}
    for name, (den, num) in _masks(y, called).items():
        n_units = int(np.unique(units[den]).size)
        value = float((den & num).sum() / den.sum()) if den.any() else math.nan
        note = ""
        if n_units < min_units:
            note = f"interval withheld: {n_units} {_unit_word(units, n_units)} {RATES[name][0]} (minimum {min_units})"
            est_low = est_high = math.nan
        else:
            est = estimate(value, lambda c, d=den, m=num: _rate_samples(d, m, c), counts, spec, units)
            est_low, est_high = est.low, est.high
            if value in (0.0, 1.0):  # every resample agrees: the bootstrap interval collapses to a point
                est_low, est_high = _exact_bound(value, n_units, spec.level)
                note = f"exact (Clopper–Pearson) bound over {n_units} {_unit_word(units, n_units)}"
        out[name] = {"value": value, "ci_low": est_low, "ci_high": est_high, "n": int(den.sum()),
                     "n_units": n_units, "note": note}
    return out


def _exact_bound(value: float, n: int, level: float) -> tuple[float, float]:
    """Clopper–Pearson interval of a rate of 0 or 1 observed in ``n`` independent units."""
    alpha = (1.0 - level) / 2.0
    bound = alpha ** (1.0 / n)  # the beta quantile at 0 or n successes in closed form
    return (bound, 1.0) if value == 1.0 else (0.0, 1.0 - bound)


def _unit_word(units: np.ndarray, count: int) -> str:
    study = units.size and str(units[0]).startswith("study:")
    word = "study" if study else "patient"
    return word if count == 1 else ("studies" if study else "patients")


def continuous_point(target: str, evidence) -> dict:
    """The call rule of a continuous target: its clinical cut-off and whether it is called."""
    called, why = signal_evidence(evidence)
    return {"kind": "continuous", "threshold": TARGETS_BY_NAME[target].abnormal_above,
            "called": called, "evidence": why}


def operating_points(allpred, records, counts, units, position, spec: IntervalSpec, min_units: int,
                     split: str = "test", threshold_split: str = "val") -> dict:
    """Every fused ("global") target's call rule: binary — Youden-J threshold on
    ``threshold_split``, the rates on ``split`` with intervals; continuous — the clinical cut-off.
    Both say whether the target is called (:func:`signal_evidence`).

    allpred: long predictions of both splits; records: the split's MetricRecords; counts ``(B,
    n)`` and units ``(n,)`` over the split's studies, ``position``: study → column.
    """
    from .metrics import youden_threshold
    from .targets import GLOBAL, GLOBAL_TARGETS

    found = {(r.target, r.metric): r for r in records if r.view == GLOBAL}
    fused = allpred[allpred["view"] == GLOBAL].dropna(subset=["y_true", "y_pred"])
    out = {}
    for t in GLOBAL_TARGETS:
        cell = fused[fused["target"] == t]
        if cell.empty:
            continue
        if TARGETS_BY_NAME[t].kind == "continuous":
            out[t] = continuous_point(t, found.get((t, "r2")))
            continue
        val, test = cell[cell["split"] == threshold_split], cell[cell["split"] == split]
        thr = youden_threshold(val["y_true"].to_numpy(), val["y_pred"].to_numpy()) if len(val) else math.nan
        called, why = signal_evidence(found.get((t, "auroc")))
        point = {"kind": "binary", "threshold": thr, "called": called, "evidence": why,
                 "n_val": len(val), "n_test": len(test)}
        if math.isnan(thr) or test.empty:
            point.update({name: _undefined("no threshold or no test studies") for name in RATES})
        else:
            cols = position.reindex(test["study"]).to_numpy()
            point.update(rates_with_intervals(test["y_true"].to_numpy(), test["y_pred"].to_numpy(), thr,
                                              counts[:, cols], units[cols], spec, min_units))
        out[t] = point
    return out


def _undefined(note: str) -> dict:
    return {"value": math.nan, "ci_low": math.nan, "ci_high": math.nan, "n": 0, "n_units": 0, "note": note}


def rate(point: dict, name: str) -> dict:
    """One rate of an operating point as a dict (an old bundle's bare float has no interval)."""
    value = point.get(name)
    if isinstance(value, dict):
        return value
    return {"value": math.nan if value is None else float(value), "ci_low": math.nan, "ci_high": math.nan,
            "note": "no interval recorded"}


def points_from_results(res, spec: IntervalSpec, min_units: int = 5, seed: int = 0) -> dict:
    """The call rules of an existing results bundle (:class:`echocmr.evaluate.ResultsBundle`),
    from what it recorded: its fused AUROC / R² intervals (evidence), its validation-chosen
    thresholds and its test predictions (rates with patient-level intervals). For results
    written before calls were recorded, without re-running the models."""
    from .bootstrap import bootstrap_counts
    from .targets import GLOBAL

    fused = res.predictions[res.predictions["view"] == GLOBAL].dropna(subset=["y_true", "y_pred"])
    fused = fused[fused["split"] == res.summary.get("split", "test")]
    found = {(r.target, r.metric): r for r in res.metrics if r.view == GLOBAL}
    out = {}
    for t, cell in fused.groupby("target", sort=False):
        if TARGETS_BY_NAME[t].kind == "continuous":
            out[t] = continuous_point(t, found.get((t, "r2")))
            continue
        thr = float((res.operating_points.get(t) or {}).get("threshold", math.nan))
        called, why = signal_evidence(found.get((t, "auroc")))
        point = {"kind": "binary", "threshold": thr, "called": called, "evidence": why, "n_test": int(len(cell))}
        units = ("patient:" + cell["patient"].astype(str)).to_numpy()
        counts = bootstrap_counts(units, len(cell), spec.n_bootstrap, np.random.default_rng(seed))
        if math.isfinite(thr):
            point.update(rates_with_intervals(cell["y_true"].to_numpy(), cell["y_pred"].to_numpy(), thr, counts,
                                              units, spec, min_units))
        else:
            point.update({name: _undefined("no threshold") for name in RATES})
        out[t] = point
    return out
