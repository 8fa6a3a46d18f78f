"""Predict page pieces for real-size studies: the "From PACS" source and clips grouped by view.

The PACS is configured in ``.streamlit/secrets.toml`` (table ``[pacs]``: url, auth = "none" |
"basic" | "bearer", username, password, token, verify_tls, ca_bundle). Only the URL is shown;
passwords and tokens never reach the page or a log. A study is fetched into memory (never to
disk) and predicted like an upload. No science here: echocmr.pacs searches, echocmr.study_prediction predicts.
"""

from __future__ import annotations

import datetime as dt
from typing import Callable

import streamlit as st

from echocmr.pacs import PacsConfig, PacsError, StudyQuery, StudySummary, connect, search_studies, study_sources
from echocmr.targets import MODEL_VIEWS

SEARCH_BY = ("Patient ID", "Accession number", "Study dates")
SECRETS_HINT = ("No PACS is configured. Add a `[pacs]` table to `.streamlit/secrets.toml` with `url` "
                "(the DICOMweb root) and, if the PACS needs it, `auth` (\"basic\" or \"bearer\") with "
                "`username`/`password` or `token`; `verify_tls`, `ca_bundle` for TLS.")


def pacs_config() -> PacsConfig | None:
    try:
        table = st.secrets.get("pacs")
    except Exception:  # noqa: BLE001 — no secrets file at all
        table = None
    if not table:
        st.info(SECRETS_HINT, icon=":material/settings:")
        return None
    try:
        return PacsConfig.from_mapping(dict(table))
    except PacsError as exc:
        st.error(f"The PACS settings in secrets.toml are not usable: {exc}", icon=":material/error:")
        return None
    except TypeError:
        st.error("The PACS settings in secrets.toml are not usable: check the value types.", icon=":material/error:")
        return None


def _query(by: str) -> StudyQuery | None:
    if by == "Patient ID":
        value = st.text_input("Patient ID", key="pacs-patient").strip()
        return StudyQuery(patient=value) if value else None
    if by == "Accession number":
        value = st.text_input("Accession number", key="pacs-accession").strip()
        return StudyQuery(accession=value) if value else None
    today = dt.date.today()
    dates = st.date_input("Study dates (from – to)", value=(today - dt.timedelta(days=30), today),
                          key="pacs-dates", format="YYYY-MM-DD")
    if not isinstance(dates, (tuple, list)) or len(dates) != 2:
        return None
    return StudyQuery(since=dates[0].strftime("%Y%m%d"), until=dates[1].strftime("%Y%m%d"))


def _fetch(config: PacsConfig, study_uid: str) -> list[tuple[str, bytes]]:
    """The study's ultrasound instances, in memory, kept in this user's session only (never in a
    cache shared between sessions, never on disk); a new pick replaces the previous study."""
    held = st.session_state.get("pacs-sources")
    if not held or held[0] != study_uid:
        st.session_state["pacs-sources"] = (study_uid, study_sources(config, study_uid))
    return st.session_state["pacs-sources"][1]


def _label(study: StudySummary) -> str:
    date = f"{study.date[:4]}-{study.date[4:6]}-{study.date[6:]}" if len(study.date) == 8 else study.date or "no date"
    return f"{date} · {study.n_ultrasound} ultrasound files · {study.description or 'no description'}"


def choose_pacs_sources() -> list[tuple[str, bytes]]:
    """Search, pick a study, fetch it: its files as (name, bytes), or [] until one is chosen."""
    config = pacs_config()
    if config is None:
        return []
    st.caption(f"PACS: {config.safe_url} · authentication: {config.auth}")
    by = st.radio("Search by", SEARCH_BY, horizontal=True, key="pacs-by")
    query = _query(by)
    if st.button("Search the PACS", icon=":material/search:", disabled=query is None):
        try:
            st.session_state["pacs-studies"] = search_studies(connect(config), query)
        except PacsError as exc:
            st.error(f"The search failed: {exc}", icon=":material/cloud_off:")
            return []
        st.session_state.pop("pacs-study", None)
        st.session_state.pop("pacs-sources", None)
    studies = st.session_state.get("pacs-studies")
    if studies is None:
        return []
    if not studies:
        st.warning("No study with ultrasound matches this search.", icon=":material/search_off:")
        return []
    chosen = st.radio(f"{len(studies)} studies with ultrasound", range(len(studies)), format_func=lambda k: _label(studies[k]),
                      key="pacs-choice")
    if st.button("Predict this study", icon=":material/play_circle:"):
        st.session_state["pacs-study"] = studies[chosen].study_uid
    uid = st.session_state.get("pacs-study")
    if not uid:
        return []
    try:
        with st.spinner("Retrieving the study from the PACS (in memory)…"):
            return _fetch(config, uid)
    except PacsError as exc:
        st.error(f"The study could not be retrieved: {exc}", icon=":material/cloud_off:")
        return []


def show_clips_by_view(pred, card: Callable[[object], None], names: dict[str, str]) -> None:
    """Clips feeding each view model first (two columns per view); the others collapsed, with why."""
    for view in MODEL_VIEWS:
        fed = [c for c in pred.clips if c.used_for == view]
        count = "1 clip feeds" if len(fed) == 1 else f"{len(fed)} clips feed"
        st.markdown(f"**{names.get(view, view)}** — {count} the {view} model"
                    + ("" if fed else " (none: this view is missing from the fused prediction)"))
        columns = st.columns(2)
        for n, clip in enumerate(fed):
            with columns[n % 2]:
                card(clip)
    unused = [c for c in pred.clips if not c.used_for]
    if unused:
        with st.expander(f"{len(unused)} clips not used by any model (other views, stills, unsure or too short)",
                         icon=":material/visibility_off:"):
            for clip in unused:
                st.markdown(f"**{clip.display_name}** · {names.get(clip.view, clip.view)} · "
                            f"{clip.clip.n_frames} frame{'s' * (clip.clip.n_frames != 1)} — {clip.left_out}")
                card(clip, compact=True)
