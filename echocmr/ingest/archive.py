"""Zip archives: validated as a whole before any member is read; members read in memory.

Refused outright (one error for the whole archive — nothing is half-imported): too many entries,
declared sizes or compression ratios beyond the limits, absolute or ``..`` paths, symlinks,
encrypted entries, duplicate names, nested archives and DICOMDIR indexes.
"""

from __future__ import annotations

import io
import posixpath
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass

from ..config import IngestLimits
from ..errors import InputError

# What a corrupt member can raise while being inflated or CRC-checked.
_MEMBER_ERRORS = (zipfile.BadZipFile, zlib.error, OSError, ValueError, EOFError, RuntimeError, NotImplementedError)


@dataclass(frozen=True)
class Member:
    """A regular file in a validated archive: its 1-based position and its ZipInfo."""

    position: int
    info: zipfile.ZipInfo


def _unsafe_path(name: str) -> bool:
    if not name or "\x00" in name or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return True
    parts = name.replace("\\", "/").split("/")
    return any(p == ".." for p in parts)


def _check_entry(info: zipfile.ZipInfo, seen: set[str], limits: IngestLimits) -> None:
    name = info.filename
    if _unsafe_path(name):
        raise InputError("zip_unsafe_path", "an archive entry has an absolute or parent-directory path")
    norm = posixpath.normpath(name.replace("\\", "/")).lower()
    if norm in seen:
        raise InputError("zip_duplicate", "the archive has two entries with the same name")
    seen.add(norm)
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise InputError("zip_symlink", "the archive contains a symbolic link")
    if info.flag_bits & 0x1:
        raise InputError("zip_encrypted", "the archive contains an encrypted entry")
    if info.is_dir():
        return
    base = posixpath.basename(name.replace("\\", "/")).upper()
    if base == "DICOMDIR":
        raise InputError("zip_dicomdir", "the archive contains a DICOMDIR index; give the image files only")
    if base.endswith((".ZIP", ".JAR", ".7Z", ".GZ", ".TGZ", ".TAR", ".RAR")):
        raise InputError("zip_nested", "the archive contains another archive")
    if info.file_size > limits.max_file_bytes:
        raise InputError("too_large", f"an archive member declares {info.file_size} bytes; the limit is {limits.max_file_bytes}")
    if info.file_size > limits.max_zip_ratio * max(info.compress_size, 1):
        raise InputError("zip_bomb", f"an archive member's compression ratio exceeds {limits.max_zip_ratio:g}")


def _declared_entries(data: bytes) -> int | None:
    """Entry count from the end-of-central-directory record, or None when it cannot be read.

    Read before ``zipfile`` parses the directory: 100,000 tiny entries would otherwise cost
    100,000 ZipInfo objects before the entry limit is even looked at.
    """
    at = data.rfind(b"PK\x05\x06", max(0, len(data) - 65557))
    if at < 0 or at + 22 > len(data):
        return None
    count = struct.unpack("<H", data[at + 10:at + 12])[0]
    return None if count == 0xFFFF else count  # 0xFFFF: a zip64 record holds the real count


def _check_overlap(infos: list[zipfile.ZipInfo]) -> None:
    """Entries whose compressed bytes overlap (the "overlapping files" zip bomb: many entries
    sharing one highly compressed kernel) are refused; honest archives never overlap."""
    spans = sorted((i.header_offset, i.header_offset + 30 + len(i.orig_filename.encode("utf-8", "replace"))
                    + i.compress_size) for i in infos)
    for (_, end), (start, _) in zip(spans, spans[1:]):
        if start < end:
            raise InputError("zip_overlap", "archive entries overlap each other (a zip bomb construction)")


def open_archive(data: bytes, limits: IngestLimits) -> tuple[zipfile.ZipFile, list[Member]]:
    """Validate the archive's directory; return it with its regular-file members in order."""
    declared = _declared_entries(data)
    if declared is not None and declared > limits.max_zip_entries:
        raise InputError("zip_too_many_entries", f"the archive has {declared} entries; the limit is {limits.max_zip_entries}")
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, NotImplementedError,
            struct.error, UnicodeDecodeError):  # e.g. "zip file version 25.5" is NotImplementedError
        raise InputError("bad_zip", "the archive is corrupt or not a zip file") from None
    if len(infos) > limits.max_zip_entries:
        raise InputError("zip_too_many_entries", f"the archive has {len(infos)} entries; the limit is {limits.max_zip_entries}")
    seen: set[str] = set()
    total = 0
    for info in infos:
        _check_entry(info, seen, limits)
        total += info.file_size
    _check_overlap(infos)
    if total > limits.max_zip_total_bytes:
        raise InputError("zip_too_large", f"the archive declares {total} bytes; the limit is {limits.max_zip_total_bytes}")
    members = [Member(k + 1, i) for k, i in enumerate(i for i in infos if not i.is_dir())]
    if not members:
        raise InputError("zip_empty", "the archive holds no files")
    for member in members:  # content sniff: a renamed inner archive is still an archive
        if _peek(zf, member) in (b"PK\x03\x04", b"PK\x05\x06"):
            raise InputError("zip_nested", f"archive member {member.position} is itself an archive")
    return zf, members


def _peek(zf: zipfile.ZipFile, member: Member) -> bytes:
    try:
        with zf.open(member.info) as fh:
            return fh.read(4)
    except _MEMBER_ERRORS:
        raise InputError("bad_zip", f"archive member {member.position} could not be read") from None


def read_member(zf: zipfile.ZipFile, member: Member, limits: IngestLimits) -> bytes:
    """The member's bytes, never more than its declared size (or the file limit) in memory."""
    cap = min(member.info.file_size, limits.max_file_bytes)
    try:
        with zf.open(member.info) as fh:
            data = fh.read(cap + 1)
    except _MEMBER_ERRORS:
        raise InputError("bad_zip", f"archive member {member.position} could not be read") from None
    if len(data) > cap:
        raise InputError("zip_bomb", f"archive member {member.position} inflates beyond its declared size")
    if data[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        raise InputError("zip_nested", f"archive member {member.position} is itself an archive")
    return data
