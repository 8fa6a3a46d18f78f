"""Files per second of ``echocmr index`` (headers only) over a synthetic export of many files.

Writes N small multi-frame ultrasound DICOM files (each with its own UIDs; pixel data of a real
size so that reading it would show) plus 10 % non-ultrasound and 10 % stills, then indexes them
with ``--workers`` processes. Last line: ``files_per_second: <rate>``.

    python bench/index_files.py [--files 5000] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from echocmr.archive_index import build_index, process_mapper


def write_file(path: Path, modality: str, frames: int) -> None:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = (
        "1.2.840.10008.5.1.4.1.1.3.1" if modality == "US" else "1.2.840.10008.5.1.4.1.1.2")
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.PatientID, ds.StudyDate = modality, "BENCH0001", "20240102"
    ds.Rows, ds.Columns, ds.NumberOfFrames, ds.SamplesPerPixel = 120, 160, frames, 1
    ds.PhotometricInterpretation, ds.BitsAllocated, ds.BitsStored, ds.HighBit = "MONOCHROME2", 8, 8, 7
    ds.PixelRepresentation, ds.FrameTime = 0, 20.0
    ds.PixelData = np.zeros((frames, 120, 160), np.uint8).tobytes()  # ~1 MB for 50 frames
    pydicom.dcmwrite(path, ds, enforce_file_format=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="echocmr-index-bench-") as tmp:
        root = Path(tmp) / "export"
        for k in range(args.files):
            folder = root / f"P{k // 100:04d}"
            folder.mkdir(parents=True, exist_ok=True)
            kind = k % 10
            write_file(folder / f"IM{k:06d}", "CT" if kind == 0 else "US", 1 if kind == 1 else 50)
        started = time.perf_counter()
        summary = build_index([root], Path(tmp) / "echo_index.csv", process_mapper(args.workers))
        seconds = time.perf_counter() - started
    print(f"files: {summary.files_seen}; rows: {summary.rows}; skipped: {summary.skipped}; {seconds:.2f} s "
          f"with {args.workers} workers; machine load average {os.getloadavg()[0]:.1f} during the run")
    print(f"files_per_second: {summary.files_seen / seconds:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
