"""WebM / PNG encoding of de-identified clips for the dashboard."""

import cv2
import numpy as np
import pytest

from echocmr.media import encode_png, encode_webm, mid_frame

EBML_MAGIC = b"\x1a\x45\xdf\xa3"


def _clip(n_frames: int = 23) -> np.ndarray:
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, size=(n_frames, 112, 112), dtype=np.uint8)
    frames[:, 40:70, 40:70] = np.linspace(0, 255, n_frames, dtype=np.uint8)[:, None, None]
    return frames


def _count_frames(data: bytes, tmp_path) -> tuple[int, tuple[int, int]]:
    path = tmp_path / "clip.webm"
    path.write_bytes(data)
    cap = cv2.VideoCapture(str(path))
    count, shape = 0, (0, 0)
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        count, shape = count + 1, frame.shape[:2]
    cap.release()
    return count, shape


@pytest.mark.parametrize("codec", ["VP80", "VP90"])
def test_webm_magic_and_exact_frame_count(codec, tmp_path):
    data = encode_webm(_clip(23), fps=25.0, size=224, codec=codec)
    assert data[:4] == EBML_MAGIC
    count, shape = _count_frames(data, tmp_path)
    assert count == 23
    assert shape == (224, 224)


def test_webm_single_frame_and_odd_size(tmp_path):
    data = encode_webm(_clip(1), fps=0.0, size=161, smooth=False)  # bad fps falls back to a sane one
    assert data.startswith(EBML_MAGIC)
    count, shape = _count_frames(data, tmp_path)
    assert count == 1
    assert shape == (162, 162)


def test_webm_rejects_bad_input():
    with pytest.raises(ValueError):
        encode_webm(np.zeros((5, 112, 112), dtype=np.float32))
    with pytest.raises(ValueError):
        encode_webm(np.zeros((112, 112), dtype=np.uint8))
    with pytest.raises(ValueError):
        encode_webm(_clip(3), codec="H264")


def test_webm_leaves_no_temp_files(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    encode_webm(_clip(4))
    assert list(tmp_path.iterdir()) == []


def test_png_roundtrip():
    rgb = np.zeros((30, 40, 3), dtype=np.uint8)
    rgb[..., 0] = 200  # red stays red (RGB in, RGB out)
    data = encode_png(rgb)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    back = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert back.shape == (30, 40, 3) and back[0, 0, 2] == 200 and back[0, 0, 0] == 0
    grey = encode_png(np.full((10, 12), 7, dtype=np.uint8))
    assert cv2.imdecode(np.frombuffer(grey, np.uint8), cv2.IMREAD_UNCHANGED).shape == (10, 12)


def test_mid_frame():
    frame = mid_frame(_clip(5), size=100)
    assert frame.shape == (100, 100) and frame.dtype == np.uint8
