"""``echocmr demo-assets``: rebuild the shipped default bundle from a seed."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..demo import DemoConfig


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo-assets", help="rebuild checkpoints/default: synthetic cohort → prepare → train → evaluate → bundle",
        description="Regenerate the shipped default model bundle and its held-out results from a seed (2 CPU cores: ~30 min).")
    p.add_argument("--out", type=Path, default=Path("checkpoints/default"), help="bundle folder to write")
    p.add_argument("--work", type=Path, help="folder for the intermediate cohort, dataset and run (default: $ECHOCMR_HOME/demo)")
    p.add_argument("--patients", type=int, default=DemoConfig.n_patients)
    p.add_argument("--seed", type=int, default=DemoConfig.seed)
    p.add_argument("--epochs", type=int, default=0, help="0: the preset's")
    p.add_argument("--force", action="store_true", help="rebuild even if the bundle exists")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..demo import build_demo_assets

    if (args.out / "bundle.json").exists() and not args.force:
        print(f"{args.out} already holds a bundle; --force rebuilds it")
        return 0
    config = DemoConfig(n_patients=args.patients, seed=args.seed, epochs=args.epochs)
    bundle = build_demo_assets(args.out, config, args.work)
    print(f"wrote {bundle}")
    return 0
