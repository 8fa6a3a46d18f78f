"""Per-study covariates (any WMA, LVEF, wall thickness) joined to a results bundle's predictions.

From a prepared dataset's manifest (``lvef_pct``/``wall_thickness_mm`` columns, copied from the
CMR reports by ``echocmr prepare``), or from a cohort's ``echo_index.csv`` + ``cmr_reports.csv``
pseudonymised with the salt the dataset was prepared with (how the shipped model's covariates are
rebuilt from its seed without rendering a single frame).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .. import labels as lab
from ..config import LabelConfig
from . import AnalysisError

COLUMNS = ["study", "wma", *lab.COVARIATE_COLUMNS]


def covariates_from_manifest(prepared) -> pd.DataFrame:
    """One row per study of a prepared dataset: study, wma, lvef_pct, wall_thickness_mm."""
    from ..prepared import read_manifest as load_manifest

    manifest = load_manifest(Path(prepared))
    ok = manifest[manifest["status"] == "ok"]
    if ok.empty:
        raise AnalysisError("no_studies", "the prepared dataset has no usable studies")
    frame = ok.reindex(columns=COLUMNS).groupby("study", as_index=False).first()
    return frame.astype({c: float for c in COLUMNS[1:]})


def covariates_from_tables(echo_index: pd.DataFrame, reports: pd.DataFrame, salt: bytes,
                           config: LabelConfig = LabelConfig()) -> pd.DataFrame:
    """The same table from a cohort's index and reports, study ids pseudonymised with ``salt``."""
    from ..ingest import pseudonym

    studies = echo_index[["patient_id", "study_id", "study_date"]].drop_duplicates("study_id")
    paired = lab.pair_studies(studies, reports, config.pairing_window_days).dropna(subset=["cmr_id"])
    per_cmr = lab.report_labels(reports, config)[["cmr_id", "wma", *lab.COVARIATE_COLUMNS]]
    frame = paired.merge(per_cmr, on="cmr_id", how="left")
    frame["study"] = [pseudonym(str(s), salt, "S") for s in frame["study_id"]]
    return frame[COLUMNS].reset_index(drop=True)


def demo_covariates(n_patients: int, seed: int, tissue_confounded: bool = False) -> pd.DataFrame:
    """Covariates of the shipped demo cohort (``echocmr.demo``), rebuilt from its seed and salt."""
    from ..config import SynthConfig
    from ..synth.cohort import generate_patients
    from ..synth.generate import cmr_rows, study_rows

    patients = generate_patients(SynthConfig(n_patients=n_patients, seed=seed, tissue_confounded=tissue_confounded))
    index = pd.DataFrame(study_rows(patients))
    reports = pd.DataFrame(cmr_rows(patients)).replace("", np.nan)
    return covariates_from_tables(index, reports, f"demo-{seed}".encode())


def study_frame(predictions: pd.DataFrame, covariates: pd.DataFrame, split: str = "test",
                view: str = "global") -> pd.DataFrame:
    """Rows (target, study, patient, y, score, wma, lvef_pct, wall_thickness_mm) of ``split``.

    Refuses when the covariates cover none of the bundle's studies (another dataset or salt).
    """
    pred = predictions[(predictions["split"] == split) & (predictions["view"] == view)].dropna(
        subset=["y_true", "y_pred"])
    frame = pred.rename(columns={"y_true": "y", "y_pred": "score"})[["target", "study", "patient", "y", "score"]]
    merged = frame.merge(covariates, on="study", how="inner")
    if merged.empty:
        raise AnalysisError("no_matching_studies", (
            f"none of the {pred['study'].nunique()} {split} studies is in the covariate table: "
            "were the results computed on this prepared dataset?"))
    return merged
