"""Header de-identification (PS3.15 Annex E basic profile, applied as an allow-list) and pseudonyms.

``deidentify_dataset`` is for any DICOM header that is persisted. It does not touch Pixel Data:
burned-in text is handled by the sector mask in the pixel pipeline, not here.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import hmac

STANDARD_UID_ROOT = "1.2.840.10008."  # DICOM-defined UIDs (SOP classes, syntaxes) identify nobody
METHOD = "EchoCMR PS3.15 E.1 basic profile; dates shifted"  # LO: at most 64 characters

# Text-valued attributes kept verbatim (device description and coded concepts only).
KEEP_TEXT = {
    "Manufacturer", "ManufacturerModelName", "SoftwareVersions", "TransducerData", "TransducerType",
    "CodeValue", "CodingSchemeDesignator", "CodingSchemeVersion", "CodeMeaning", "ContextIdentifier",
    "MappingResource", "ContextGroupVersion", "LongCodeValue", "URNCodeValue",
    "DeidentificationMethod", "PatientIdentityRemoved",
}
TEXT_VRS = {"LO", "SH", "ST", "LT", "UT", "UC", "AE", "UR"}
# Emptied rather than removed (type-2 attributes that must stay present).
EMPTY = {"PatientBirthDate", "PatientSex", "AccessionNumber", "ReferringPhysicianName", "StudyID",
         "StudyTime", "ContentTime", "SeriesTime", "AcquisitionTime", "InstanceCreationTime"}
# Removed wherever they occur (Annex E "X" actions whose VR is not caught by the rules below).
REMOVE = {"IconImageSequence", "PatientAge", "PatientSize", "PatientWeight", "OtherPatientIDsSequence",
          "ReferencedPatientSequence", "RequestAttributesSequence", "PatientBirthTime",
          "EthnicGroup", "PregnancyStatus", "SmokingStatus", "DataSetTrailingPadding",
          "AcquisitionDateTime", "FrameAcquisitionDateTime", "InstanceCreatorUID",
          "ReferencedStudySequence", "ReferencedPerformedProcedureStepSequence", "OriginalAttributesSequence",
          "DigitalSignaturesSequence", "MACParametersSequence", "EncryptedAttributesSequence"}


def _digest(value: str, salt: bytes, purpose: str) -> bytes:
    """Keyed hash (HMAC-SHA256, key = salt): stable for a salt, unlinkable without it."""
    return hmac.new(salt, f"{purpose}\x1f{value}".encode("utf-8"), hashlib.sha256).digest()


def pseudonym(value: str, salt: bytes, prefix: str) -> str:
    """Stable short id: ``prefix`` + 10 hex characters of a keyed hash of ``value``."""
    return prefix + _digest(str(value), salt, "id").hex()[:10]


def pseudonymous_uid(uid: str, salt: bytes) -> str:
    """'2.25.' + a 128-bit integer derived from ``uid``: valid (≤ 64 chars) and stable."""
    return "2.25." + str(int.from_bytes(_digest(uid.strip(), salt, "uid")[:16], "big"))


def date_shift_days(patient_key: str, salt: bytes) -> int:
    """Days (1..3650) every date of one patient moves back: intervals between studies survive."""
    return 1 + int.from_bytes(_digest(patient_key, salt, "date")[:4], "big") % 3650


def _shift_date(value: str, days: int) -> str:
    try:
        return (dt.datetime.strptime(value.strip()[:8], "%Y%m%d") - dt.timedelta(days=days)).strftime("%Y%m%d")
    except ValueError:
        return ""


def _element_rule(elem, salt: bytes, days: int):
    """What to do with one element: 'delete', 'empty', or a replacement value (None: keep)."""
    tag, vr, kw = elem.tag, elem.VR, elem.keyword
    if tag.is_private or (tag.group & 0xFF00) in (0x6000, 0x5000) or kw in REMOVE:
        return "delete"  # private tags, overlays, curves, icons
    if kw in EMPTY or vr == "TM":
        return "empty"
    if vr == "PN":
        return "delete"  # every other person name (operators, physicians, other names)
    if vr == "UI":
        values = elem.value if elem.VM > 1 else [elem.value]
        mapped = [str(v) if str(v).startswith(STANDARD_UID_ROOT) else pseudonymous_uid(str(v), salt) for v in values if v]
        return mapped if elem.VM > 1 else (mapped[0] if mapped else "empty")
    if vr == "DA":
        return _shift_date(str(elem.value or ""), days) or "empty"
    if vr == "DT":
        shifted = _shift_date(str(elem.value or ""), days)
        return shifted or "empty"
    if vr in TEXT_VRS and kw not in KEEP_TEXT:
        return "delete"  # free text, names of places and devices, IDs
    if vr in ("OB", "OW", "UN") and kw != "PixelData" and not kw.endswith("LookupTableData"):
        return "delete"  # opaque blobs can hold anything
    return None


def deidentify_dataset(ds, salt: bytes):
    """A de-identified deep copy of ``ds`` (pydicom Dataset); ``ds`` itself is untouched.

    Removes private tags, overlays, curves, icon images, free text and names; empties type-2
    identifiers; maps instance UIDs to stable pseudonymous UIDs; shifts dates back by a
    per-patient offset; replaces PatientID/PatientName by a pseudonym; records the method.
    """
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    out = copy.deepcopy(ds)
    patient_key = str(ds.get("PatientID", "") or "") + "\x1f" + str(ds.get("PatientName", "") or "")
    days = date_shift_days(patient_key, salt)

    def visit(dataset, elem) -> None:
        action = _element_rule(elem, salt, days)
        if action == "delete":
            del dataset[elem.tag]
        elif action == "empty":
            elem.value = None if elem.VR == "SQ" else ""
        elif action is not None:
            elem.value = action

    out.walk(visit, recursive=True)
    if getattr(out, "file_meta", None) is not None:
        meta = out.file_meta
        for kw in ("MediaStorageSOPInstanceUID",):
            if kw in meta and not str(meta[kw].value).startswith(STANDARD_UID_ROOT):
                meta[kw].value = pseudonymous_uid(str(meta[kw].value), salt)
        for kw in ("SourceApplicationEntityTitle", "SendingApplicationEntityTitle",
                   "ReceivingApplicationEntityTitle", "PrivateInformation"):
            if kw in meta:
                del meta[kw]
    pid = pseudonym(patient_key, salt, "P")
    out.PatientID = pid
    out.PatientName = pid
    out.PatientIdentityRemoved = "YES"
    out.DeidentificationMethod = METHOD
    out.LongitudinalTemporalInformationModified = "MODIFIED"
    if "BurnedInAnnotation" not in out:
        out.BurnedInAnnotation = "YES"  # unknown means assume text in the pixels
    codes = []
    for value, meaning in (("113100", "Basic Application Confidentiality Profile"),
                           ("113107", "Retain Longitudinal Temporal Information Modified Dates Option")):
        item = Dataset()
        item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, "DCM", meaning
        codes.append(item)
    out.DeidentificationMethodCodeSequence = Sequence(codes)
    return out
