"""``echocmr`` command line: one subcommand per pipeline stage.

Each subcommand lives in ``echocmr/commands/<name>.py`` and exposes ``register(subparsers)``,
which adds its parser and sets ``func`` (``args -> exit status``). Modules are imported only when
listed here, so ``echocmr --help`` stays fast and a broken stage cannot break the others' help.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from . import __version__
from .errors import EchoCMRError

COMMANDS = ("synth", "index", "pull", "preprocess", "prepare", "train", "evaluate", "predict", "demo_assets",
            "compare", "analyse", "import_official", "fit_fusion", "shard")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="echocmr",
        description="Predict cardiac MRI findings from echocardiography videos.",
    )
    parser.add_argument("--version", action="version", version=f"echocmr {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"echocmr.commands.{name}")
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except EchoCMRError as exc:
        # Our own errors are PHI-free by construction; print them without a traceback.
        print(f"echocmr {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"echocmr {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
