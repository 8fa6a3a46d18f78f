"""``echocmr import-official DIR --out BUNDLE``: the published Sahashi et al. 2024 weights as a bundle.

Reads any of A4C/A2C/PLAX_WallMotoion.pt and A4C/A2C/PLAX_Scar.pt from DIR (size-checked, read
with weights_only=True, strict key and shape check against r2plus1d_18(num_classes=1)), records
each file's SHA-256, and writes a normal EchoCMR bundle whose checkpoints record the published
preprocessing. The weights are under an academic licence that forbids redistribution: the
bundle is for your own use only.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "import-official", help="import the published Sahashi et al. 2024 weight files as a model bundle",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("weights", type=Path, metavar="DIR", help="folder holding the published .pt files")
    p.add_argument("--out", required=True, type=Path, metavar="BUNDLE", help="bundle folder to write")
    p.add_argument("--view-classifier-from", type=Path, default=None, metavar="BUNDLE",
                   help="bundle whose view classifier to use (default: the shipped one; none was published)")
    p.add_argument("--make-active", action="store_true", help="make the bundle the app's active model")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..bundle import read_json
    from ..official import LICENCE_NOTE, MODEL_LABEL, import_official, official_info

    out = import_official(args.weights, args.out, args.view_classifier_from)
    info = official_info(read_json(out / "bundle.json", "bundle description")) or {}
    for name, entry in sorted(info.get("files", {}).items()):
        size_note = "" if entry["size_matches_published"] else " (size differs from the published files)"
        print(f"{name}: {entry['view']} {entry['target']}, sha256 {entry['sha256']}{size_note}")
    print(f"bundle written to {out}: {MODEL_LABEL}")
    if args.make_active:
        from ..bundle import set_active_bundle

        set_active_bundle(out)
        print("it is now the active model of the app")
    print(LICENCE_NOTE)
    return 0
