"""Paired comparison of two models' AUROCs on the same held-out patients.

``compare_bundles`` compares two results bundles (``predictions.csv`` of two runs) target by
target; ``compare_views`` compares each single view with the fused (``global``) prediction of one
bundle. Both are *paired*: one patient-level bootstrap count matrix resamples the same patients for
both models, so ΔAUROC's interval reflects the correlation between them, and DeLong's test (studies
as units) is given beside it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .. import bootstrap as B
from ..config import EvalConfig
from ..targets import BINARY_TARGETS, GLOBAL, MODEL_VIEWS
from . import AnalysisError
from .delong import delong_test

MAX_PREDICTIONS_BYTES = 256 * 1024 * 1024  # a results bundle of ~1M studies; bigger is not ours
PRED_DTYPES = {"study": str, "patient": str, "split": str, "view": str, "target": str,
               "y_true": float, "y_pred": float}


@dataclass(frozen=True)
class PairedComparison:
    """AUROC of model A minus model B on the same studies, with a paired patient-bootstrap
    percentile interval and DeLong's two-sided p (studies as units)."""

    target: str
    model_a: str
    model_b: str
    n_studies: int
    n_patients: int
    n_positive: int
    auc_a: float
    auc_b: float
    delta: float
    ci_low: float
    ci_high: float
    delong_z: float
    delong_p: float
    n_bootstrap: int
    note: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def results_dir(path) -> Path:
    """The results folder of a run's results, a bundle (``bundle.json`` → ``results``) or itself."""
    p = Path(path)
    for candidate in (p, p / "results"):
        if (candidate / "predictions.csv").is_file():
            return candidate
    raise AnalysisError("no_predictions", f"no predictions.csv in {p.name!r} or its results/ folder")


def read_predictions(path) -> pd.DataFrame:
    """``predictions.csv`` of a results bundle (bounded in size, columns checked)."""
    file = results_dir(path) / "predictions.csv"
    if file.stat().st_size > MAX_PREDICTIONS_BYTES:
        raise AnalysisError("too_large", f"predictions.csv is over {MAX_PREDICTIONS_BYTES >> 20} MiB")
    frame = pd.read_csv(file, dtype=PRED_DTYPES, keep_default_na=False, na_values=[""])
    missing = [c for c in PRED_DTYPES if c not in frame.columns]
    if missing:
        raise AnalysisError("bad_predictions", f"predictions.csv lacks columns {missing}")
    return frame


def _paired_rows(pred_a: pd.DataFrame, pred_b: pd.DataFrame, target: str, view_a: str, view_b: str,
                 split: str) -> pd.DataFrame:
    """Studies of ``split`` with a label and both predictions: study, patient, y, a, b."""
    def pick(frame: pd.DataFrame, view: str) -> pd.DataFrame:
        rows = frame[(frame["split"] == split) & (frame["target"] == target) & (frame["view"] == view)]
        return rows[["study", "patient", "y_true", "y_pred"]].dropna()

    a, b = pick(pred_a, view_a), pick(pred_b, view_b)
    both = a.merge(b, on=["study", "patient"], suffixes=("_a", "_b"))
    if not (both["y_true_a"] == both["y_true_b"]).all():
        raise AnalysisError("different_labels", f"the two predictions disagree on {target} labels "
                                                "for the same studies: not the same test set")
    return both.rename(columns={"y_true_a": "y", "y_pred_a": "a", "y_pred_b": "b"})[
        ["study", "patient", "y", "a", "b"]]


def _class_units(rows: pd.DataFrame) -> tuple[int, int]:
    """Patients with the finding in some study, and patients with a study without it."""
    return int(rows.loc[rows["y"] == 1, "patient"].nunique()), int(rows.loc[rows["y"] == 0, "patient"].nunique())


def paired_comparison(rows: pd.DataFrame, target: str, names: tuple[str, str], n_bootstrap: int = 2000,
                      seed: int = 0, level: float = 0.95) -> PairedComparison:
    """ΔAUROC (A − B) of paired ``rows`` (study, patient, y, a, b) with both intervals.

    Like ``echocmr evaluate``, no bootstrap interval below EvalConfig.min_class_units patients with,
    or without, the finding: a percentile bootstrap is far too narrow there.
    """
    y, a, b = (rows[c].to_numpy(dtype=float) for c in ("y", "a", "b"))
    n_pos, n = int(y.sum()), len(y)
    n_patients = int(rows["patient"].nunique())
    nan = math.nan
    if n_pos < 2 or n - n_pos < 2:
        return PairedComparison(target, *names, n, n_patients, n_pos, nan, nan, nan, nan, nan, nan, nan,
                                n_bootstrap, "fewer than 2 studies with or without the finding")
    dl = delong_test(y, a, b)
    minimum = EvalConfig().min_class_units
    if min(_class_units(rows)) < minimum:
        return PairedComparison(target, *names, n, n_patients, n_pos, dl.auc_a, dl.auc_b, dl.delta, nan, nan,
                                dl.z, dl.p_value, n_bootstrap,
                                f"no CI: fewer than {minimum} patients with or without the finding")
    counts = B.bootstrap_counts(rows["patient"].to_numpy(), n, n_bootstrap, np.random.default_rng(seed))
    diffs = B.bootstrap_auroc(y, a, counts) - B.bootstrap_auroc(y, b, counts)
    iv = B.percentile_interval(diffs, level)
    note = f"{iv.n_nan} resamples with one class dropped" if iv.n_nan else ""
    return PairedComparison(target, *names, n, n_patients, n_pos, dl.auc_a, dl.auc_b, dl.delta,
                            iv.low, iv.high, dl.z, dl.p_value, n_bootstrap, note)


def _check_same_patients(pred_a: pd.DataFrame, pred_b: pd.DataFrame, split: str) -> None:
    pa = set(pred_a.loc[pred_a["split"] == split, "patient"])
    pb = set(pred_b.loc[pred_b["split"] == split, "patient"])
    if not pa:
        raise AnalysisError("no_test_rows", f"no {split}-split predictions to compare")
    if pa != pb:
        raise AnalysisError("different_patients", (
            f"the two runs were evaluated on different {split} patients ({len(pa)} and {len(pb)}, "
            f"{len(pa & pb)} shared): a paired comparison needs the same patients"))


def compare_bundles(pred_a: pd.DataFrame, pred_b: pd.DataFrame, names: tuple[str, str] = ("A", "B"),
                    view: str = GLOBAL, split: str = "test", **boot) -> list[PairedComparison]:
    """Every binary target of ``view`` compared between two bundles on the same test patients.

    Refuses (``different_patients``) when the two were evaluated on different patients.
    ``boot``: ``n_bootstrap``, ``seed``, ``level`` of :func:`paired_comparison`.
    """
    _check_same_patients(pred_a, pred_b, split)
    out = []
    for target in BINARY_TARGETS:
        rows = _paired_rows(pred_a, pred_b, target, view, view, split)
        if len(rows):
            out.append(paired_comparison(rows, target, names, **boot))
    return out


def compare_views(pred: pd.DataFrame, split: str = "test", **boot) -> list[PairedComparison]:
    """Each single view against the fused prediction, per global binary target (A = the view,
    B = fused; a negative Δ means fusion is better), on the studies that have both."""
    out = []
    for target in BINARY_TARGETS:
        for view in MODEL_VIEWS:
            rows = _paired_rows(pred, pred, target, view, GLOBAL, split)
            if len(rows):
                out.append(paired_comparison(rows, target, (view, "fused"), **boot))
    return out


def comparison_frame(rows: list[PairedComparison]) -> pd.DataFrame:
    return pd.DataFrame([r.to_dict() for r in rows], columns=list(PairedComparison.__dataclass_fields__))


def format_comparisons(rows: list[PairedComparison], level: float = 0.95) -> str:
    """A plain-text table for the terminal."""
    lines = [f"{'target':<14}{'A':<8}{'B':<8}{'n':>5}{'pos':>5}  {'AUROC A':>8}{'AUROC B':>8}  "
             f"{'ΔAUROC (' + format(level * 100, 'g') + '% patient-bootstrap CI)':<38}{'DeLong p':>9}"]
    for r in rows:
        delta = "—" if math.isnan(r.delta) else f"{r.delta:+.3f} " + (
            "(no interval)" if math.isnan(r.ci_low) else f"({r.ci_low:+.3f} to {r.ci_high:+.3f})")
        p = "—" if math.isnan(r.delong_p) else f"{r.delong_p:.3g}"
        lines.append(f"{r.target:<14}{r.model_a:<8}{r.model_b:<8}{r.n_studies:>5}{r.n_positive:>5}  "
                     f"{r.auc_a:>8.3f}{r.auc_b:>8.3f}  {delta:<38}{p:>9}")
    return "\n".join(lines)
