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
# Targets that depend on the clip's view (the segments it shows): per-view only, never fused.
PER_VIEW_TARGETS: tuple[str, ...] = tuple(t.name for t in TARGETS if t.per_view)
# Binary target derived from each continuous one by its cut-off.
ABNORMAL_OF: dict[str, str] = {"t1": "t1_abnormal", "t2": "t2_abnormal", "ecv": "ecv_abnormal"}


def target(name: str) -> Target:
    try:
        return TARGETS_BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown target {name!r}; known: {', '.join(TARGETS_BY_NAME)}") from None


# ----------------------------------------------------------------------------- AHA segments
# Per-segment outputs of the per-view models. They are not in TARGETS (that table holds the
# study-level findings of Table 2); a view model's outputs are TARGETS + SEGMENT_OUTPUTS, and a
# segment its clip's view does not show has no label (NaN), so its loss is masked.
SEGMENT_FINDINGS: tuple[str, ...] = ("wma", "lge")
SEGMENTS: tuple[int, ...] = tuple(range(1, N_SEGMENTS + 1))
AHA_SEGMENT_NAMES: dict[int, str] = {
    1: "basal anterior", 2: "basal anteroseptal", 3: "basal inferoseptal", 4: "basal inferior",
    5: "basal inferolateral", 6: "basal anterolateral",
    7: "mid anterior", 8: "mid anteroseptal", 9: "mid inferoseptal", 10: "mid inferior",
    11: "mid inferolateral", 12: "mid anterolateral",
    13: "apical anterior", 14: "apical septal", 15: "apical inferior", 16: "apical lateral",
    17: "apex",
}


def segment_output(finding: str, segment: int) -> str:
    """The output / label column of one finding in one AHA segment, e.g. ``wma_seg4``."""
    return f"{finding}_seg{segment}"


SEGMENT_OUTPUTS: tuple[str, ...] = tuple(segment_output(f, s) for f in SEGMENT_FINDINGS for s in SEGMENTS)
_SEGMENT_OF: dict[str, tuple[str, int]] = {segment_output(f, s): (f, s) for f in SEGMENT_FINDINGS for s in SEGMENTS}


def parse_segment_output(name: str) -> tuple[str, int] | None:
    """``"wma_seg4"`` → ``("wma", 4)``; None for any other name."""
    return _SEGMENT_OF.get(name)


def shows(view: str, segment: int) -> bool:
    """Whether clips of ``view`` show ``segment`` (False for a view that is not a model view)."""
    return segment in VIEW_SEGMENTS.get(view, ())


def views_showing(segment: int) -> tuple[str, ...]:
    """The model views whose clips show ``segment`` (17, the apex, is seen in A4C and A2C)."""
    return tuple(v for v in MODEL_VIEWS if shows(v, segment))


def output_kind(name: str) -> str:
    """``"binary"`` or ``"continuous"`` for any view-model output (a target or a segment output)."""
    if name in _SEGMENT_OF:
        return "binary"
    return target(name).kind


@dataclass(frozen=True)
class BullseyeCell:
    """Where one AHA segment sits in the standard bullseye (polar plot, 0° at 12 o'clock,
    clockwise as the dashboard draws it): ring 0 = basal (outer) … 3 = apex (centre), the
    angular centre and width in degrees."""

    segment: int
    ring: int
    ring_name: str
    theta: float
    width: float


def _bullseye() -> tuple[BullseyeCell, ...]:
    # AHA (Cerqueira 2002): anterior at the top, septum on the viewer's left. Clockwise from
    # the top that is segment 1 (anterior) centred at 0°, then 6, 5, 4, 3, 2 going round, i.e.
    # segment 1 + k is centred at −60·k°; the apical ring: 13 anterior top, 14 septal left.
    cells = []
    for ring, (first, ring_name) in enumerate(((1, "basal"), (7, "mid"))):
        for k in range(6):
            cells.append(BullseyeCell(first + k, ring, ring_name, (360.0 - 60.0 * k) % 360.0, 60.0))
    for k in range(4):
        cells.append(BullseyeCell(13 + k, 2, "apical", (360.0 - 90.0 * k) % 360.0, 90.0))
    cells.append(BullseyeCell(17, 3, "apex", 0.0, 360.0))
    return tuple(cells)


BULLSEYE: tuple[BullseyeCell, ...] = _bullseye()
