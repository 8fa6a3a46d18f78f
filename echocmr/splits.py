"""Patient-level train/validation/test split, stratified by the findings' prevalence.

A purely random patient split can leave a rare finding with a handful of positive patients in
the test split (T2-abnormal, 6.9 % of studies, kept 2 of 77 test patients), which then cannot
carry a confidence interval. The stratified split deals patients so every split holds close to
its share of every binary finding:

1. Each patient's findings: a finding counts as present when any of the patient's studies has it.
2. Patients are shuffled by the seed, then ordered rarest finding first (patients with no finding
   last), so the scarce positives are placed while every split still has room.
3. Each patient goes to the split, among those with room left, whose remaining demand for the
   patient's findings is largest relative to its target (target = fraction × the finding's
   positive patients); ties go to the split with the most room left, then to train, val, test.

The sizes are those of the random split (fractions of patients, at least one validation and one
test patient from three patients on), and the result depends only on the seed and the labels.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SPLITS = ("train", "val", "test")
SPLIT_METHODS = ("stratified", "random")


def split_sizes(n: int, fractions: tuple[float, float, float]) -> dict[str, int]:
    n_val, n_test = round(fractions[1] * n), round(fractions[2] * n)
    if n >= 3:
        n_val, n_test = max(n_val, 1), max(n_test, 1)
    return {"train": n - n_val - n_test, "val": n_val, "test": n_test}


def stratified_splits(findings: pd.DataFrame, fractions: tuple[float, float, float], seed: int) -> dict[str, str]:
    """findings: one row per patient (index: patient id), one bool column per finding →
    ``{patient: split}``."""
    if len(fractions) != 3 or abs(sum(fractions) - 1.0) > 1e-6 or min(fractions) < 0:
        raise ValueError(f"split fractions must be three non-negative numbers summing to 1; got {fractions}")
    findings = findings.sort_index().fillna(False).astype(bool)
    patients = findings.index.to_numpy()
    matrix = findings.to_numpy()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(patients))
    positives = matrix.sum(axis=0)
    rarity = np.where(matrix, positives[None, :], np.inf).min(axis=1) if matrix.shape[1] else np.full(len(patients), np.inf)
    order = order[np.argsort(rarity[order], kind="stable")]
    room = np.array([split_sizes(len(patients), fractions)[s] for s in SPLITS], dtype=np.int64)
    target = np.outer(np.asarray(fractions, dtype=np.float64), positives)  # (3, findings)
    demand = target.copy()
    out = {}
    for i in order:
        open_ = room > 0
        score = (demand[:, matrix[i]] / np.maximum(target[:, matrix[i]], 1e-9)).sum(axis=1)
        keys = [(score[k], room[k], -k) for k in range(3)]
        best = max((k for k in range(3) if open_[k]), key=lambda k: keys[k])
        room[best] -= 1
        demand[best] -= matrix[i]
        out[str(patients[i])] = SPLITS[best]
    return out


def patient_findings(files: pd.DataFrame, targets) -> pd.DataFrame:
    """Per patient, whether any of their rows (files / studies) has each binary finding."""
    present = [t for t in targets if t in files.columns]
    values = files[present].apply(pd.to_numeric, errors="coerce") > 0.5
    return values.groupby(files["patient"].astype(str)).any()


def split_balance(manifest: pd.DataFrame, targets) -> dict:
    """What the prepared data records: per split, patients and the share of studies with each
    finding (to show the split held every finding's share)."""
    ok = manifest[manifest["status"] == "ok"].drop_duplicates("study")
    out = {}
    for split, group in ok.groupby("split"):
        shares = {t: float(pd.to_numeric(group[t], errors="coerce").mean()) for t in targets if t in group.columns}
        positives = {t: int(group.loc[pd.to_numeric(group[t], errors="coerce") > 0.5, "patient"].nunique())
                     for t in targets if t in group.columns}
        out[str(split)] = {"patients": int(group["patient"].nunique()), "studies": len(group),
                           "prevalence": shares, "positive_patients": positives}
    return out
