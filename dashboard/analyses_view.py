"""The Results page's "Is the signal real?" tab: paired comparisons and the analyses of issue #17.

Draws only: comparisons are computed by ``echocmr.analyse.report.run_comparison``, analyses are
read from ``<results>/analyses/*.json`` (written by ``echocmr analyse …`` / ``echocmr compare``),
figures come from ``echocmr.analyse.figures``.
"""

from pathlib import Path

import pandas as pd
import streamlit as st

import ui
from echocmr.analyse import AnalysisError
from echocmr.analyse.figures import figures_for
from echocmr.analyse.report import list_analyses, read_analysis, run_comparison

HOW_TO = """Nothing precomputed for these results yet. From a terminal:

```
echocmr analyse confounders --run RESULTS --data PREPARED --out RESULTS/analyses
echocmr analyse learning-curve --data PREPARED --out RESULTS/analyses
echocmr analyse power --signal 0,0.25,0.5,1 --patients 100,200,400 --out RESULTS/analyses
```"""
COMPARISON_COLUMNS = {"target": "finding", "model_a": "A", "model_b": "B", "n_studies": "studies",
                      "n_positive": "with finding", "auc_a": "AUROC A", "auc_b": "AUROC B", "delta": "ΔAUROC",
                      "ci_low": "CI low", "ci_high": "CI high", "delong_p": "DeLong p", "note": "note"}


@st.cache_data(show_spinner="Comparing on the same test patients…", max_entries=16)
def _compare(path_a: str, path_b: str | None, stamp: tuple) -> dict:
    return run_comparison(path_a, path_b, n_bootstrap=2000)


def _stamp(path: str) -> float:
    file = Path(path) / "predictions.csv"
    return file.stat().st_mtime if file.exists() else 0.0


def _show_record(record: dict, key: str) -> None:
    st.caption(record["title"])
    for i, fig in enumerate(figures_for(record)):
        fig.update_layout(title_text=fig.layout.title.text.split("<br>")[0])  # the caption says the rest
        ui.show_figure(fig, f"{key}-{i}", html_download=False)


def comparisons(results_path: str, choices: dict[str, str]) -> None:
    st.subheader("Compare models on the same test patients")
    others = {label: p for label, p in choices.items() if p != results_path}
    modes = ["Each view vs fused"] + (["These results vs another run"] if others else [])
    mode = st.radio("Comparison", modes, horizontal=True, key="compare-mode")
    other = None
    if mode != modes[0]:
        other = others[st.selectbox("Run B", list(others), key="compare-b")]
    try:
        record = _compare(results_path, other, (_stamp(results_path), _stamp(other) if other else 0.0))
    except AnalysisError as exc:
        st.error(f"Cannot compare: {exc}")
        return
    frame = pd.DataFrame(record["rows"]).rename(columns=COMPARISON_COLUMNS)[list(COMPARISON_COLUMNS.values())]
    _show_record(record, "compare")
    st.dataframe(frame.round(3), hide_index=True, width="stretch")
    ui.csv_download(frame, "comparison")


def precomputed(results_path: str) -> None:
    st.subheader("Confounders, learning curve, detectable signal")
    found = {name: p for name, p in list_analyses(Path(results_path) / "analyses").items()
             if not name.startswith("compare")}
    if not found:
        st.info(HOW_TO)
        return
    for name, path in found.items():
        try:
            record = read_analysis(path)
        except (AnalysisError, ValueError) as exc:
            st.error(f"{name}: unreadable analysis file ({exc})")
            continue
        with st.expander(name.replace("_", " ").capitalize(), expanded=True):
            _show_record(record, name)
            if record["kind"] == "confounders":
                st.dataframe(pd.DataFrame(record["incremental"]).round(3), hide_index=True, width="stretch")


def render(results_path: str, choices: dict[str, str]) -> None:
    """The whole tab for the results folder ``results_path`` (``choices``: label → results folder)."""
    comparisons(results_path, choices)
    precomputed(results_path)
