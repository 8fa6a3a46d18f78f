"""View review: confirm or correct the view classifier on a prepared cohort, least certain first, then fine-tune it."""

from pathlib import Path

import pandas as pd
import streamlit as st

from echocmr import run_control
from echocmr.config import data_home
from echocmr.prepared import open_clip, read_manifest
from echocmr.targets import CLASSIFIER_LABELS
from echocmr.view_finetune import FineTuneConfig, fine_tune_view_classifier, latest_report
from echocmr.view_review import VIEW_CONFIDENCE_THRESHOLD, classify_prepared, read_labels, review_queue, save_labels, view_counts
from echocmr_app import auth, formatting, layout, loaders

PAGE_SIZE = 8
VIEW_NAMES = {"A4C": "A4C", "A2C": "A2C", "PLAX": "PLAX", "other": "Other"}

st.title("View review")
auth.refuse_unless("train")  # confirming labels and fine-tuning are a researcher's actions
st.markdown("A view classifier trained on synthetic clips is not to be trusted on real echo. Confirm or "
            "correct its call on the clips of a prepared cohort — **least certain first** — then fine-tune "
            "it on what you confirmed.")
meta = loaders.active_model()
if meta is None:
    st.stop()
cohorts = run_control.list_prepared(data_home())
if not cohorts:
    st.info("No prepared cohort yet: make one on the **Train** page (or with `echocmr prepare`).",
            icon=":material/database:")
    st.stop()
prepared = st.selectbox("Prepared cohort", cohorts, format_func=lambda p: p.name)
synthetic = loaders.json_file(Path(prepared) / "prepare.json") or {}
layout.banner(bool(synthetic.get("synthetic")), "cohort")
bundle = loaders.load_bundle(meta["path"])


@st.cache_data(show_spinner="The view classifier is looking at every clip…", max_entries=4)
def predictions_for(path: str, classifier_sha: str, manifest_stamp: float) -> pd.DataFrame:
    return classify_prepared(Path(path), bundle.view_classifier)


manifest_stamp = (Path(prepared) / "manifest.csv").stat().st_mtime
predictions = predictions_for(str(prepared), bundle.view_classifier.meta.get("sha256", ""), manifest_stamp)
labels = read_labels(prepared)
fps = read_manifest(prepared).set_index("clip_id")["fps"]

counts = view_counts(predictions, labels)
left, right = st.columns([3, 2])
with left:
    st.dataframe(counts.rename(columns={
        "view": "View", "predicted": "Classifier says", "uncertain": f"of which below {VIEW_CONFIDENCE_THRESHOLD:.0%}",
        "confirmed": "Confirmed", "corrected": "of which corrected"}), hide_index=True, width="stretch")
with right:
    st.metric("Clips confirmed", f"{len(labels)} of {len(predictions)}")
    reviewer = st.text_input("Confirmed by", key="reviewer", placeholder="your name or initials",
                             help="Saved with every label you confirm.")

queue = review_queue(predictions, labels)
show_done = st.toggle("Show clips already confirmed", value=False)
if not show_done:
    queue = queue[queue["confirmed"] == ""]
pages = max(1, -(-len(queue) // PAGE_SIZE))
page = st.number_input(f"Page (of {pages}; {PAGE_SIZE} clips each, least certain first)", 1, pages, 1) if pages > 1 else 1
shown = queue.iloc[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]


def clip_card(row) -> None:
    with st.container(border=True):
        layout.play_clip(open_clip(prepared, row.clip_id), float(fps.get(row.clip_id, 30.0)), f"review-{prepared.name}-{row.clip_id}")
        flag = " · :orange[uncertain]" if row.confidence < VIEW_CONFIDENCE_THRESHOLD else ""
        done = f" · confirmed **{row.confirmed}**" if row.confirmed else ""
        st.caption(f"Classifier: **{row.predicted}** {formatting.pct(row.confidence)}{flag}{done}")
        default = row.confirmed or row.predicted
        st.radio(f"View of {row.clip_id}", CLASSIFIER_LABELS, index=CLASSIFIER_LABELS.index(default),
                 horizontal=True, format_func=VIEW_NAMES.get, key=f"review-{row.clip_id}")


if shown.empty:
    st.success("Every clip of this cohort is confirmed.", icon=":material/task_alt:")
else:
    with st.form("review"):
        columns = st.columns(4)
        for n, row in enumerate(shown.itertuples()):
            with columns[n % 4]:
                clip_card(row)
        save = st.form_submit_button(f"Confirm these {len(shown)} views", type="primary", icon=":material/check:")
    if save:
        try:
            save_labels(prepared, {r.clip_id: st.session_state[f"review-{r.clip_id}"] for r in shown.itertuples()},
                        reviewer, predictions)
        except Exception as exc:  # ConfigError: the message says what to fix
            st.error(str(exc), icon=":material/error:")
        else:
            st.rerun()

st.subheader("Fine-tune the view classifier")
st.caption("Warm start from the active model's classifier; trained on confirmed clips of the train split, "
           "tested on confirmed clips of the validation and test splits (other patients).")
epochs = st.number_input("Epochs", 1, 50, 3)
if st.button("Fine-tune on confirmed labels", icon=":material/model_training:"):
    out = data_home() / "runs" / run_control.new_run_name("view-classifier")
    start = Path(meta["path"]) / meta.get("view_classifier", "view_classifier")
    with st.spinner("Fine-tuning…"):
        try:
            fine_tune_view_classifier(prepared, start, out, FineTuneConfig(epochs=int(epochs)))
        except Exception as exc:  # ConfigError: too few labels, and so on
            st.error(str(exc), icon=":material/error:")

report = latest_report(prepared)
if report:
    before, after = report["before"], report["after"]
    st.markdown(f"**Held-out accuracy** on {after['n']} confirmed clips: "
                f"{formatting.estimate(after['accuracy'], after['ci_low'], after['ci_high'])} after fine-tuning, "
                f"{formatting.estimate(before['accuracy'], before['ci_low'], before['ci_high'])} before "
                f"({report['n_train']} training clips, {report['created']}).")
    per_view = pd.DataFrame([{"View": v, "Held-out clips": r["n"],
                              "Accuracy (95 % CI)": formatting.estimate(r["accuracy"], r["ci_low"], r["ci_high"])}
                             for v, r in after["per_view"].items()])
    conf = after["confusion"]
    matrix = pd.DataFrame(conf["matrix"], index=[f"confirmed {x}" for x in conf["labels"]],
                          columns=[f"says {x}" for x in conf["labels"]])
    a, b = st.columns(2)
    a.dataframe(per_view, hide_index=True, width="stretch")
    b.dataframe(matrix, width="stretch")
    st.caption(f"{report['interval']}; measured on {'a synthetic' if report.get('synthetic') else 'this'} cohort. "
               f"Saved as {Path(report['checkpoint']).parent.parent.name}/view_classifier/best.")
