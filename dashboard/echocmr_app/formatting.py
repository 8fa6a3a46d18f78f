"""How the app writes numbers, times and states: percentages, values in units, estimates, badges.

Estimates with intervals use :func:`echocmr.table2.format_estimate`, the project's one
"value (interval)" formatter.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone

from echocmr.table2 import format_estimate
from echocmr.targets import TARGETS_BY_NAME


def is_finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def pct(x, digits: int = 0) -> str:
    """0.724 → '72 %' (probabilities, sensitivities)."""
    return f"{100 * x:.{digits}f} %" if is_finite(x) else "—"


def value(x, unit: str) -> str:
    """A measured / predicted value in its unit: '1034 ms', '28.4 %'."""
    if not is_finite(x):
        return "—"
    return f"{x:.0f} ms" if unit == "ms" else f"{x:.1f} {unit}".strip()


def target_value(name: str, x) -> str:
    """A model output: probability for binary targets, value in unit for continuous ones."""
    spec = TARGETS_BY_NAME.get(name)
    if spec is None or spec.kind == "binary":
        return pct(x)
    return value(x, spec.unit)


def target_label(name: str) -> str:
    spec = TARGETS_BY_NAME.get(name)
    if spec is None:
        return name
    return f"{spec.label} ({spec.unit})" if spec.unit else spec.label


def estimate(x: object, lo: object = None, hi: object = None, metric: str = "auroc", note: str | None = None) -> str:
    """'0.873 (0.816–0.922)'; without an interval, the value and the reason (``note``) if any; '—' if undefined."""
    return format_estimate(_number(x), _number(lo), _number(hi), metric, note or "", undefined="—")


def _number(x: object) -> float:
    return float(x) if is_finite(x) else math.nan


def duration(seconds) -> str:
    if not is_finite(seconds):
        return "—"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def when(iso: str | None) -> str:
    """ISO time → '2024-05-01 14:03 UTC' (records are written in UTC; older ones are converted)."""
    if not iso:
        return "—"
    try:
        moment = datetime.fromisoformat(str(iso))
    except ValueError:
        return str(iso)
    if moment.tzinfo is None:
        return moment.strftime("%Y-%m-%d %H:%M")
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def split_counts(counts: dict | None) -> str:
    """{'train': 80, 'val': 10, 'test': 10} → '100 (80 train · 10 validation · 10 test)'."""
    counts = counts or {}
    names = {"train": "train", "val": "validation", "test": "test"}
    parts = [f"{counts[k]} {names[k]}" for k in names if k in counts]
    return f"{sum(counts.values())} ({' · '.join(parts)})" if parts else "—"


def reason(message: str) -> str:
    """'[not_dicom] Not a DICOM file…' → 'Not a DICOM file…' (the code is for logs and tests)."""
    return message.split("] ", 1)[1] if message.startswith("[") and "] " in message else message


STATE_LABELS = {
    "running": ":blue-badge[:material/autorenew: running]",
    "starting": ":blue-badge[:material/hourglass_top: starting]",
    "finished": ":green-badge[:material/check: finished]",
    "stopped": ":orange-badge[:material/pause: stopped]",
    "diverged": ":red-badge[:material/warning: diverged]",
    "failed": ":red-badge[:material/error: failed]",
    "failed to start": ":red-badge[:material/error: failed to start]",
}


def state_badge(state: str) -> str:
    return STATE_LABELS.get(state, f":gray-badge[{state}]")


def model_name(view: str | None) -> str:
    return {"view_classifier": "View classifier", None: "—"}.get(view, f"{view} model")
