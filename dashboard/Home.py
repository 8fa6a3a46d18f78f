"""EchoCMR dashboard entry point: `streamlit run dashboard/Home.py`.

Routes to the pages in app_pages/ (a folder not named `pages`, so Streamlit's automatic
multipage discovery stays out of the way and the order and titles below are the only ones).
"""

import streamlit as st

from echocmr_app import auth

st.set_page_config(page_title="EchoCMR", page_icon=":material/cardiology:", layout="wide")
auth.gate()  # OIDC mode: only signed-in users with a role get past this line

PAGES = [
    st.Page("app_pages/overview.py", title="Home", icon=":material/home:", default=True),
    st.Page("app_pages/predict.py", title="Predict a study", icon=":material/ecg_heart:", url_path="predict"),
    st.Page("app_pages/results.py", title="Held-out results", icon=":material/monitoring:", url_path="results"),
    st.Page("app_pages/train.py", title="Train", icon=":material/model_training:", url_path="train"),
    st.Page("app_pages/data.py", title="Data", icon=":material/database:", url_path="data"),
    st.Page("app_pages/view_review.py", title="View review", icon=":material/fact_check:", url_path="view-review"),
]
if not auth.can("train"):  # viewers: no Train or View review page at all (both change models or labels)
    PAGES = [p for p in PAGES if p.url_path not in ("train", "view-review")]

st.navigation(PAGES).run()
