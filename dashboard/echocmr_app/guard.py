"""Quotas and refusals on the pages: upload caps per session and in total, and core actions whose
refusal (a role, a quota, a run that cannot be evaluated) is shown as a plain message. The rules
live in ``echocmr.quotas`` and ``echocmr.access``; this only connects them to the session."""

from __future__ import annotations

from typing import Any, Callable

import streamlit as st


@st.cache_resource(show_spinner=False)
def upload_ledger():
    """One ledger per server process: upload bytes held by every browser session."""
    from echocmr.quotas import Quotas, UploadLedger

    return UploadLedger(Quotas.from_env())


def upload_limits() -> str:
    """The true upload limits, in words, for the uploader's help and caption."""
    from echocmr.config import IngestLimits
    from echocmr.quotas import upload_limits_text

    return upload_limits_text(upload_ledger().quotas, IngestLimits().max_file_bytes)


def session_id() -> str:
    """This browser session's id (the decoder pool's and the upload ledger's fairness key)."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return ctx.session_id if ctx else "no-session"


def claim_uploads(sizes: list[int]) -> bool:
    """Record this session's uploads against the quotas; False (and a plain message) if over."""
    from echocmr.quotas import QuotaExceeded

    try:
        upload_ledger().claim(session_id(), sizes)
    except QuotaExceeded as exc:
        st.error(str(exc), icon=":material/block:")
        return False
    return True


def attempt(action: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a core action; a refusal is shown as a plain error on the page instead of a traceback
    (with no server paths). Returns None when refused."""
    from echocmr.errors import EchoCMRError
    from echocmr.trust import redact_paths

    try:
        return action(*args, **kwargs)
    except (EchoCMRError, OSError) as exc:
        st.error(redact_paths(str(exc)), icon=":material/block:")
        return None
