"""Analyses that ask whether a model's signal is real (issue #17).

* :mod:`.delong` — DeLong's test for two correlated AUROCs (fast midrank algorithm).
* :mod:`.compare` — paired comparison of two results bundles (or views vs fused) on the same
  test patients: patient-bootstrap ΔAUROC and DeLong.
* :mod:`.confounders` — AUROC within strata (WMA-negative, LVEF ≥ 50 %) and incremental value of
  the echo model over LVEF + WMA (+ wall thickness): ΔAUROC and a likelihood-ratio test.
* :mod:`.curves` — learning curve and detectable-signal power grid (resumable cells).
* :mod:`.figures` — Plotly figures of the above (no Streamlit here).

No Streamlit and no I/O outside the functions that say so: the dashboard calls these and draws.
"""

from __future__ import annotations

from ..errors import EchoCMRError


class AnalysisError(EchoCMRError, ValueError):
    """An analysis cannot run on its inputs; ``code`` is stable, the message PHI-free."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code

    def __str__(self) -> str:
        return f"[{self.code}] {self.args[0]}"
