"""DICOMweb (QIDO-RS / WADO-RS) access to a PACS through ``dicomweb-client``.

``PacsConfig`` is the one typed configuration the CLI (``pull``, ``predict --dicomweb``) and the
dashboard (``.streamlit/secrets.toml``, section ``[pacs]``) share. Secrets (password, token) are
kept out of ``repr`` and of every message; errors say what failed (unreachable, 401, 500…), never
with credentials or patient identifiers.
"""

from __future__ import annotations

import io
import logging
import os
from dataclasses import dataclass, field
from typing import Iterator, Mapping
from urllib.parse import urlsplit, urlunsplit

from .errors import EchoCMRError

US_MODALITY = "US"
AUTH_KINDS = ("none", "basic", "bearer")
# dicomweb-client logs the UIDs of what it fetches at INFO; the project's logs carry no identifiers.
logging.getLogger("dicomweb_client").setLevel(logging.WARNING)


class PacsError(EchoCMRError):
    """The PACS could not be queried or answered with an error.

    ``code``: ``pacs_unreachable``, ``pacs_unauthorised``, ``pacs_server_error``,
    ``pacs_bad_response``, ``pacs_config``.
    """

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code

    def __str__(self) -> str:
        return f"[{self.code}] {self.args[0]}"


@dataclass(frozen=True)
class PacsConfig:
    """Where the DICOMweb service is and how to sign in. Secrets never appear in ``repr``."""

    url: str
    auth: str = "none"  # none | basic | bearer
    username: str = ""
    password: str = field(default="", repr=False)
    token: str = field(default="", repr=False)
    verify_tls: bool = True
    ca_bundle: str = ""  # a CA file for a hospital's own certificate authority
    timeout_s: float = 30.0

    def __post_init__(self):
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise PacsError("pacs_config", "the DICOMweb URL must start with http:// or https://")
        if parts.username or parts.password:
            raise PacsError("pacs_config", "put credentials in the configuration, not in the URL")
        if self.auth not in AUTH_KINDS:
            raise PacsError("pacs_config", f"auth must be one of {AUTH_KINDS}")
        if self.auth == "basic" and not (self.username and self.password):
            raise PacsError("pacs_config", "basic authentication needs a username and a password")
        if self.auth == "bearer" and not self.token:
            raise PacsError("pacs_config", "bearer authentication needs a token")

    @property
    def safe_url(self) -> str:
        """The URL without query (a token could hide there) for messages."""
        parts = urlsplit(self.url)
        return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))

    @staticmethod
    def from_mapping(values: Mapping, **overrides) -> "PacsConfig":
        """From a ``[pacs]`` table (``secrets.toml``) or a dict; unknown keys are refused."""
        known = {f for f in PacsConfig.__dataclass_fields__}
        merged = {**dict(values), **{k: v for k, v in overrides.items() if v is not None}}
        unknown = sorted(set(merged) - known)
        if unknown:
            raise PacsError("pacs_config", f"unknown PACS settings: {', '.join(unknown)}")
        return PacsConfig(**merged)

    @staticmethod
    def from_cli(url: str, auth: str = "none", username: str = "", insecure: bool = False,
                 ca_bundle: str = "") -> "PacsConfig":
        """CLI: secrets come from the environment (ECHOCMR_PACS_PASSWORD / ECHOCMR_PACS_TOKEN),
        never from the command line, where other users and shell history would see them."""
        return PacsConfig(url, auth, username, os.environ.get("ECHOCMR_PACS_PASSWORD", ""),
                          os.environ.get("ECHOCMR_PACS_TOKEN", ""), not insecure, ca_bundle)


@dataclass(frozen=True)
class StudyQuery:
    """Exactly one of patient / accession / study, or a date range (``since``, ``until`` YYYYMMDD)."""

    patient: str = ""
    accession: str = ""
    study: str = ""
    since: str = ""
    until: str = ""

    def filters(self) -> dict[str, str]:
        chosen = [bool(self.patient), bool(self.accession), bool(self.study), bool(self.since or self.until)]
        if sum(chosen) != 1:
            raise PacsError("pacs_config", "search by exactly one of patient id, accession, study UID or dates")
        if self.since or self.until:
            for value in (self.since, self.until):
                if value and not (len(value) == 8 and value.isdigit()):
                    raise PacsError("pacs_config", "dates are YYYYMMDD (or YYYY-MM-DD)")
            return {"StudyDate": f"{self.since}-{self.until}"}
        key = {"patient": "PatientID", "accession": "AccessionNumber", "study": "StudyInstanceUID"}
        field_name = next(k for k, on in zip(key, chosen) if on)
        return {key[field_name]: getattr(self, field_name)}


def dicom_date(text: str) -> str:
    """"2024-03-01" or "20240301" -> "20240301"; empty stays empty."""
    return text.replace("-", "") if text else ""


@dataclass(frozen=True)
class StudySummary:
    study_uid: str
    date: str
    description: str
    accession: str
    n_ultrasound: int  # ultrasound instances (clips and stills) in the study


@dataclass(frozen=True)
class InstanceRef:
    study_uid: str
    series_uid: str
    sop_uid: str


def connect(config: PacsConfig):
    """A ``DICOMwebClient`` on a session carrying the configured authentication and TLS settings."""
    import requests
    from dicomweb_client.api import DICOMwebClient

    session = requests.Session()
    if config.auth == "basic":
        session.auth = (config.username, config.password)
    elif config.auth == "bearer":
        session.headers["Authorization"] = f"Bearer {config.token}"
    session.verify = config.ca_bundle or config.verify_tls
    # requests has no session-wide timeout; wrapping the bound method is its documented workaround.
    session.request = _with_timeout(session.request, config.timeout_s)  # type: ignore[method-assign]
    client = DICOMwebClient(url=config.url, session=session)
    client.set_http_retry_params(retry=True, max_attempts=3, wait_exponential_multiplier=200)
    return client


def _with_timeout(request, timeout_s: float):
    def call(*args, **kwargs):
        kwargs.setdefault("timeout", timeout_s)
        return request(*args, **kwargs)
    return call


def _translate(exc: Exception) -> PacsError:
    """Any failure of a PACS call -> a PacsError whose message names no secret or identifier."""
    import requests

    if isinstance(exc, PacsError):
        return exc
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    if status in (401, 403):
        return PacsError("pacs_unauthorised", f"the PACS refused the credentials (HTTP {status})")
    if status is not None and status >= 500:
        return PacsError("pacs_server_error", f"the PACS failed to answer (HTTP {status})")
    if status is not None:
        return PacsError("pacs_bad_response", f"the PACS answered HTTP {status}")
    if isinstance(exc, requests.exceptions.SSLError):
        return PacsError("pacs_unreachable", "the PACS's TLS certificate could not be verified")
    if isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout)):
        return PacsError("pacs_unreachable", "the PACS could not be reached (is the URL right and the server up?)")
    return PacsError("pacs_bad_response", f"the PACS answer could not be read ({type(exc).__name__})")


def _call(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 — every failure becomes one clear PacsError
        raise _translate(exc) from None


def _value(item: dict, tag: str) -> str:
    values = (item.get(tag) or {}).get("Value") or [""]
    value = values[0]
    if isinstance(value, dict):  # a person name
        value = value.get("Alphabetic", "")
    return str(value)


def ultrasound_series(client, study_uid: str) -> list[tuple[str, int]]:
    """(series UID, instance count) of the study's ultrasound series; other modalities skipped."""
    found = _call(client.search_for_series, study_uid,
                  fields=["Modality", "NumberOfSeriesRelatedInstances"])
    out = []
    for item in found:
        if _value(item, "00080060").upper() == US_MODALITY:
            count = _value(item, "00201209")
            out.append((_value(item, "0020000E"), int(count) if count.isdigit() else 0))
    return out


def search_studies(client, query: StudyQuery, limit: int = 500) -> list[StudySummary]:
    """Studies matching ``query`` that hold ultrasound, newest first."""
    items = _call(client.search_for_studies, search_filters=query.filters(), limit=limit,
                  fields=["StudyDate", "StudyDescription", "AccessionNumber"])
    studies = []
    for item in items:
        uid = _value(item, "0020000D")
        series = ultrasound_series(client, uid)
        if series:
            studies.append(StudySummary(uid, _value(item, "00080020"), _value(item, "00081030"),
                                        _value(item, "00080050"), sum(n for _, n in series)))
    return sorted(studies, key=lambda s: s.date, reverse=True)


def ultrasound_instances(client, study_uid: str) -> list[InstanceRef]:
    refs = []
    for series_uid, _ in ultrasound_series(client, study_uid):
        for item in _call(client.search_for_instances, study_uid, series_uid):
            refs.append(InstanceRef(study_uid, series_uid, _value(item, "00080018")))
    return refs


def retrieve_bytes(client, ref: InstanceRef) -> bytes:
    """One instance as Part-10 bytes in its stored transfer syntax (never transcoded)."""
    import pydicom

    ds = _call(client.retrieve_instance, ref.study_uid, ref.series_uid, ref.sop_uid,
               media_types=(("application/dicom", "*"),))
    buffer = io.BytesIO()
    try:
        pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    except Exception as exc:  # noqa: BLE001
        raise PacsError("pacs_bad_response", f"an instance could not be re-encoded ({type(exc).__name__})") from None
    return buffer.getvalue()


def iter_study_bytes(client, study_uid: str) -> Iterator[bytes]:
    """The ultrasound instances of one study, in memory, one at a time."""
    for ref in ultrasound_instances(client, study_uid):
        yield retrieve_bytes(client, ref)


def study_sources(config: PacsConfig, study_uid: str) -> list[tuple[str, bytes]]:
    """One study's ultrasound instances as in-memory (name, bytes) for ``predict.ingest_study``;
    nothing is written to disk."""
    client = connect(config)
    sources = [(f"instance {k}", data) for k, data in enumerate(iter_study_bytes(client, study_uid), start=1)]
    if not sources:
        raise PacsError("pacs_not_found", "the PACS has no ultrasound instances for this study")
    return sources
