"""The AHA 17-segment bullseye as a Plotly figure (barpolar: four rings, AHA layout).

Pure drawing: the layout (ring, angle, span of each segment) is ``echocmr.targets.BULLSEYE``
and every value comes from the core (``echocmr.segments`` for a study, ``echocmr.segment_eval``
for held-out AUROCs). Segments without a value are drawn light grey; segments whose AUROC was
withheld for too few cases are hatched grey.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import plotly.graph_objects as go

from echocmr.bootstrap_ci import format_interval
from echocmr.targets import AHA_SEGMENT_NAMES, BULLSEYE

NO_VALUE = "#E4E7EB"
WITHHELD = "#B8BEC6"
# Probability / AUROC: white → deep red reads as "more"; one scale on every bullseye.
SCALE = [[0.0, "#F7F7F7"], [0.5, "#F4A582"], [1.0, "#B2182B"]]
TRUTH_COLOURS = {0.0: "#F7F7F7", 1.0: "#B2182B"}


@dataclass(frozen=True)
class SegmentCell:
    """One segment as drawn: its value on the colour scale (NaN = none), hover and label."""

    segment: int
    value: float
    hover: str
    label: str
    hatched: bool = False


def figure(cells: list[SegmentCell], title: str, colour_range: tuple[float, float], colour_title: str,
           discrete: dict[float, str] | None = None) -> go.Figure:
    """The bullseye: ring 0 (basal) outermost, the apex in the centre, anterior at the top.

    ``discrete``: fixed colours per value (truth: 0/1) instead of the continuous scale."""
    by_segment = {c.segment: c for c in cells}
    layout = [b for b in BULLSEYE if b.segment in by_segment]
    low, high = colour_range
    colours, patterns = [], []
    for b in layout:
        cell = by_segment[b.segment]
        if cell.hatched:
            colours.append(WITHHELD)
        elif not math.isfinite(cell.value):
            colours.append(NO_VALUE)
        elif discrete is not None:
            colours.append(discrete.get(cell.value, NO_VALUE))
        else:
            colours.append(_colour((cell.value - low) / (high - low)))
        patterns.append("/" if cell.hatched else "")
    fig = go.Figure(go.Barpolar(
        r=[1.0] * len(layout), base=[3.0 - b.ring for b in layout], theta=[b.theta for b in layout],
        width=[b.width for b in layout], marker=dict(color=colours, line=dict(color="#52606D", width=1.2),
                                                     pattern=dict(shape=patterns, fgcolor="#52606D", size=6)),
        customdata=[by_segment[b.segment].hover for b in layout], hovertemplate="%{customdata}<extra></extra>",
        showlegend=False))
    # Segment labels at each cell's centre (the apex label sits in the middle).
    fig.add_trace(go.Scatterpolar(
        r=[0.0 if b.ring == 3 else 3.5 - b.ring for b in layout], theta=[b.theta for b in layout], mode="text",
        text=[by_segment[b.segment].label for b in layout], textfont=dict(size=11, color="#1F2933"),
        hoverinfo="skip", showlegend=False))
    if discrete is None:  # an invisible trace carries the colour bar
        fig.add_trace(go.Scatterpolar(r=[None], theta=[None], mode="markers", hoverinfo="skip", showlegend=False,
                                      marker=dict(color=[low], cmin=low, cmax=high, colorscale=SCALE, showscale=True,
                                                  colorbar=dict(title=colour_title, thickness=12, len=0.7))))
    fig.update_layout(
        title=title, height=420, showlegend=False,
        polar=dict(hole=0.0, radialaxis=dict(visible=False, range=[0, 4]),
                   angularaxis=dict(visible=False, rotation=90, direction="clockwise"), bgcolor="rgba(0,0,0,0)"))
    return fig


def _colour(fraction: float) -> str:
    """The colour of ``fraction`` (clipped to 0–1) on SCALE, as rgb()."""
    f = min(max(fraction, 0.0), 1.0)
    (p0, c0), (p1, c1) = next((SCALE[i], SCALE[i + 1]) for i in range(len(SCALE) - 1) if f <= SCALE[i + 1][0])
    t = 0.0 if p1 == p0 else (f - p0) / (p1 - p0)
    rgb = [round(int(c0[k:k + 2], 16) + t * (int(c1[k:k + 2], 16) - int(c0[k:k + 2], 16))) for k in (1, 3, 5)]
    return f"rgb({rgb[0]},{rgb[1]},{rgb[2]})"


def probability_cells(values: dict[int, float], views: dict[int, tuple[str, ...]]) -> list[SegmentCell]:
    """A study's predicted probability per segment (``echocmr.segments.SegmentMap`` of one finding)."""
    cells = []
    for segment, name in AHA_SEGMENT_NAMES.items():
        p = values.get(segment, math.nan)
        if math.isfinite(p):
            used = views.get(segment, ())
            hover = (f"<b>{segment}. {name}</b><br>predicted probability {100 * p:.0f} %"
                     + (f"<br>from {' + '.join(used)} clips" if used else ""))
            cells.append(SegmentCell(segment, p, hover, f"{segment}<br>{100 * p:.0f}%"))
        else:
            cells.append(SegmentCell(segment, math.nan, f"<b>{segment}. {name}</b><br>no used clip of a view "
                                                        "that shows this segment", str(segment)))
    return cells


def truth_cells(values: dict[int, float]) -> list[SegmentCell]:
    """CMR truth per segment: 1 abnormal, 0 normal, NaN not reported."""
    words = {1.0: "abnormal on CMR", 0.0: "normal on CMR"}
    return [SegmentCell(s, values.get(s, math.nan),
                        f"<b>{s}. {name}</b><br>{words.get(values.get(s, math.nan), 'not reported')}",
                        f"{s}<br>{'✚' if values.get(s) == 1.0 else ''}")
            for s, name in AHA_SEGMENT_NAMES.items()]


def auroc_cells(records: list, level: str) -> list[SegmentCell]:
    """Held-out AUROC per segment (``echocmr.segment_eval.SegmentRecord`` of one finding).

    ``level``: what the interval is (e.g. "95 % CI, BCa bootstrap of patients")."""
    cells = []
    for r in records:
        head = f"<b>{r.segment}. {r.name}</b> ({' + '.join(r.views)})"
        counts = f"{r.n} test studies, {r.n_positive} with the finding ({r.n_units_with} patients)"
        if r.status == "ok":
            hover = f"{head}<br>AUROC {r.auroc:.2f}<br>{level}: {format_interval(r.ci_low, r.ci_high)}<br>{counts}"
            cells.append(SegmentCell(r.segment, r.auroc, hover, f"{r.segment}<br>{r.auroc:.2f}"))
        elif r.status == "insufficient":
            cells.append(SegmentCell(r.segment, math.nan, f"{head}<br>{r.note}<br>{counts}", f"{r.segment}<br>n/a",
                                     hatched=True))
        else:
            cells.append(SegmentCell(r.segment, math.nan, f"{head}<br>{r.note}", str(r.segment)))
    return cells
