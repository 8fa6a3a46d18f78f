"""The Results page's "Is the signal real?" tab: paired comparisons and the analyses of issue #17.

Draws only: comparisons are computed by ``echocmr.analyse.report.run_comparison``, analyses are
read from ``<results>/analyses/*.json`` (written by ``echocmr analyse …`` / ``echocmr compare``),
figures come from ``echocmr.analyse.figures``.
"""

from pathlib import Path

import pandas as pd
import streamlit as st

from echocmr.analyse import LEARNING_CURVE_TIME, POWER_TIME, AnalysisError
from echocmr.analyse.figures import figures_for
from echocmr.analyse.launch import RUN_ANALYSES, analysis_log, cells_done, power_folder, start_analysis, start_power
from echocmr.analyse.report import list_analyses, read_analysis, run_comparison
from echocmr_app import formatting, layout

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
        layout.show_figure(fig, f"{key}-{i}", html_download=False)


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
    layout.csv_download(frame, "comparison")


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


def power_results() -> None:
    """The power grid launched on this machine (not tied to a model), when there is one."""
    from echocmr.config import data_home

    path = power_folder(data_home()) / "power.json"
    if path.is_file():
        st.subheader("Detectable tissue signal (power grid run on this machine)")
        _show_record(read_analysis(path), "power-home")


def render(results_path: str, choices: dict[str, str]) -> None:
    """The whole tab for the results folder ``results_path`` (``choices``: label → results folder)."""
    comparisons(results_path, choices)
    precomputed(results_path)
    power_results()


# ---------------------------------------------------------------- launching (Train page)

def _job_panel(log: Path, cells_folder: Path | None) -> None:
    from echocmr import processes

    job = processes.job_status(log)
    if job.state == "none":
        return
    done = f" · {cells_done(cells_folder)} cells finished" if cells_folder is not None else ""
    st.markdown(f"{log.stem.replace('analysis-', '').capitalize()}: {formatting.state_badge(job.state)}{done}")
    if job.state in ("running", "failed", "interrupted"):
        st.code(job.log_tail or "…", language=None)


def train_panel(run_dir: Path, home: Path) -> None:
    """Launch and watch a run's analyses and the power grid; results appear on the Results page."""
    with st.expander("Is the signal real? Analyses (results on the Results page)"):
        evaluated = (run_dir / "results" / "predictions.csv").is_file()
        st.caption("Confounders: under a minute. Learning curve: trains one view (A4C, cpu-demo) at 25, 50 and "
                   f"100 % of the training patients; {LEARNING_CURVE_TIME}. "
                   "Both resume if launched again." + ("" if evaluated else " Evaluate the run first."))
        c1, c2 = st.columns(2)
        for column, kind in zip((c1, c2), RUN_ANALYSES):
            running = ui_running(analysis_log(run_dir, kind))
            if column.button(f"Run {kind.replace('-', ' ')}", disabled=not evaluated or running, key=f"an-{kind}",
                             icon=":material/query_stats:"):
                start_analysis(run_dir, kind)
        watch(run_dir, home)
        st.markdown("**Detectable tissue signal** (new synthetic cohorts; not tied to this run). "
                    f"On 2 cores shared with another analysis, {POWER_TIME}.")
        with st.form("power"):
            signals = st.text_input("Planted tissue_signal values", "0,0.25,0.5,1")
            sizes = st.text_input("Cohort sizes (patients)", "100,200,400")
            if st.form_submit_button("Run power grid", icon=":material/science:"):
                try:
                    start_power(home, [float(v) for v in signals.split(",")], [int(v) for v in sizes.split(",")])
                except ValueError:
                    st.error("Give comma-separated numbers.")


def ui_running(log: Path) -> bool:
    from echocmr import processes

    return processes.job_status(log).state == "running"


@st.fragment(run_every=3)
def watch(run_dir: Path, home: Path) -> None:
    _job_panel(analysis_log(run_dir, "confounders"), None)
    _job_panel(analysis_log(run_dir, "learning-curve"), run_dir / "results" / "analyses")
    _job_panel(power_folder(home).parent / "power.log", power_folder(home))
