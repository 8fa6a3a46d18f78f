"""Benchmark: the whole Table 2 with 10,000 bootstrap resamples, vectorised vs an sklearn loop.

Synthetic set: simulated per-clip predictions (echocmr.evaluate.simulate_predictions) giving
~250 held-out test studies with 3 views + fused global. Table 2 = AUROC for 3 views × 7 binary
targets + global × 5 binary targets, and MAE and R² for 3 continuous targets × 4 views — every
cell with a 10,000-resample patient-cluster bootstrap CI, all cells on the same resamples.

Ours: bootstrap count matrix + every cell's vectorised statistics (timed end to end).
Reference: a loop over the same resamples calling sklearn's roc_auc_score (resp.
mean_absolute_error + r2_score) on the expanded resample. The loop is run in full — all 10,000
resamples — for ONE binary cell and ONE continuous cell, checked against ours, and its time is
extrapolated to the whole table by multiplying by the number of cells of each kind.
Last line: ``speedup: <reference seconds / our seconds>``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from echocmr import bootstrap as B  # noqa: E402
from echocmr import evaluate as E  # noqa: E402
from echocmr.config import EvalConfig  # noqa: E402
from echocmr.targets import TARGETS_BY_NAME  # noqa: E402

N_BOOT = 10_000


def table2_cells(clip_preds, labels):
    """Long test predictions restricted to Table 2's cells: list of (target, view, studies, y, p)."""
    per_study = E.aggregate_per_study(clip_preds)
    val = per_study[per_study["split"] == "val"]
    fusion = E.fit_fusion(val, labels[labels["split"] == "val"])
    preds = E.long_predictions(per_study, labels, fusion)
    preds = preds[preds["split"] == "test"].dropna(subset=["y_true", "y_pred"])
    cells = [
        (t, v, cell["study"].to_numpy(), cell["y_true"].to_numpy(float), cell["y_pred"].to_numpy(float))
        for (t, v), cell in preds.groupby(["target", "view"], sort=True)
    ]
    studies = preds.drop_duplicates("study")[["study", "patient"]].sort_values("study").reset_index(drop=True)
    return cells, studies


def ours(cells, studies, config):
    """Every Table 2 cell with its CI; returns {(target, view): {metric: Estimate}}."""
    counts = E.bootstrap_for_studies(studies, config)
    position = {s: i for i, s in enumerate(studies["study"])}
    out = {}
    for t, v, st, y, p in cells:
        c = counts[:, [position[s] for s in st]]
        if TARGETS_BY_NAME[t].kind == "binary":
            out[(t, v)] = {"auroc": B.auroc_ci(y, p, c, config.ci_level)}
        else:
            out[(t, v)] = {"mae": B.mae_ci(y, p, c, config.ci_level), "r2": B.r2_ci(y, p, c, config.ci_level)}
    return out, counts, position


def reference_cell(kind, y, p, c):
    from sklearn.metrics import mean_absolute_error, r2_score, roc_auc_score

    res = []
    for row in c:
        idx = B.counts_to_indices(row)
        yi, pi = y[idx], p[idx]
        if kind == "binary":
            res.append(roc_auc_score(yi, pi) if 0 < yi.sum() < yi.size else np.nan)
        else:
            res.append((mean_absolute_error(yi, pi), r2_score(yi, pi)))
    return np.array(res)


def main() -> None:
    clip_preds, labels = E.simulate_predictions(n_patients=620, seed=0, split_fractions=(0.5, 0.25, 0.25))
    cells, studies = table2_cells(clip_preds, labels)
    config = EvalConfig(n_bootstrap=N_BOOT, resample_unit="patient", seed=0)
    n_bin = sum(TARGETS_BY_NAME[t].kind == "binary" for t, *_ in cells)
    n_cont = len(cells) - n_bin
    print(f"test studies: {len(studies)}, patients: {studies['patient'].nunique()}, "
          f"cells: {n_bin} AUROC + {n_cont} MAE/R², resamples: {N_BOOT}")

    ours(cells, studies, EvalConfig(n_bootstrap=50))  # warm imports and caches
    t0 = time.perf_counter()
    result, counts, position = ours(cells, studies, config)
    t_ours = time.perf_counter() - t0
    print(f"ours (whole Table 2, counts + all cells): {t_ours:.3f} s")

    ref_total = 0.0
    for kind in ("binary", "continuous"):
        t, v, st, y, p = next(c for c in cells if TARGETS_BY_NAME[c[0]].kind == kind and c[1] == "global")
        c = counts[:, [position[s] for s in st]]
        t0 = time.perf_counter()
        ref = reference_cell(kind, y, p, c)
        dt = time.perf_counter() - t0
        n_cells = n_bin if kind == "binary" else n_cont
        ref_total += dt * n_cells
        if kind == "binary":
            fast = B.bootstrap_auroc(y, p, c)
            err = np.nanmax(np.abs(fast - ref))
            same = np.array_equal(np.isnan(fast), np.isnan(ref))
        else:
            err = max(np.abs(B.bootstrap_mae(y, p, c) - ref[:, 0]).max(),
                      np.abs(B.bootstrap_r2(y, p, c) - ref[:, 1]).max())
            same = True
        print(f"sklearn loop, one {kind} cell ({t}|{v}, {N_BOOT} resamples, measured): {dt:.2f} s; "
              f"× {n_cells} cells = {dt * n_cells:.1f} s (extrapolated); "
              f"max |ours − sklearn| = {err:.1e}, NaN pattern equal: {same}")
    wma = result[("wma", "global")]["auroc"]
    print(f"e.g. global WMA AUROC {wma.value:.3f} ({wma.low:.3f}–{wma.high:.3f})")
    print(f"sklearn loop, whole table (extrapolated): {ref_total:.1f} s")
    print(f"speedup: {ref_total / t_ours:.0f}")


if __name__ == "__main__":
    main()
