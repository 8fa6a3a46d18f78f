"""Fuse the per-view predictions of a study into one study-level ("global") prediction.

Method (PAPER.md, "Model and training": global WMA/LGE by logistic regression over the three
views' predictions; continuous targets combined across views):

* **Binary global targets** (``wma``, ``lge``, ``t1_abnormal``, ``t2_abnormal``,
  ``ecv_abnormal``): L2-regularised logistic regression whose features are the A4C, A2C and PLAX
  models' predicted probabilities *of that same target*, logit-transformed after clipping to
  [``eps``, 1 − ``eps``].
* **Continuous targets** (``t1``, ``t2``, ``ecv``): ridge regression on the per-view
  predictions in physical units.
* The strength is chosen by cross-validation over validation studies grouped by patient, and the
  same (nested) cross-validation scores the plain mean of the views: the fitted model is kept only
  when it beats the mean (:mod:`echocmr.fusion_cv`). Each subset records its method, the reason,
  and both cross-validated scores.
* Fitted on the **validation split only** (the per-view models never saw it), so the fusion
  weights are not fitted to the models' own training error.

Missing views: a study may lack a view. One model is fitted for each of the 7 non-empty subsets
of views (key: view names sorted and joined by ``+``, e.g. ``"A2C+A4C"``), using every validation
study that has *at least* those views. A study is predicted by the model of exactly the views it
has. A subset with fewer than ``min_studies`` usable validation studies (continuous) or fewer
than ``min_per_class`` studies in either class (binary) is not fitted; like a subset whose fit
did not beat it, it uses the **mean of the available views' logits → sigmoid** (binary) or the
**mean of the available values** (continuous), recorded as ``"method": "mean"``.
A study with no view predictions gets NaN.

The model is JSON only (coefficients, intercepts, feature order, fitted-on counts) —
:meth:`FusionModel.to_json` / :meth:`FusionModel.from_json`. Predictions are computed with
numpy from the stored numbers, so a JSON round trip predicts identically. Never pickled.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .errors import CheckpointError
from .fusion_cv import FusionFitConfig, fit_subset_cv
from .targets import GLOBAL_TARGETS, MODEL_VIEWS, TARGETS_BY_NAME

FORMAT_VERSION = 2
METHODS = ("logistic", "ridge", "linear", "mean")  # "linear": format 1 (unregularised)
DEFAULT_EPS = 1e-6


def subset_key(views) -> str:
    """Canonical key of a set of views: sorted names joined by ``+`` (``"A2C+A4C"``)."""
    return "+".join(sorted(views))


def all_subsets(views=MODEL_VIEWS) -> list[tuple[str, ...]]:
    """Every non-empty subset of ``views``, each sorted by name."""
    return [
        tuple(sorted(c)) for r in range(1, len(views) + 1) for c in itertools.combinations(views, r)
    ]


def logit(p: np.ndarray, eps: float = DEFAULT_EPS) -> np.ndarray:
    """``log(p / (1 − p))`` after clipping ``p`` to [eps, 1 − eps]; NaN stays NaN."""
    q = np.clip(np.asarray(p, dtype=np.float64), eps, 1.0 - eps)
    return np.log(q) - np.log1p(-q)


def sigmoid(z: np.ndarray) -> np.ndarray:
    from scipy.special import expit

    return expit(np.asarray(z, dtype=np.float64))


@dataclass(frozen=True)
class SubsetModel:
    """Fusion for the studies that have exactly ``features`` (views, in this order).

    ``method``: ``"logistic"`` (binary), ``"ridge"`` (continuous) or ``"mean"`` (no
    coefficients). ``n_fit`` validation studies were available; ``n_pos`` positives (binary);
    ``cv_fused``/``cv_mean`` the cross-validated scores (AUROC or R²) of the fit and of the mean,
    ``strength`` the chosen penalty, ``reason`` why this method was kept.
    """

    features: tuple[str, ...]
    method: str
    coef: tuple[float, ...] = ()
    intercept: float = 0.0
    n_fit: int = 0
    n_pos: int | None = None
    n_patients: int | None = None
    strength: float | None = None
    cv_fused: float | None = None
    cv_mean: float | None = None
    reason: str = ""

    def to_json(self) -> dict:
        return {
            "features": list(self.features),
            "method": self.method,
            "coef": [float(c) for c in self.coef],
            "intercept": float(self.intercept),
            "n_fit": int(self.n_fit),
            "n_pos": None if self.n_pos is None else int(self.n_pos),
            "n_patients": self.n_patients,
            "strength": self.strength,
            "cv_fused": self.cv_fused,
            "cv_mean": self.cv_mean,
            "reason": self.reason,
        }

    @staticmethod
    def from_json(data: dict) -> SubsetModel:
        return SubsetModel(
            features=tuple(data["features"]),
            method=str(data["method"]),
            coef=tuple(float(c) for c in data.get("coef", ())),
            intercept=float(data.get("intercept", 0.0)),
            n_fit=int(data.get("n_fit", 0)),
            n_pos=None if data.get("n_pos") is None else int(data["n_pos"]),
            n_patients=_optional(data.get("n_patients"), int),
            strength=_optional(data.get("strength"), float),
            cv_fused=_optional(data.get("cv_fused"), float),
            cv_mean=_optional(data.get("cv_mean"), float),
            reason=str(data.get("reason") or ""),
        )

    def apply(self, x: np.ndarray, binary: bool) -> np.ndarray:
        """x: ``(n, len(features))`` model-space features (logits or values) → ``(n,)`` prediction."""
        if self.method == "mean":
            z = x.mean(axis=1)
        else:
            z = self.intercept + x @ np.asarray(self.coef, dtype=np.float64)
        return sigmoid(z) if binary else z


@dataclass(frozen=True)
class FusionModel:
    """Per-target, per-view-subset fusion models (see the module docstring)."""

    views: tuple[str, ...] = MODEL_VIEWS
    eps: float = DEFAULT_EPS
    # target -> subset key -> model
    models: dict[str, dict[str, SubsetModel]] = field(default_factory=dict)
    fit_config: dict = field(default_factory=dict)  # FusionFitConfig.to_json() of the fit

    def choice(self, target: str, views=None) -> SubsetModel | None:
        """The model used for studies with ``views`` (default: all of them)."""
        return self.models.get(target, {}).get(subset_key(views or self.views))

    @property
    def targets(self) -> tuple[str, ...]:
        return tuple(self.models)

    def summary_rows(self) -> list[dict]:
        """Per target, what fuses a study with every view: method, views, the cross-validated
        scores of the fit and of the mean (AUROC or R²), studies fitted on, and why."""
        rows = []
        for t in self.models:
            m = self.choice(t)
            if m is None:
                continue
            metric = "AUROC" if TARGETS_BY_NAME[t].kind == "binary" else "R²"
            rows.append({"target": t, "method": m.method, "views": "+".join(m.features), "cv_metric": metric,
                         "cv_fused": m.cv_fused, "cv_mean": m.cv_mean, "n_fit": m.n_fit, "n_pos": m.n_pos,
                         "n_patients": m.n_patients, "reason": m.reason})
        return rows

    # ---- serialisation ------------------------------------------------------------------
    def to_json(self) -> dict:
        return {
            "kind": "fusion",
            "format_version": FORMAT_VERSION,
            "views": list(self.views),
            "eps": self.eps,
            "fit": self.fit_config,
            "targets": {
                t: {
                    "kind": TARGETS_BY_NAME[t].kind,
                    "subsets": {k: m.to_json() for k, m in subsets.items()},
                }
                for t, subsets in self.models.items()
            },
        }

    @staticmethod
    def from_json(data: dict) -> FusionModel:
        if not isinstance(data, dict) or data.get("kind") != "fusion":
            raise CheckpointError("not a fusion model: expected a JSON object with kind 'fusion'")
        if data.get("format_version") not in (1, FORMAT_VERSION):
            raise CheckpointError(
                f"fusion format_version {data.get('format_version')!r} is not supported "
                f"(expected {FORMAT_VERSION})"
            )
        try:
            views = tuple(data["views"])
            models = {
                t: {k: SubsetModel.from_json(m) for k, m in spec["subsets"].items()}
                for t, spec in data["targets"].items()
            }
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"malformed fusion model: {type(exc).__name__}: {exc}") from None
        unknown = [t for t in models if t not in TARGETS_BY_NAME]
        if unknown:
            raise CheckpointError(f"fusion model has unknown targets {unknown}")
        for t, subsets in models.items():
            for key, m in subsets.items():
                if key != subset_key(m.features) or any(v not in views for v in m.features):
                    raise CheckpointError(f"fusion model {t}: subset {key!r} has features {m.features}")
                if m.method not in METHODS:
                    raise CheckpointError(f"fusion model {t}/{key}: unknown method {m.method!r}")
                if m.method != "mean" and len(m.coef) != len(m.features):
                    raise CheckpointError(f"fusion model {t}/{key}: {len(m.coef)} coefficients for "
                                          f"{len(m.features)} features")
        fit_data = data.get("fit")
        fit: dict = fit_data if isinstance(fit_data, dict) else {}
        return FusionModel(views=views, eps=float(data.get("eps", DEFAULT_EPS)), models=models, fit_config=fit)

    # ---- prediction -----------------------------------------------------------------------
    def predict_array(self, target: str, x: np.ndarray) -> np.ndarray:
        """Fuse one target. x: ``(n, len(self.views))`` per-view predictions (probability or
        value; NaN = view missing) → ``(n,)`` float64, NaN where no view is available."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(self.views):
            raise ValueError(f"expected per-view predictions of shape (n, {len(self.views)}); got {x.shape}")
        binary = TARGETS_BY_NAME[target].kind == "binary"
        subsets = self.models.get(target, {})
        feats = logit(x, self.eps) if binary else x
        avail = ~np.isnan(x)
        mask = avail @ (1 << np.arange(len(self.views)))
        out = np.full(x.shape[0], np.nan)
        for m in np.unique(mask):
            if m == 0:
                continue
            present = [v for i, v in enumerate(self.views) if m >> i & 1]
            model = subsets.get(subset_key(present)) or SubsetModel(tuple(sorted(present)), "mean")
            cols = [self.views.index(v) for v in model.features]
            rows = mask == m
            out[rows] = model.apply(feats[np.ix_(rows, cols)], binary)
        return out

    def predict(self, per_view: dict[str, dict[str, float]]) -> dict[str, float]:
        """One study: ``{view: {target: prediction}}`` → ``{target: fused prediction}`` for every
        target this model fuses (NaN when no view predicts it)."""
        result = {}
        for t in self.models:
            row = [per_view.get(v, {}).get(t, math.nan) for v in self.views]
            row = [math.nan if r is None else float(r) for r in row]
            result[t] = float(self.predict_array(t, np.array([row]))[0])
        return result

    def predict_frame(self, per_study: pd.DataFrame) -> pd.DataFrame:
        """Vectorised fusion for many studies.

        per_study: long frame with columns ``study``, ``view`` and one column per target (as from
        :func:`echocmr.evaluate.aggregate_per_study`). Returns a frame indexed by ``study`` with
        one column per fused target present in ``per_study``.
        """
        if not {"study", "view"} <= set(per_study.columns):
            raise ValueError(f"predict_frame needs columns study and view; got {list(per_study.columns)}")
        studies = pd.Index(pd.unique(per_study["study"]), name="study")
        out = pd.DataFrame(index=studies)
        for t in self.models:
            if t not in per_study.columns:
                continue
            wide = per_study.pivot_table(index="study", columns="view", values=t, aggfunc="mean", dropna=False)
            wide = wide.reindex(index=studies, columns=list(self.views))
            out[t] = self.predict_array(t, wide.to_numpy(dtype=np.float64))
        return out


def _optional(x, kind):
    return None if x is None else kind(x)


def fit_fusion_arrays(
    target: str,
    x: np.ndarray,
    y: np.ndarray,
    views=MODEL_VIEWS,
    eps: float = DEFAULT_EPS,
    groups: np.ndarray | None = None,
    config: FusionFitConfig = FusionFitConfig(),
) -> dict[str, SubsetModel]:
    """Fit all subset models of one target.

    x: ``(n, len(views))`` per-view predictions (NaN = missing view), y: ``(n,)`` study labels
    (NaN = unlabelled; dropped), groups: ``(n,)`` patient ids for the cross-validation folds
    (default: every study its own patient). Returns ``{subset key: SubsetModel}`` for all
    non-empty subsets.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or x.shape != (y.size, len(views)):
        raise ValueError(f"expected x of shape ({y.size}, {len(views)}) for y of shape {y.shape}; got {x.shape}")
    groups = np.arange(y.size).astype(str) if groups is None else np.asarray(groups).astype(str)
    binary = TARGETS_BY_NAME[target].kind == "binary"
    feats = logit(x, eps) if binary else x
    labelled = ~np.isnan(y)
    models = {}
    for subset in all_subsets(views):
        cols = [list(views).index(v) for v in subset]
        rows = labelled & ~np.isnan(x[:, cols]).any(axis=1)
        yr = y[rows]
        fit = fit_subset_cv(feats[np.ix_(rows, cols)], yr, groups[rows], binary, config)
        models[subset_key(subset)] = SubsetModel(
            tuple(subset), fit.method, fit.coef, fit.intercept, int(yr.size),
            int((yr == 1).sum()) if binary else None, int(np.unique(groups[rows]).size),
            fit.strength, fit.cv_fused, fit.cv_mean, fit.reason)
    return models


def fit_fusion_frame(
    per_study: pd.DataFrame,
    labels: pd.DataFrame,
    targets=GLOBAL_TARGETS,
    views=MODEL_VIEWS,
    eps: float = DEFAULT_EPS,
    config: FusionFitConfig = FusionFitConfig(),
) -> FusionModel:
    """Fit a :class:`FusionModel` from per-study per-view predictions and study labels.

    per_study: long frame ``study, view, <target>…`` and, for patient-grouped folds, ``patient``
    (validation split only, by the caller's contract); labels: frame with ``study`` and a column
    per target (NaN = missing). Targets missing from either frame are skipped.
    """
    lab = labels.drop_duplicates("study").set_index("study")
    patient_of = (per_study.drop_duplicates("study").set_index("study")["patient"]
                  if "patient" in per_study.columns else None)
    models = {}
    for t in targets:
        if t not in per_study.columns or t not in lab.columns:
            continue
        if per_study.empty:  # nothing to fit on: every subset falls back to the mean
            wide = pd.DataFrame(columns=list(views), dtype=float)
        else:
            wide = per_study.pivot_table(index="study", columns="view", values=t, aggfunc="mean",
                                         dropna=False)
            wide = wide.reindex(columns=list(views))
        y = lab[t].reindex(wide.index).to_numpy(dtype=np.float64)
        groups = None if patient_of is None else patient_of.reindex(wide.index).fillna("").astype(str).to_numpy()
        if groups is not None:  # a study without a patient id is its own group
            groups = np.where(groups == "", "study:" + wide.index.astype(str), groups)
        models[t] = fit_fusion_arrays(t, wide.to_numpy(dtype=np.float64), y, views, eps, groups, config)
    return FusionModel(views=tuple(views), eps=eps, models=models, fit_config=config.to_json())
