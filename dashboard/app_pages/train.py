"""Train: launch, watch, stop, resume and evaluate training runs (separate processes, see echocmr.run_control)."""

import dataclasses

import streamlit as st

from echocmr import processes, run_control
from echocmr.config import PRESETS, data_home, preset
from echocmr.targets import MODEL_VIEWS
from echocmr.trust import redact_paths
from echocmr_app import analyses_view, auth, charts, formatting, guard, layout, loaders, study_cache

st.title("Train a model")
auth.refuse_unless("train")
home, runs_dir = data_home(), loaders.runs_dir()
actor = auth.current_actor()  # the core functions check the role again
st.caption("Runs are kept in the data folder; they keep going if you close this page.")


@st.fragment(run_every=2)
def data_job(log) -> None:
    job = processes.job_status(log)
    st.markdown(f"Synthetic data set: {formatting.state_badge(job.state)}")
    st.code(redact_paths(job.log_tail) or "…", language=None)
    if job.state != "running":
        st.rerun()  # the new data set appears in the form


def dataset_section() -> None:
    log = processes.latest_job(home / "jobs", "synthetic-data")
    running = log is not None and processes.job_status(log).state == "running"
    with st.expander("Generate a synthetic data set", expanded=not run_control.list_prepared(home) or running):
        st.markdown("A computer-generated cohort of echo studies with paired CMR reports, prepared for "
                    "training (views taken from the generator). Takes a minute or two.")
        patients = st.number_input("Patients", 8, 2000, 40, step=8)
        if st.button("Generate and prepare", disabled=running, icon=":material/science:"):
            job = guard.attempt(run_control.make_synthetic_dataset, home, int(patients), actor=actor)
            log, running = (job.log, True) if job else (log, running)
        if log is not None and running:
            data_job(log)
        elif log is not None and processes.job_status(log).state in ("failed", "interrupted"):
            st.error("The last synthetic data set could not be made:", icon=":material/error:")
            st.code(redact_paths(processes.job_status(log).log_tail), language=None)


def start_form(prepared) -> None:
    names = list(PRESETS)
    # Without a GPU the paper's recipe takes days: offer the small CPU recipe first.
    name = st.selectbox("Recipe", names, index=0 if study_cache.gpu_available() else names.index("cpu-demo"),
                        help="paper: the published recipe (R(2+1)D-18, GPU); cpu-demo: a small model that trains in "
                             "minutes on a CPU; cpu-default: the shipped model's recipe (cpu-demo for 7 epochs, "
                             "best epoch by the findings' validation AUROC)")
    base = preset(name)
    with st.form("train"):
        data = st.selectbox("Prepared data set", prepared, format_func=lambda p: p.name)
        views = st.multiselect("Views", MODEL_VIEWS, default=list(base.views))
        c1, c2, c3 = st.columns(3)
        epochs = c1.number_input("Epochs (max., early stopping)", 1, 500, base.epochs)
        batch = c2.number_input("Batch size (clips)", 1, 256, base.batch_size)
        gpu = study_cache.gpu_available()
        device = c3.radio("Device", ["cpu", "cuda"], index=int(gpu and base.device != "cpu"), horizontal=True,
                          format_func={"cpu": "CPU", "cuda": "GPU"}.get, disabled=not gpu,
                          help=None if gpu else "No GPU found on this machine")
        if st.form_submit_button("Start training", type="primary", icon=":material/play_arrow:") and views:
            config = dataclasses.replace(base, views=tuple(views), epochs=int(epochs), batch_size=int(batch), device=device)
            info = guard.attempt(run_control.start_run, config, data, runs_dir, actor=actor)
            if info is not None:
                st.session_state["run"] = info.name
                st.toast("Training started", icon=":material/model_training:")


def actions(info) -> None:
    evaluation = run_control.evaluation_status(info.path)
    has_results = (info.path / "results" / "summary.json").exists()
    c1, c2, c3, c4 = st.columns(4)
    if c1.button("Stop", disabled=not info.active, icon=":material/stop:", help="Saves the last epoch, then stops"):
        with st.spinner("Stopping (the current epoch's checkpoint is saved first)…"):
            outcome = guard.attempt(run_control.stop_run, info.path, grace_s=20, actor=actor)
            if outcome:
                st.toast(f"Run {outcome}")
    if c2.button("Resume", disabled=info.active or info.state == "finished", icon=":material/resume:"):
        guard.attempt(run_control.resume_run, info.path, actor=actor)
    if c3.button("Evaluate (test set)", disabled=info.active or evaluation.state == "running", icon=":material/fact_check:"):
        guard.attempt(run_control.start_evaluation, info.path, actor=actor)
    if c4.button("Make active model", disabled=not has_results, icon=":material/verified:",
                 help=None if has_results else "Evaluate the run first"):
        with st.spinner("Building the model bundle…"):
            made = guard.attempt(run_control.make_active_model, info.path, home / "models", actor=actor)
        if made is not None:
            st.toast("This run is now the active model", icon=":material/verified:")
    if evaluation.state != "none":
        st.markdown(f"Held-out evaluation: {formatting.state_badge(evaluation.state)}")
        if evaluation.state in ("running", "failed", "interrupted"):
            st.code(redact_paths(evaluation.log_tail) or "…", language=None)


@st.fragment(run_every=2)
def live(run_dir) -> None:
    p = run_control.read_progress(run_dir)
    info = p.info
    st.markdown(f"### {info.name} {formatting.state_badge(info.state)}")
    if info.message and info.message not in ("started", "resumed"):
        st.caption(redact_paths(info.message))
    c1, c2, c3 = st.columns(3)
    c1.metric("Model", formatting.model_name(info.view))
    c2.metric("Epoch", f"{info.epoch or 0} / {info.epochs or '—'}")
    c3.metric("Time left (at most)", formatting.duration(p.eta_s))
    if info.active and p.batch and p.batches:
        st.progress(min(1.0, p.batch / p.batches), text=f"Batch {p.batch} of {p.batches}")
    if not p.metrics.empty:
        views = list(dict.fromkeys(p.metrics["view"]))
        view = st.radio("Curves for", views, index=views.index(info.view) if info.view in views else len(views) - 1,
                        horizontal=True, key=f"curves-{info.name}", format_func=formatting.model_name)
        for column, (kind, fig) in zip(st.columns(2), charts.training_curves(p.metrics, view)):
            with column:
                layout.show_figure(fig, f"{info.name}-{view}-{kind}", html_download=False)
    with st.expander("Log (last lines)", expanded=info.state.startswith(("failed", "interrupted", "diverged"))):
        st.code(redact_paths(p.log_tail) or "…", language=None)
    actions(info)
    if st.session_state.get(f"was-active-{info.name}") and not info.active:
        st.session_state[f"was-active-{info.name}"] = False
        st.rerun()  # refresh the run list once the run ends
    st.session_state[f"was-active-{info.name}"] = info.active


dataset_section()
prepared = run_control.list_prepared(home)
if prepared:
    with st.expander("Start a new run", expanded=True):
        start_form(prepared)
all_runs = run_control.list_runs(runs_dir)
if not all_runs:
    st.info("No training runs yet.")
    st.stop()
by_name = {r.name: r for r in all_runs}
if st.session_state.get("run") not in by_name:
    st.session_state["run"] = all_runs[0].name  # newest first
name = st.selectbox("Run", list(by_name), key="run", format_func=lambda n: (
    f"{n} — {by_name[n].state}, started {formatting.when(by_name[n].started)}"))
live(by_name[name].path)
analyses_view.train_panel(by_name[name].path, home)
