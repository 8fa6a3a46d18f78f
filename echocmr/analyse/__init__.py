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

# Measured on 2 CPU cores with the two analyses running side by side (about one core each), cpu-demo
# preset, one view; said by the CLI's --help and the Train page.
LEARNING_CURVE_TIME = ("fractions 0.25,0.5,1 of the demo's 400 patients took 38 min "
                       "(6, 11 and 21 min per cell)")
POWER_TIME = ("a cell took 4.4-6.7 min at 100 patients and 12-15 min at 200; the default grid "
              "(4 signals x 100,200,400 patients) is about 2-3 h")


class AnalysisError(EchoCMRError, ValueError):
    """An analysis cannot run on its inputs; ``code`` is stable, the message PHI-free."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code

    def __str__(self) -> str:
        return f"[{self.code}] {self.args[0]}"
