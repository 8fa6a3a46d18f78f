"""``echocmr train --view-classifier-only --data PREPARED``: fine-tune the view classifier on confirmed labels.

Not a subcommand of its own: ``train`` hands over here when the flag is given.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def run_view_classifier_only(args: argparse.Namespace) -> int:
    from ..bundle import active_bundle_dir, read_json
    from ..config import data_home
    from ..errors import ConfigError
    from ..run_control import new_run_name
    from ..view_finetune import FineTuneConfig, fine_tune_view_classifier, format_report

    if args.data is None:
        raise ConfigError("--view-classifier-only needs --data PREPARED (the cohort whose views were reviewed)")
    bundle = Path(active_bundle_dir())
    start = bundle / read_json(bundle / "bundle.json", "bundle description")["view_classifier"]
    defaults = FineTuneConfig()
    config = FineTuneConfig(epochs=args.classifier_epochs or args.epochs or defaults.epochs,
                            lr=args.classifier_lr or args.lr or defaults.lr,
                            batch_size=args.batch_size or defaults.batch_size,
                            seed=defaults.seed if args.seed is None else args.seed)
    out = (args.out or data_home() / "runs") / (args.run_name or new_run_name("view-classifier"))
    report = fine_tune_view_classifier(Path(args.data), start, out, config)
    print(format_report(report))
    print(f"fine-tuned classifier: {out / 'view_classifier' / 'best'}")
    return 0
