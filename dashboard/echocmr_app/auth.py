"""Sign-in and roles on the pages (the rules themselves live in echocmr.access).

Local mode: nothing here shows. OIDC mode (ECHOCMR_AUTH=oidc): an anonymous visitor sees only
the sign-in button (Streamlit's st.login against the provider in .streamlit/secrets.toml); a
signed-in user without a role sees only a refusal; viewers get no training controls. The core
functions check the role again, so hiding a control is a courtesy, not the protection.
"""

from __future__ import annotations

import streamlit as st

from echocmr import access


def _email() -> str | None:
    email = st.user.get("email") if st.user.is_logged_in else None
    return str(email) if email else None


def current_actor() -> access.Actor | None:
    """The signed-in user and their role (None: local mode, anonymous, or no role)."""
    if access.auth_mode() == "local":
        return None
    email = _email()
    role = access.role_for(email)
    return access.Actor(email, role) if email and role else None


def can(action: str) -> bool:
    return access.allowed(current_actor(), action)


def gate() -> access.Actor | None:
    """Called first by Home.py: in OIDC mode, stop here unless a user with a role is signed in."""
    if access.auth_mode() == "local":
        return None
    if not st.user.is_logged_in:
        st.title("EchoCMR")
        st.markdown("This EchoCMR server requires sign-in.")
        st.button("Sign in", type="primary", on_click=st.login, icon=":material/login:")
        st.stop()
    actor = current_actor()
    if actor is None:
        st.title("EchoCMR")
        st.error("You are signed in, but your account has no role on this server. Ask its administrator.",
                 icon=":material/block:")
        st.button("Sign out", on_click=st.logout)
        st.stop()
    with st.sidebar:
        st.caption(f"Signed in as {actor.user} · {actor.role}")
        st.button("Sign out", on_click=st.logout, icon=":material/logout:")
    return actor


def refuse_unless(action: str) -> None:
    """A page only researchers use stops here for anyone else (a viewer given the URL)."""
    if not can(action):
        st.error("Your role does not allow this page.", icon=":material/block:")
        st.stop()
