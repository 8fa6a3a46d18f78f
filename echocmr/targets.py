"""What the models predict: views, AHA segments per view, and the CMR targets.

One table shared by the synthetic cohort, dataset preparation, the models, fusion, evaluation and
the dashboard, so a target is named and thresholded in exactly one place.
"""

from __future__ import annotations

from dataclasses import dataclass

# Views the per-view models are trained on, and views the classifier must learn to reject.
MODEL_VIEWS: tuple[str, ...] = ("A4C", "A2C", "PLAX")
OTHER_VIEWS: tuple[str, ...] = ("PSAX", "A3C")
CLASSIFIER_LABELS: tuple[str, ...] = ("A4C", "A2C", "PLAX", "other")
GLOBAL = "global"
# The order views are shown in everywhere (tables, charts): the model views, then the fused result.
VIEW_ORDER: tuple[str, ...] = MODEL_VIEWS + (GLOBAL,)

N_SEGMENTS = 17
# AHA 17-segment model: segments each standard echo view shows (PAPER.md, "Labels").
VIEW_SEGMENTS: dict[str, tuple[int, ...]] = {
    "A4C": (3, 9, 14, 6, 12, 16, 17),
    "A2C": (4, 10, 15, 1, 7, 13, 17),
    "PLAX": (2, 8, 5, 11),
}

# Wall-motion scores as written in the CMR report table.
WMA_NORMAL, WMA_HYPOKINETIC, WMA_AKINETIC, WMA_DYSKINETIC = 0, 1, 2, 3
WMA_SCORE_NAMES = ("normal", "hypokinetic", "akinetic", "dyskinetic")


@dataclass(frozen=True)
class Target:
    """One prediction target.

    ``kind`` is ``"binary"`` (logit, BCE, AUROC) or ``"continuous"`` (standardised value,
    squared loss, MAE/R²). ``per_view`` targets depend on the clip's view (segments it shows).
    For continuous targets ``abnormal_above`` is the clinical cut-off in ``unit``.
    """

    name: str
    label: str
    kind: str
    unit: str = ""
    per_view: bool = False
    abnormal_above: float | None = None


TARGETS: tuple[Target, ...] = (
    Target("wma_view", "WMA in the view's segments", "binary", per_view=True),
    Target("lge_view", "LGE in the view's segments", "binary", per_view=True),
    Target("wma", "Any WMA", "binary"),
    Target("lge", "Any LGE", "binary"),
    Target("t1_abnormal", "Native T1 abnormal", "binary"),
    Target("t2_abnormal", "T2 abnormal", "binary"),
    Target("ecv_abnormal", "ECV abnormal", "binary"),
    Target("t1", "Native T1", "continuous", unit="ms", abnormal_above=1060.0),
    Target("t2", "T2", "continuous", unit="ms", abnormal_above=58.0),
    Target("ecv", "ECV", "continuous", unit="%", abnormal_above=33.0),
)

TARGETS_BY_NAME: dict[str, Target] = {t.name: t for t in TARGETS}
BINARY_TARGETS: tuple[str, ...] = tuple(t.name for t in TARGETS if t.kind == "binary")
CONTINUOUS_TARGETS: tuple[str, ...] = tuple(t.name for t in TARGETS if t.kind == "continuous")
# Targets that have a study-level ("global") fused prediction.
GLOBAL_TARGETS: tuple[str, ...] = tuple(t.name for t in TARGETS if not t.per_view)
# Binary target derived from each continuous one by its cut-off.
ABNORMAL_OF: dict[str, str] = {"t1": "t1_abnormal", "t2": "t2_abnormal", "ecv": "ecv_abnormal"}


def target(name: str) -> Target:
    try:
        return TARGETS_BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown target {name!r}; known: {', '.join(TARGETS_BY_NAME)}") from None
