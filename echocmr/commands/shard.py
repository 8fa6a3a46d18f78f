"""``echocmr shard PREPARED``: pack a prepared folder's clips into shard files read sequentially.

For cohorts larger than memory on storage that serves large sequential reads far better than
many small random ones (network file systems, spinning disks, cold object-store mounts). Writes
``PREPARED/shards/shard-NNNNN.bin`` (clips back to back, ordered by split) and
``PREPARED/shards/index.json``; the per-clip ``clips/*.npy`` stay (evaluation and inference read
them). ``echocmr.shards.ShardStream`` trains from the shards (docs/SCALE.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser("shard", help="pack a prepared folder's clips into large shard files",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("prepared", type=Path, metavar="PREPARED", help="prepared dataset (manifest.csv, clips/)")
    p.add_argument("--shard-mb", type=float, default=256.0,
                   help="target shard size in MB (default 256; at least one shard per process x loader worker)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..shards import write_shards

    summary = write_shards(args.prepared, args.shard_mb)
    print(f"{summary['clips']} clips in {summary['shards']} shards ({summary['bytes'] / 1024**2:.1f} MB) "
          f"under {args.prepared.name}/shards")
    return 0
