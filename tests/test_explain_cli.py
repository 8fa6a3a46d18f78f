"""``echocmr predict FILE --explain DIR``: per clip a PNG figure and a WebM overlay, pseudonymous names."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from echocmr.cli import main

ROOT = Path(__file__).resolve().parents[1]
STUDY = ROOT / "checkpoints" / "default" / "examples" / "study1"

pytestmark = pytest.mark.slow  # one study prediction + one attribution pass on CPU (auto: the score map)


@pytest.mark.parametrize("method", ["auto", "integrated-gradients", "grad-cam"])
def test_predict_explain_writes_png_and_webm(tmp_path, capsys, method):
    files = sorted(STUDY.glob("*.dcm"))[:1]
    assert files, "the shipped bundle's example study is missing"
    out = tmp_path / "explain"
    status = main(["predict", str(files[0]), "--json", "--min-view-confidence", "0", "--explain", str(out),
                   "--explain-method", method])
    captured = capsys.readouterr()
    result = json.loads(captured.out)  # stdout stays pure JSON; the explain notes go to stderr
    fed = [c for c in result["clips"] if c.get("fed_view_model")]
    assert status == 0 and fed
    written = sorted(p.name for p in out.iterdir())
    assert len(written) == 2 * len(fed) and f"wrote {len(written)} files" in captured.err
    for name in written:
        # clip number + pseudonymous id only: no file name, no header value
        assert re.fullmatch(r"clip\d{2}(_[A-Za-z0-9_-]{1,16})?\.(png|webm)", name), name
        assert files[0].stem not in name
    png = next(out.glob("*.png")).read_bytes()
    webm = next(out.glob("*.webm")).read_bytes()
    assert png.startswith(b"\x89PNG") and webm.startswith(b"\x1a\x45\xdf\xa3")
    assert not list(out.glob("*.tmp*")) and not list(out.glob(".*"))  # atomic: no leftovers
