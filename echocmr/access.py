"""Who may do what, and a record of what they did (no Streamlit here: the core enforces it).

Two deployment modes (README, "Security"):

* ``local`` (default, ``ECHOCMR_AUTH`` unset or ``off``): the app listens on 127.0.0.1 only;
  whoever can reach it is the operator, and every action is allowed.
* ``oidc`` (``ECHOCMR_AUTH=oidc``): the dashboard signs users in through Streamlit's OpenID
  Connect support; each user gets a role from the roles file. A *viewer* may predict and browse
  results; only a *researcher* may generate data, start, stop, resume or evaluate runs and
  change the active model. These checks run in the core functions (``echocmr.run_control``), so a
  crafted widget event from a viewer's browser is refused whatever the page showed.

Roles file (``ECHOCMR_ROLES``, default ``$ECHOCMR_HOME/roles.toml``)::

    researchers = ["alice@hospital.example"]
    viewers = ["*"]            # "*": any signed-in user; otherwise a list of e-mail addresses

The audit log (``$ECHOCMR_HOME/audit.jsonl``) has one JSON line per allowed or refused action:
time, user (the staff e-mail the provider vouched for), role, action, outcome and the run or
model name. It never holds patient data: run names are generated, inputs are not named.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import tomllib

from .atomic import append_line
from .config import data_home
from .errors import EchoCMRError

ROLES = ("viewer", "researcher")
# Actions only a researcher may take; everything else (predict, browse) is open to viewers.
RESEARCHER_ACTIONS = frozenset({"synthesise", "train", "stop", "resume", "evaluate", "activate"})
MAX_ROLES_BYTES = 1 << 20


class AccessDenied(EchoCMRError):
    """The signed-in user's role does not allow this action (``code``: sign_in_required / forbidden)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Actor:
    """A signed-in user: ``user`` is the identity the provider vouched for, ``role`` from ROLES."""

    user: str
    role: str


def auth_mode() -> str:
    """``"oidc"`` when sign-in is required, else ``"local"``."""
    return "oidc" if os.environ.get("ECHOCMR_AUTH", "").strip().lower() == "oidc" else "local"


def roles_path() -> Path:
    return Path(os.environ.get("ECHOCMR_ROLES") or data_home() / "roles.toml")


def role_for(user: str | None, path: Path | None = None) -> str | None:
    """The role of ``user`` (an e-mail) under the roles file; None: not allowed in at all."""
    if not user:
        return None
    path = path or roles_path()
    try:
        if path.stat().st_size > MAX_ROLES_BYTES:
            raise AccessDenied("bad_roles", "the roles file is too large")
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None  # no roles file: nobody gets in (fail closed)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        raise AccessDenied("bad_roles", "the roles file is not valid TOML") from None
    user = user.strip().lower()
    for role, key in (("researcher", "researchers"), ("viewer", "viewers")):
        members = {str(m).strip().lower() for m in table.get(key, []) if isinstance(m, str)}
        if user in members or "*" in members:
            return role
    return None


def allowed(actor: Actor | None, action: str) -> bool:
    if auth_mode() == "local":
        return True
    if actor is None or actor.role not in ROLES:
        return False
    return actor.role == "researcher" or action not in RESEARCHER_ACTIONS


def authorize(actor: Actor | None, action: str, target: str = "") -> None:
    """Allow ``action`` for ``actor`` or raise ``AccessDenied``; either way, audit it."""
    ok = allowed(actor, action)
    audit(actor, action, target, "allowed" if ok else "refused")
    if ok:
        return
    if actor is None:
        raise AccessDenied("sign_in_required", "sign in to do this")
    raise AccessDenied("forbidden", f"your role ({actor.role}) may not {action}; ask a researcher")


def audit(actor: Actor | None, action: str, target: str, outcome: str) -> None:
    """One JSON line in ``$ECHOCMR_HOME/audit.jsonl`` (no patient data: see the module doc)."""
    record = {"time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "user": actor.user if actor else ("local operator" if auth_mode() == "local" else "anonymous"),
              "role": actor.role if actor else None, "action": action, "target": Path(target).name if target else "",
              "outcome": outcome}
    append_line(audit_path(), json.dumps(record))


def audit_path() -> Path:
    return data_home() / "audit.jsonl"


def read_audit(limit: int = 1000) -> list[dict]:
    from .atomic import read_json_lines

    return list(read_json_lines(audit_path()))[-limit:]
