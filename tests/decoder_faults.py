"""Real (not injected) decoder faults, built from tests/dicom_factory.py.

``aborting_jpeg_lossless``: a JPEG-lossless ultrasound DICOM with one corrupted marker byte
(an RST7 marker where the lossless stream's header expects another byte). GDCM throws an
uncaught C++ exception on it and the decoding process dies with SIGABRT.
``scrambled_middle_frame``: a multi-frame baseline JPEG DICOM whose middle frame's entropy
data is scrambled; libjpeg still returns an image and only prints "Corrupt JPEG data".
"""

from __future__ import annotations

import random
from pathlib import Path

import dicom_factory as F

ABORT_OFFSET = 38  # bytes after the first frame's SOI (found by a mutation search; see below)
ABORT_BYTE = 0xD7


def aborting_jpeg_lossless(path: Path) -> Path:
    path = F.write_dicom(path, F.make_scene(n_frames=3), syntax="jpeg_lossless")
    data = bytearray(path.read_bytes())
    soi = data.find(b"\xff\xd8")
    data[soi + ABORT_OFFSET] = ABORT_BYTE
    path.write_bytes(bytes(data))
    return path


def scrambled_middle_frame(path: Path, n_frames: int = 5) -> Path:
    scene = F.make_scene(n_frames=n_frames, seed=3)
    frames = F.encode_jpeg_frames(scene.rgb)
    middle = bytearray(frames[n_frames // 2])
    sos = middle.find(b"\xff\xda")
    start = sos + 2 + int.from_bytes(middle[sos + 2:sos + 4], "big")
    rng = random.Random(7)
    for i in range(start + 20, len(middle) - 2, 3):  # scramble the entropy-coded bytes
        middle[i] = rng.randrange(256)
    frames[n_frames // 2] = bytes(middle)
    return F.write_dicom(path, scene, syntax="jpeg_baseline", jpeg_frames=frames)


def dies_in_a_child(path: Path) -> int | None:
    """Exit code of a forked child that decodes ``path`` in-process (None if it survived)."""
    import multiprocessing
    import os

    def child() -> None:
        import faulthandler

        faulthandler.disable()  # the abort is expected: no traceback dump
        os.dup2(os.open(os.devnull, os.O_WRONLY), 2)  # GDCM prints its exception text
        from echocmr.errors import InputError
        from echocmr.ingest import read_clip

        try:
            read_clip(str(path))
        except InputError:
            pass

    proc = multiprocessing.get_context("fork").Process(target=child)
    proc.start()
    proc.join(120)
    return None if proc.exitcode == 0 else proc.exitcode
