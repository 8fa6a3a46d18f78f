"""Simulated per-clip predictions and labels, for tests and ``bench/bootstrap.py`` (never model output).

The continuous targets are drawn from the synthetic renderer's population moments
(``T1_MEAN``/``T1_SD`` … in :mod:`echocmr.synth.render`), so simulated and rendered cohorts agree.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .synth.canvas import ECV_MEAN, ECV_SD, T1_MEAN, T1_SD, T2_MEAN, T2_SD
from .targets import BINARY_TARGETS, CONTINUOUS_TARGETS, MODEL_VIEWS, TARGETS_BY_NAME

# Population mean and SD of each continuous target, as the synthetic renderer draws them.
POPULATION_MOMENTS: dict[str, tuple[float, float]] = {
    "t1": (T1_MEAN, T1_SD), "t2": (T2_MEAN, T2_SD), "ecv": (ECV_MEAN, ECV_SD)}


def simulate_predictions(
    n_patients: int = 200,
    seed: int = 0,
    signal: float = 1.0,
    split_fractions: tuple[float, float, float] = (0.5, 0.25, 0.25),
    missing_view: float = 0.1,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A synthetic per-clip predictions frame and matching per-clip labels.

    Each patient has 1–2 studies, each study 1–3 of the model views (each missing with
    probability ``missing_view``) with 1–2 clips per view. Every view's prediction carries the
    true label with strength ``signal`` plus independent per-view noise (``signal=0``: pure
    noise). Returns ``(clip_preds, labels)``: ``clip_id, study, patient, split, view`` + targets
    (probabilities / units), and the same keys + ``status`` + labels.
    """
    rng = np.random.default_rng(seed)
    split_of = rng.choice(["train", "val", "test"], size=n_patients, p=list(split_fractions))
    pred_rows, label_rows = [], []
    for pi in range(n_patients):
        for si in range(int(rng.integers(1, 3))):
            study = f"S{pi:04d}_{si}"
            g = {"wma": rng.random() < 0.48, "lge": rng.random() < 0.49}
            cont = {t: rng.normal(mu, sd) for t, (mu, sd) in POPULATION_MOMENTS.items()}
            for name, b in (("t1", "t1_abnormal"), ("t2", "t2_abnormal"), ("ecv", "ecv_abnormal")):
                g[b] = cont[name] > _abnormal_above(name)
            views = [v for v in MODEL_VIEWS if rng.random() >= missing_view] or [MODEL_VIEWS[0]]
            for v in views:
                lab = {t: float(x) for t, x in g.items()} | cont
                lab["wma_view"] = float(g["wma"] and rng.random() < 0.8)
                lab["lge_view"] = float(g["lge"] and rng.random() < 0.7)
                view_noise = {t: rng.normal(0, 1.5) for t in BINARY_TARGETS}
                cont_noise = {t: rng.normal(0, 1.0) for t in CONTINUOUS_TARGETS}
                for ci in range(int(rng.integers(1, 3))):
                    clip = f"{study}_{v}_{ci}"
                    keys = {"clip_id": clip, "study": study, "patient": f"P{pi:04d}",
                            "split": split_of[pi], "view": v}
                    pred = dict(keys)
                    for t in BINARY_TARGETS:
                        z = signal * (2 * lab[t] - 1) + view_noise[t] + rng.normal(0, 0.3)
                        pred[t] = float(1 / (1 + math.exp(-z)))
                    for t, (mu, sd) in POPULATION_MOMENTS.items():
                        shrink = 0.4 * signal * (lab[t] - mu)
                        pred[t] = float(mu + shrink + sd * 0.5 * (cont_noise[t] + rng.normal(0, 0.3)))
                    pred_rows.append(pred)
                    label_rows.append({**keys, "status": "ok", **{t: lab[t] for t in TARGETS_BY_NAME}})
    return pd.DataFrame(pred_rows), pd.DataFrame(label_rows)


def _abnormal_above(name: str) -> float:
    threshold = TARGETS_BY_NAME[name].abnormal_above
    assert threshold is not None, f"{name} has no abnormality threshold"
    return threshold
