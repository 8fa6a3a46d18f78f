"""Hostile and broken inputs: each is refused with its own stable code, no PHI, no output."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import cv2
import numpy as np
import pydicom
import pytest
from pydicom.encaps import encapsulate
from pydicom.uid import ExplicitVRLittleEndian

import dicom_factory as F
from echocmr.config import IngestLimits
from echocmr.errors import InputError
from echocmr.ingest import ERROR_CODES, read_clip, read_study

CANARIES = [v for v in F.PHI_DEFAULTS.values()]
SMALL = dict(rows=64, cols=80, n_frames=4)


@pytest.fixture(scope="module")
def scene():
    return F.make_scene(SMALL["rows"], SMALL["cols"], SMALL["n_frames"], seed=5)


def _ds(scene, **kw):
    ds = F.base_dataset(scene, **kw)
    F.set_pixels(ds, scene, "RGB")
    F._meta(ds, ExplicitVRLittleEndian)
    return ds


def _jpeg_ds(scene, frames: list[bytes], n: int | None = None):
    ds = F.base_dataset(scene)
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "YBR_FULL_422", 0
    ds.PixelData = encapsulate(frames)
    ds["PixelData"].VR = "OB"
    ds.NumberOfFrames = n if n is not None else len(frames)
    F._meta(ds, pydicom.uid.JPEGBaseline8Bit)
    return F.to_bytes(ds)


def _deflate_bomb(inflated: int = 256 * 1024 * 1024) -> bytes:
    """A DICOM with the deflated transfer syntax whose body inflates to ``inflated`` zero bytes."""
    meta = F.header_only(32, 32, 1)  # take its preamble + meta, then swap syntax and body
    ds = pydicom.dcmread(io.BytesIO(meta), stop_before_pixels=True)
    ds.file_meta.TransferSyntaxUID = F.DEFLATED
    buf = io.BytesIO()
    buf.write(b"\0" * 128 + b"DICM")
    pydicom.filewriter.write_file_meta_info(buf, ds.file_meta, enforce_standard=True)
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = b"\0" * (1 << 20)
    body = b"".join(comp.compress(chunk) for _ in range(inflated >> 20)) + comp.flush()
    return buf.getvalue() + body


def _zip(entries: list[tuple[str, bytes]], **kw) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            if kw.get("symlink") and name == entries[0][0]:
                info.external_attr = (0o120777 << 16)
            zf.writestr(info, data)
    data = buf.getvalue()
    if kw.get("encrypt"):  # zipfile cannot encrypt: set the "encrypted" flag bit in both headers
        data = bytearray(data)
        for sig, off in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
            i = data.find(sig)
            data[i + off] |= 0x01
        data = bytes(data)
    return data


def _float_pixels(scene) -> bytes:
    ds = _ds(scene)
    del ds.PixelData
    ds.FloatPixelData = np.zeros(16, np.float32).tobytes()
    return F.to_bytes(ds)


def _png_bomb() -> bytes:
    ok, buf = cv2.imencode(".png", np.zeros((16, 16), np.uint8))
    data = bytearray(buf.tobytes())
    data[16:24] = (100_000).to_bytes(4, "big") * 2  # IHDR width/height (CRC now wrong too)
    return bytes(data)


def _truncated_avi(scene, tmp: Path) -> bytes:
    path = tmp / "v.avi"
    big = F.make_scene(96, 128, 30, seed=1)
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (128, 96))
    for f in big.rgb:
        w.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    w.release()
    data = path.read_bytes()
    return data[: len(data) // 2]


def _cases(scene, tmp: Path) -> dict[str, tuple[bytes, str]]:
    """name → (file bytes, expected code)."""
    good = F.to_bytes(_ds(scene))
    jpeg_frames = F.encode_jpeg_frames(scene.rgb)
    ct = _ds(scene, modality="CT", sop_class=F.CT_IMAGE)
    no_pixels = _ds(scene)
    del no_pixels.PixelData
    grey_scene = F.make_scene(64, 80, 4, seed=6, ecg=False)
    static = F.Scene(np.repeat(grey_scene.rgb[:1], 4, axis=0), *[getattr(grey_scene, k) for k in
                     ("fan", "text", "ecg", "apex", "radius", "half_angle", "bbox", "phi")])
    noise = F.Scene(np.random.default_rng(0).integers(0, 255, (4, 64, 80, 3), dtype=np.uint8), *[getattr(grey_scene, k)
                    for k in ("fan", "text", "ecg", "apex", "radius", "half_angle", "bbox", "phi")])
    dicomdir = F.to_bytes(_ds(scene, sop_class="1.2.840.10008.1.3.10", modality="US"))
    return {
        "empty file": (b"", "empty_file"),
        "random bytes": (np.random.default_rng(1).bytes(4096), "unknown_format"),
        "text renamed .dcm": (b"Patient " + CANARIES[0].encode() + b" report\n" * 50, "unknown_format"),
        "truncated header": (good[:300], "truncated_file"),
        "garbage after preamble": (b"\0" * 128 + b"DICM" + b"\xff" * 64, "bad_header"),
        "truncated pixel data": (good[: len(good) - 5000], "truncated_pixels"),
        "frame count huge": (F.header_only(64, 64, 1_000_000_000), "too_many_frames"),
        "frame count zero": (F.header_only(64, 64, 0), "bad_frame_count"),
        "frame count non-numeric": (F.header_only(64, 64, "abc"), "bad_frame_count"),
        "frame count > fragments": (_jpeg_ds(scene, jpeg_frames, n=9), "frame_count_mismatch"),
        "corrupt JPEG frame": (_jpeg_ds(scene, jpeg_frames[:2] + [b"\xff\xd8\xff" + b"\x13" * 600] + jpeg_frames[3:]),
                               "corrupt_frame"),
        "truncated JPEG frame": (_jpeg_ds(scene, jpeg_frames[:1] + [jpeg_frames[1][: len(jpeg_frames[1]) // 2]]
                                          + jpeg_frames[2:]), "corrupt_frame"),
        "deflate bomb": (_deflate_bomb(64 << 20), "deflated_syntax"),
        "unsupported syntax": (F.header_only(64, 64, 1, syntax="1.2.840.10008.1.2.4.100"), "unsupported_syntax"),
        "wrong modality CT": (F.to_bytes(ct), "not_ultrasound"),
        "1x1 frames": (F.header_only(1, 1, 1, pixel_bytes=b"\0\0"), "bad_dimensions"),
        "zero rows": (F.header_only(0, 64, 1), "bad_dimensions"),
        "16-bit": (F.header_only(64, 64, 1, bits=16, pixel_bytes=b"\0" * 8192), "unsupported_bit_depth"),
        "absurd rows x cols": (F.header_only(60000, 60000, 1), "dimensions_too_large"),
        "2000x2000x2000 claim": (F.header_only(2000, 2000, 2000), "decoded_too_large"),
        "no pixel data": (F.to_bytes(no_pixels), "truncated_file"),
        "float pixel data": (_float_pixels(scene), "no_pixels"),
        "DICOMDIR": (dicomdir, "dicomdir"),
        "static clip (no motion, text)": (F.to_bytes(_ds(static, regions=False)), "no_sector"),
        "noise everywhere": (F.to_bytes(_ds(noise, regions=False)), "no_sector"),
        "PNG bomb dims": (_png_bomb(), "dimensions_too_large"),
        "truncated AVI": (_truncated_avi(scene, tmp), "truncated_video"),
    }


def _zip_cases(scene) -> dict[str, tuple[bytes, str]]:
    good = F.to_bytes(_ds(scene))
    inner = _zip([("a.dcm", good)])
    return {
        "zip slip": (_zip([("../../etc/evil.dcm", good)]), "zip_unsafe_path"),
        "zip absolute path": (_zip([("/abs/evil.dcm", good)]), "zip_unsafe_path"),
        "zip bomb (ratio)": (_zip([("a.dcm", b"\0" * (20 << 20))]), "zip_bomb"),
        "nested zip": (_zip([("a.dcm", good), ("inner.zip", inner)]), "zip_nested"),
        "nested zip renamed": (_zip([("a.dcm", good), ("inner.dcm", inner)]), "zip_nested"),
        "zip symlink": (_zip([("link.dcm", b"/etc/passwd"), ("b.dcm", good)], symlink=True), "zip_symlink"),
        "encrypted entry": (_zip([("a.dcm", good)], encrypt=True), "zip_encrypted"),
        "DICOMDIR in zip": (_zip([("a.dcm", good), ("DICOMDIR", good)]), "zip_dicomdir"),
        "duplicate names": (_zip([("a.dcm", good), ("a.dcm", good)]), "zip_duplicate"),
        "corrupt zip": (b"PK\x03\x04" + b"\x00" * 200, "bad_zip"),
    }


@pytest.fixture(scope="module")
def cases(scene, tmp_path_factory):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name we want
        return _cases(scene, tmp_path_factory.mktemp("bad")), _zip_cases(scene)


def _assert_phi_free(exc: InputError) -> None:
    text = str(exc)
    assert exc.code in ERROR_CODES
    for canary in CANARIES + ["CANARY", "ZQXJ", "77431"]:
        assert canary not in text


def test_there_are_at_least_twenty_kinds(cases):
    files, zips = cases
    assert len(files) + len(zips) >= 30
    assert len({code for _, code in list(files.values()) + list(zips.values())}) >= 25


@pytest.mark.parametrize("name", ["empty file", "random bytes", "text renamed .dcm", "truncated header",
                                  "truncated pixel data", "garbage after preamble", "float pixel data", "frame count huge", "frame count zero",
                                  "frame count non-numeric", "frame count > fragments", "corrupt JPEG frame",
                                  "truncated JPEG frame", "deflate bomb", "unsupported syntax", "wrong modality CT",
                                  "1x1 frames", "zero rows", "16-bit", "absurd rows x cols", "2000x2000x2000 claim",
                                  "no pixel data", "DICOMDIR", "static clip (no motion, text)", "noise everywhere",
                                  "PNG bomb dims", "truncated AVI"])
def test_bad_file(name, cases, tmp_path, caplog):
    data, code = cases[0][name]
    path = tmp_path / "input.dcm"  # misleading name on purpose: content decides
    path.write_bytes(data)
    for source in (path, data):
        with pytest.raises(InputError) as err:
            read_clip(source)
        assert err.value.code == code, f"{name}: {err.value}"
        _assert_phi_free(err.value)
    items = read_study(data, name="file 1")
    assert len(items) == 1 and items[0].clip is None and items[0].error.code == code
    assert not any(c in caplog.text for c in CANARIES)


@pytest.mark.parametrize("name", ["zip slip", "zip absolute path", "zip bomb (ratio)", "nested zip",
                                  "nested zip renamed", "zip symlink", "encrypted entry", "DICOMDIR in zip",
                                  "duplicate names", "corrupt zip"])
def test_bad_zip(name, cases):
    data, code = cases[1][name]
    items = read_study(data, name="file 2")
    assert len(items) == 1 and items[0].clip is None, name
    assert items[0].error.code == code, f"{name}: {items[0].error}"
    assert items[0].display_name == "file 2"
    _assert_phi_free(items[0].error)
    with pytest.raises(InputError) as err:  # an archive is not a clip
        read_clip(data)
    assert err.value.code == "is_archive"


def test_zip_limits(scene):
    good = F.to_bytes(_ds(scene))
    many = _zip([(f"{i}.dcm", b"x") for i in range(12)])
    items = read_study(many, limits=IngestLimits(max_zip_entries=10))
    assert items[0].error.code == "zip_too_many_entries"
    items = read_study(_zip([("a.dcm", good), ("b.dcm", good)]), limits=IngestLimits(max_zip_total_bytes=len(good)))
    assert items[0].error.code == "zip_too_large"


def test_file_size_cap_checked_before_reading(tmp_path):
    path = tmp_path / "big.bin"
    with open(path, "wb") as fh:  # sparse: claims 64 MiB without using the disk
        fh.truncate(64 << 20)
    with pytest.raises(InputError) as err:
        read_clip(path, limits=IngestLimits(max_file_bytes=1 << 20))
    assert err.value.code == "too_large"


def test_no_partial_output_from_cli(cases, tmp_path):
    from echocmr.commands.preprocess import run
    import argparse

    files = []
    for k, (data, _) in enumerate(list(cases[0].values())[:12] + list(cases[1].values())[:4]):
        p = tmp_path / "in" / f"patient_{k}.dcm"
        p.parent.mkdir(exist_ok=True)
        p.write_bytes(data)
        files.append(str(p))
    out = tmp_path / "out"
    status = run(argparse.Namespace(files=files, out=out, salt="", fps=None))
    assert status == 1
    assert not out.exists() or not list(out.iterdir())


MEMORY_CHILD = r"""
import resource, sys, json
sys.path.insert(0, {tests!r})
import numpy, cv2, pydicom, zipfile, zlib
from echocmr.ingest import read_clip, read_study
from echocmr.errors import InputError
import dicom_factory as F
import test_ingest_bad_inputs as T
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
codes = []
for data in (F.header_only(2000, 2000, 2000), F.header_only(2048, 2048, 1_000_000),
             T._deflate_bomb(512 << 20), T._png_bomb(), F.header_only(60000, 60000, 1)):
    try:
        read_clip(data)
    except InputError as e:
        codes.append(e.code)
bomb = T._zip([("a.dcm", b"\0" * (200 << 20))])
codes.append(read_study(bomb)[0].error.code)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"codes": codes, "growth_kb": after - before}}))
"""


def test_big_claims_refused_before_allocating(tmp_path):
    """A subprocess measures its own peak RSS around the big-claim inputs: the claims add up to
    terabytes, the bombs to 700 MiB; peak memory may grow only by what building the inputs costs."""
    tests = str(Path(__file__).parent)
    code = MEMORY_CHILD.format(tests=tests)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          cwd=str(Path(tests).parent))
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["codes"] == ["decoded_too_large", "too_many_frames", "deflated_syntax", "dimensions_too_large",
                               "dimensions_too_large", "zip_bomb"]
    # Building the 200 MiB zip bomb in the child needs ~200 MiB of zeros itself; decoding
    # any of the claims would need gigabytes.
    assert result["growth_kb"] < 450 * 1024


def test_random_corruption_only_ever_raises_input_error(scene, tmp_path):
    """Byte flips and truncations of valid files of every kind: the result is a clip or an
    ``InputError`` — never another exception (no crash, no traceback with content)."""
    import warnings

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    bases = [F.to_bytes(_ds(scene)), _jpeg_ds(scene, F.encode_jpeg_frames(scene.rgb)),
             F.write_dicom(tmp_path / "r.dcm", scene, syntax="rle").read_bytes(),
             F.write_dicom(tmp_path / "p.dcm", scene, photometric="PALETTE COLOR").read_bytes(),
             _zip([("a.dcm", F.to_bytes(_ds(scene)))])]

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(st.integers(0, len(bases) - 1), st.lists(st.tuples(st.integers(0, 1 << 30), st.integers(0, 255)),
                                                    min_size=1, max_size=6), st.floats(0.05, 1.0))
    def check(which, flips, keep):
        data = bytearray(bases[which])
        for pos, value in flips:
            data[132 + pos % (len(data) - 132)] = value
        data = bytes(data[: max(140, int(len(data) * keep))])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            items = read_study(data)
        for w in caught:  # pydicom's warnings quote raw header bytes
            assert not any(c in str(w.message) for c in CANARIES), "a warning leaked header content"
        for item in items:
            assert (item.clip is None) != (item.error is None)
            if item.error is not None:
                assert item.error.code in ERROR_CODES

    check()
