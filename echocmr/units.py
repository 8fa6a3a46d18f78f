"""Unit of analysis: every metric per study (default) or per patient.

``--unit patient`` gives one aggregated prediction per patient and view: the mean of the
patient's study predictions; the patient's label is, for a binary finding, whether any of their
studies has it, and for a continuous measure the mean of their studies' values. A patient with
many studies then counts once, not once per study. Studies without a patient id stay units of
their own.
"""

from __future__ import annotations

import pandas as pd

from .targets import TARGETS_BY_NAME

UNITS = ("study", "patient")


def to_patient_level(long_preds: pd.DataFrame) -> pd.DataFrame:
    """Long predictions (``study, patient, split, view, target, y_true, y_pred``) → the same
    columns with one row per (patient, split, view, target); ``study`` becomes ``"patient:<id>"``."""
    if long_preds.empty:
        return long_preds.copy()
    frame = long_preds.copy()
    patient = frame["patient"].astype(str)
    unknown = frame["patient"].isna() | patient.isin(["", "nan", "None"])
    frame["unit"] = ("patient:" + patient).where(~unknown, "study:" + frame["study"].astype(str))
    binary = frame["target"].map(lambda t: TARGETS_BY_NAME[t].kind == "binary")
    keys = ["unit", "split", "view", "target"]
    parts = []
    for is_binary, part in frame.groupby(binary, sort=False):
        grouped = part.groupby(keys, sort=True, dropna=False)
        agg = grouped.agg(patient=("patient", "first"), y_pred=("y_pred", "mean"),
                          y_true=("y_true", "max" if is_binary else "mean"))
        parts.append(agg.reset_index())
    out = pd.concat(parts, ignore_index=True).rename(columns={"unit": "study"})
    return out[list(long_preds.columns)].astype({"y_true": float, "y_pred": float})
