"""Index a PACS export (folders, DICOMDIR files, zips) into ``echo_index.csv`` from headers only.

Structure: ``list_locations`` enumerates what to look at, ``index_location`` is a pure per-file
function (location -> ``IndexRecord``: a row or a skip reason), and ``build_index`` maps it over
the locations with any ``map``-like executor (processes here; a distributed executor plugs in the
same way), journalling every record so an interrupted run over a million files resumes where it
stopped. Pixel data is never read: pydicom stops before it, and every read is bounded.

The index stays on the hospital side: it holds the patient ids needed to pair studies with CMR
reports. Everything ``prepare`` writes from it is pseudonymous.
"""

from __future__ import annotations

import csv
import io
import json
import os
import zipfile
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

from .atomic import append_line, atomic_write_text, read_json_lines
from .errors import InputError

ZIP_SEPARATOR = "::"  # "export.zip::DICOM/IM001": a member inside a zip
MAX_HEADER_BYTES = 8 * 1024 * 1024  # a header larger than this is refused as unreadable
DEFER_BYTES = 64 * 1024  # values larger than this are skipped, not loaded
SKIP_REASONS = ("not_dicom", "not_ultrasound", "single_frame", "unreadable", "duplicate_sop_instance",
                "dicomdir")
COLUMNS = ("patient_id", "study_id", "study_date", "file", "series_id", "sop_instance_uid", "accession",
           "frames", "frame_rate", "rows", "cols", "manufacturer", "model", "transfer_syntax", "colour",
           "bits", "view_hint")
US_SOP_CLASSES = {"1.2.840.10008.5.1.4.1.1.6.1", "1.2.840.10008.5.1.4.1.1.3.1",
                  "1.2.840.10008.5.1.4.1.1.6", "1.2.840.10008.5.1.4.1.1.3"}
DICOMDIR_CLASS = "1.2.840.10008.1.3.10"
# Header fields a view can be read from, in order of how specific they usually are.
VIEW_HINT_KEYWORDS = ("ViewName", "SeriesDescription", "ImageComments", "ProtocolName")
KNOWN_VIEWS = ("A4C", "A2C", "A3C", "A5C", "PLAX", "PSAX", "SAX", "SUBCOSTAL", "SUBCOST", "SC4C",
               "SUPRASTERNAL", "SSN", "RV", "IVC", "DOPPLER", "COLOR", "COLOUR")


@dataclass(frozen=True)
class IndexRecord:
    """What one location gave: a row (``skip`` empty) or the reason it was skipped."""

    location: str
    skip: str = ""
    row: dict | None = None


class _BoundedReader:
    """A read-only view of a stream that refuses to go past ``limit`` bytes (header bombs)."""

    name = "<bounded>"  # pydicom records a name; never the real path (it may hold PHI)

    def __init__(self, raw, limit: int):
        self._raw, self._limit = raw, limit

    def tell(self) -> int:
        return self._raw.tell()

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._raw.seek(offset, whence)

    def read(self, size: int = -1) -> bytes:
        left = self._limit - self._raw.tell()
        if left <= 0 and size != 0:
            raise InputError("header_too_large", "the DICOM header exceeds the header read limit")
        return self._raw.read(left if size is None or size < 0 else min(size, left))

    def close(self) -> None:
        self._raw.close()


# --------------------------------------------------------------------------- locations

def list_locations(archives: Iterable[str | os.PathLike]) -> Iterator[str]:
    """Every file to look at: folders walked (sorted), zips opened, DICOMDIRs followed."""
    for archive in archives:
        path = Path(archive)
        if path.is_dir():
            for folder, dirs, names in os.walk(path):
                dirs.sort()
                for name in sorted(names):
                    yield from _file_locations(Path(folder) / name)
        elif path.is_file():
            if path.name.upper() == "DICOMDIR":
                yield from dicomdir_locations(path)
            else:
                yield from _file_locations(path)
        else:
            raise InputError("unreadable", "an archive given to index does not exist")


def _file_locations(path: Path) -> Iterator[str]:
    if path.suffix.lower() == ".zip" and zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as zf:
                names = [i.filename for i in zf.infolist() if not i.is_dir()]
        except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError):
            yield str(path)  # indexed as one unreadable file
            return
        for name in names:
            yield f"{path}{ZIP_SEPARATOR}{name}"
    else:
        yield str(path)


def dicomdir_locations(path: Path) -> Iterator[str]:
    """The files a DICOMDIR references that exist inside its folder (never outside it)."""
    import pydicom

    from .ingest.gate import PARSE_ERRORS, quiet_pydicom

    root = path.parent.resolve()
    try:
        with quiet_pydicom():
            ds = pydicom.dcmread(str(path))
            ids = [r.get("ReferencedFileID") for r in ds.get("DirectoryRecordSequence", [])]
    except PARSE_ERRORS + (pydicom.errors.InvalidDicomError,):
        yield str(path)
        return
    for file_id in ids:
        if not file_id:
            continue
        parts = [file_id] if isinstance(file_id, str) else list(file_id)
        target = (root / Path(*[str(p) for p in parts])).resolve()
        if target.is_relative_to(root) and target.is_file():
            yield str(target)


# --------------------------------------------------------------------------- one location

def _open(location: str):
    if ZIP_SEPARATOR in location:
        archive, member = location.split(ZIP_SEPARATOR, 1)
        zf = zipfile.ZipFile(archive)
        try:
            return zf, zf.open(member)
        except BaseException:
            zf.close()
            raise
    return None, open(location, "rb")


def open_location(location: str, max_bytes: int) -> str | bytes:
    """A plain file's path as is; a zip member's bytes (bounded, CRC-checked by zipfile)."""
    if ZIP_SEPARATOR not in location:
        return location
    try:
        zf, raw = _open(location)
    except (OSError, KeyError, zipfile.BadZipFile, ValueError):
        raise InputError("unreadable", "the zip member could not be opened") from None
    try:
        data = raw.read(max_bytes + 1)
    except (OSError, zipfile.BadZipFile, ValueError, EOFError):
        raise InputError("unreadable", "the zip member could not be read") from None
    finally:
        raw.close()
        zf.close()
    if len(data) > max_bytes:
        raise InputError("too_large", f"a zip member exceeds {max_bytes} bytes")
    return data


def read_header(location: str, limit: int | None = None):
    """The dataset up to (not including) the pixel data, reading at most ``limit`` bytes."""
    import pydicom

    from .ingest.gate import PARSE_ERRORS, quiet_pydicom

    try:
        zf, raw = _open(location)
    except (KeyError, zipfile.BadZipFile, ValueError):
        raise InputError("unreadable", "the zip member could not be opened") from None
    try:
        preamble = raw.read(132)
        if len(preamble) < 132 or preamble[128:132] != b"DICM":
            raise InputError("not_dicom", "no DICOM preamble")
        raw.seek(0)
        with quiet_pydicom():
            ds = pydicom.dcmread(_BoundedReader(raw, limit or MAX_HEADER_BYTES), stop_before_pixels=True,
                                 defer_size=DEFER_BYTES)
            ds.get("Modality")  # force parsing of the elements we need inside the handler
        return ds
    except InputError:
        raise
    except PARSE_ERRORS + (pydicom.errors.InvalidDicomError, zipfile.BadZipFile):
        raise InputError("unreadable", "the DICOM header could not be parsed") from None
    finally:
        raw.close()
        if zf is not None:
            zf.close()


def _text(ds, keyword: str) -> str:
    try:
        value = ds.get(keyword, "")
    except Exception:  # noqa: BLE001 — a malformed value reads as missing
        return ""
    return " ".join(str(value or "").split())[:64]


def _int(ds, keyword: str) -> int | None:
    try:
        return int(ds.get(keyword))
    except (TypeError, ValueError):
        return None


def _iso_date(value: str) -> str:
    """DICOM DA (YYYYMMDD) as ISO YYYY-MM-DD, the format echo_index.csv uses."""
    return f"{value[:4]}-{value[4:6]}-{value[6:8]}" if len(value) == 8 and value.isdigit() else value


def view_hint(ds) -> str:
    """A view named in a header field (e.g. "A4C" in SeriesDescription); empty when none is."""
    for keyword in VIEW_HINT_KEYWORDS:
        words = _text(ds, keyword).upper().replace("-", " ").replace("_", " ").split()
        for view in KNOWN_VIEWS:
            if view in words:
                return view
    return ""


def _row(location: str, ds) -> dict:
    from .ingest.dicom import frame_rate

    try:
        fps, source = frame_rate(ds)
    except Exception:  # noqa: BLE001
        fps, source = 0.0, "default"
    return {
        "patient_id": _text(ds, "PatientID"), "study_id": _text(ds, "StudyInstanceUID"),
        "study_date": _iso_date(_text(ds, "StudyDate")), "file": location, "series_id": _text(ds, "SeriesInstanceUID"),
        "sop_instance_uid": _text(ds, "SOPInstanceUID"), "accession": _text(ds, "AccessionNumber"),
        "frames": _int(ds, "NumberOfFrames") or 1, "frame_rate": round(fps, 3) if source != "default" else "",
        "rows": _int(ds, "Rows"), "cols": _int(ds, "Columns"), "manufacturer": _text(ds, "Manufacturer"),
        "model": _text(ds, "ManufacturerModelName"),
        "transfer_syntax": _text(getattr(ds, "file_meta", {}), "TransferSyntaxUID"),
        "colour": _text(ds, "PhotometricInterpretation"), "bits": _int(ds, "BitsAllocated"),
        "view_hint": view_hint(ds),
    }


def index_location(location: str) -> IndexRecord:
    """Pure per-file step: a row for a multi-frame ultrasound cine, else the reason it is skipped."""
    try:
        ds = read_header(location)
    except InputError as exc:
        return IndexRecord(location, "not_dicom" if exc.code == "not_dicom" else "unreadable")
    except OSError:
        return IndexRecord(location, "unreadable")
    sop_class = _text(getattr(ds, "file_meta", {}), "MediaStorageSOPClassUID") or _text(ds, "SOPClassUID")
    if sop_class == DICOMDIR_CLASS:
        return IndexRecord(location, "dicomdir")
    modality = _text(ds, "Modality").upper()
    if (modality and modality != "US") or (not modality and sop_class not in US_SOP_CLASSES):
        return IndexRecord(location, "not_ultrasound")  # the same rule as ingestion's gate
    if not _int(ds, "Rows") or not _int(ds, "Columns"):  # a header cut short before the image
        return IndexRecord(location, "unreadable")
    if (_int(ds, "NumberOfFrames") or 1) < 2:
        return IndexRecord(location, "single_frame")
    row = _row(location, ds)
    if not row["study_id"] or not row["sop_instance_uid"]:
        return IndexRecord(location, "unreadable")
    return IndexRecord(location, "", row)


# --------------------------------------------------------------------------- the map step

Mapper = Callable[[Callable[[str], IndexRecord], Iterable[str]], Iterable[IndexRecord]]


def process_mapper(workers: int, chunksize: int = 64) -> Mapper:
    """``map`` over a process pool (``workers`` 1: in this process); yields in input order."""
    def run(fn, items):
        if workers <= 1:
            yield from map(fn, items)
            return
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers) as pool:
            yield from pool.map(fn, items, chunksize=chunksize)
    return run


@dataclass(frozen=True)
class IndexSummary:
    rows: int
    files_seen: int
    skipped: dict[str, int]
    resumed: int


def journal_path(out: Path) -> Path:
    return out.with_name(out.name + ".partial.jsonl")


def build_index(archives: list[str | os.PathLike], out: str | os.PathLike, mapper: Mapper | None = None,
                progress: Callable[[int], None] | None = None, flush_every: int = 500) -> IndexSummary:
    """Index ``archives`` into ``out`` (CSV), resuming from ``out``'s journal when one exists."""
    out = Path(out)
    journal = journal_path(out)
    done = {r["location"] for r in read_json_lines(journal)}
    todo = (loc for loc in list_locations(archives) if loc not in done)
    pending: list[str] = []
    for record in (mapper or process_mapper(1))(index_location, todo):
        pending.append(json.dumps(asdict(record)))
        if len(pending) >= flush_every:
            append_line(journal, "\n".join(pending))  # one fsync per block, not per file
            pending.clear()
        if progress:
            progress(1)
    if pending:
        append_line(journal, "\n".join(pending))
    summary = finalise(journal, out)
    return IndexSummary(summary.rows, summary.files_seen, summary.skipped, len(done))


def finalise(journal: Path, out: Path) -> IndexSummary:
    """Journal -> CSV (atomic), duplicates of a SOP instance dropped, file paths relative to ``out``."""
    records = [IndexRecord(**r) for r in read_json_lines(journal)]
    skipped: Counter = Counter(r.skip for r in records if r.skip)
    seen: set[str] = set()
    rows = []
    for record in sorted((r for r in records if r.row), key=lambda r: r.location):
        row = record.row or {}
        if row["sop_instance_uid"] in seen:
            skipped["duplicate_sop_instance"] += 1
            continue
        seen.add(row["sop_instance_uid"])
        rows.append({**row, "file": _relative(row["file"], out.parent)})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out, buffer.getvalue())
    journal.unlink(missing_ok=True)
    return IndexSummary(len(rows), len(records), {k: skipped.get(k, 0) for k in SKIP_REASONS}, 0)


def _relative(location: str, base: Path) -> str:
    path, sep, member = location.partition(ZIP_SEPARATOR)
    try:
        rel = os.path.relpath(Path(path).resolve(), base.resolve())
    except ValueError:  # another drive on Windows
        rel = str(Path(path).resolve())
    return Path(rel).as_posix() + sep + member

