"""CMR reports → labels: echo↔CMR pairing, target values, per-view segment labels.

Pure pandas/numpy over tables; no files and no pixels. The same rules apply to the synthetic
cohort and to a hospital export with the columns of docs/ARCHITECTURE.md.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .config import LabelConfig
from .errors import InputError
from .targets import (
    MODEL_VIEWS,
    N_SEGMENTS,
    SEGMENT_OUTPUTS,
    SEGMENTS,
    TARGETS,
    VIEW_SEGMENTS,
    parse_segment_output,
    segment_output,
    shows,
)

WMA_COLUMNS = [f"wma_{s}" for s in range(1, N_SEGMENTS + 1)]
LGE_COLUMNS = [f"lge_{s}" for s in range(1, N_SEGMENTS + 1)]
REPORT_COLUMNS = ["cmr_id", "patient_id", "cmr_date", *WMA_COLUMNS, *LGE_COLUMNS, "t1_ms", "t2_ms", "ecv_pct"]
# Optional report columns carried into the manifest as they are (confounder analyses, never
# model targets): an export without them gets empty columns.
COVARIATE_COLUMNS = ["lvef_pct", "wall_thickness_mm"]
INDEX_COLUMNS = ["patient_id", "study_id", "study_date", "file"]
TARGET_NAMES = [t.name for t in TARGETS]


def require_columns(table: pd.DataFrame, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise InputError("bad_table", f"{what} lacks columns {missing}; has {len(table.columns)} columns")


def pair_studies(studies: pd.DataFrame, reports: pd.DataFrame, window_days: int) -> pd.DataFrame:
    """Pair each echo study with the temporally closest CMR of the same patient.

    ``studies``: one row per study (patient_id, study_id, study_date). ``reports``: cmr_id,
    patient_id, cmr_date. Returns ``studies`` with ``cmr_id`` and ``echo_cmr_days`` (CMR date
    minus echo date, in days); studies with no CMR within ``window_days`` get NaN/None.
    """
    left = studies.assign(_date=pd.to_datetime(studies["study_date"])).sort_values("_date")
    cmr_dates = pd.to_datetime(reports["cmr_date"])
    right = reports[["cmr_id", "patient_id"]].assign(_date=cmr_dates, _cmr_date=cmr_dates).sort_values("_date")
    paired = pd.merge_asof(
        left, right, on="_date", by="patient_id",
        direction="nearest", tolerance=pd.Timedelta(days=window_days),
    )
    days = (paired["_cmr_date"] - paired["_date"]).dt.days
    paired["echo_cmr_days"] = days
    return paired.drop(columns=["_date", "_cmr_date"]).sort_values("study_id").reset_index(drop=True)


def report_labels(reports: pd.DataFrame, config: LabelConfig) -> pd.DataFrame:
    """One row per CMR: global targets and per-view segment labels.

    Columns: cmr_id, wma, lge, t1_abnormal, t2_abnormal, ecv_abnormal, t1, t2, ecv, and for each
    model view V: ``wma_view@V``, ``lge_view@V``. Missing measurements stay NaN (their losses
    are masked), and so do the abnormal flags derived from them.
    """
    require_columns(reports, REPORT_COLUMNS, "CMR report table")
    wma = reports[WMA_COLUMNS].to_numpy(dtype=float) >= config.wma_min_score
    lge = reports[LGE_COLUMNS].to_numpy(dtype=float) > 0
    out = pd.DataFrame({"cmr_id": reports["cmr_id"].to_numpy()})
    out["wma"] = wma.any(axis=1).astype(float)
    out["lge"] = lge.any(axis=1).astype(float)
    cut_offs = {"t1": ("t1_ms", config.t1_abnormal_ms), "t2": ("t2_ms", config.t2_abnormal_ms),
                "ecv": ("ecv_pct", config.ecv_abnormal_pct)}
    for name, (column, cut_off) in cut_offs.items():
        value = pd.to_numeric(reports[column], errors="coerce").to_numpy(dtype=float)
        out[name] = value
        out[f"{name}_abnormal"] = np.where(np.isnan(value), np.nan, (value > cut_off).astype(float))
    for view in MODEL_VIEWS:
        columns = [s - 1 for s in VIEW_SEGMENTS[view]]
        out[f"wma_view@{view}"] = wma[:, columns].any(axis=1).astype(float)
        out[f"lge_view@{view}"] = lge[:, columns].any(axis=1).astype(float)
    # Per-segment labels, same thresholds as above; a missing score stays missing (NaN).
    for finding, hit, columns_of in (("wma", wma, WMA_COLUMNS), ("lge", lge, LGE_COLUMNS)):
        present = reports[columns_of].notna().to_numpy()
        for s in SEGMENTS:
            out[segment_output(finding, s)] = np.where(present[:, s - 1], hit[:, s - 1].astype(float), np.nan)
    for column in COVARIATE_COLUMNS:
        raw = reports[column] if column in reports.columns else pd.Series(np.nan, index=reports.index)
        out[column] = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
    return out


def clip_targets(clips: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """Attach target columns (targets.TARGETS order) to clips that have ``cmr_id`` and ``view``.

    Per-view targets take the clip's own view's segments; clips of other views get NaN there.
    Segment labels (``targets.SEGMENT_OUTPUTS``) are kept only for segments the clip's view
    shows: NaN elsewhere, so the view model's loss is masked there.
    """
    merged = clips.merge(labels, on="cmr_id", how="left")
    for name in SEGMENT_OUTPUTS:
        if name in merged.columns:
            segment = parse_segment_output(name)[1]  # type: ignore[index]
            shown = merged["view"].map(lambda v, s=segment: shows(v, s))
            merged[name] = merged[name].where(shown.astype(bool), np.nan)
    for per_view in ("wma_view", "lge_view"):
        values = np.full(len(merged), np.nan)
        for view in MODEL_VIEWS:
            rows = (merged["view"] == view).to_numpy()
            values[rows] = merged.loc[rows, f"{per_view}@{view}"].to_numpy(dtype=float)
        merged[per_view] = values
    return merged.drop(columns=[c for c in merged.columns if "@" in c])


def assign_splits(patients: pd.Series, fractions: tuple[float, float, float], seed: int) -> dict[str, str]:
    """Patient-level split: every study of a patient lands in one of train/val/test.

    Patients are shuffled by ``seed`` and cut by ``fractions``; with three or more patients,
    validation and test each get at least one (a tiny cohort must still be evaluable).
    """
    unique = np.array(sorted(set(patients)))
    if len(fractions) != 3 or abs(sum(fractions) - 1.0) > 1e-6 or min(fractions) < 0:
        raise ValueError(f"split fractions must be three non-negative numbers summing to 1; got {fractions}")
    order = np.random.default_rng(seed).permutation(len(unique))
    n = len(unique)
    n_val = int(round(fractions[1] * n))
    n_test = int(round(fractions[2] * n))
    if n >= 3:
        n_val, n_test = max(n_val, 1), max(n_test, 1)
    splits = np.array(["train"] * n, dtype=object)
    splits[order[:n_test]] = "test"
    splits[order[n_test:n_test + n_val]] = "val"
    return dict(zip(unique.tolist(), splits.tolist()))
