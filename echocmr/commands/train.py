"""``echocmr train``: train the view classifier and per-view models into a run directory.

Same command under torchrun for several GPUs / machines::

    torchrun --standalone --nproc_per_node=2 -m echocmr.cli train --data PREPARED --out RUNS
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from ..config import PRESETS, SELECT_ON, ModelConfig, TrainConfig, data_home, preset
from ..errors import ConfigError
from ..targets import MODEL_VIEWS


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("train", help="train the per-view models (and the view classifier)",
                              description="Train the view classifier, then one multi-task R(2+1)D per view.")
    p.add_argument("--data", type=Path, help="prepared dataset folder (from `echocmr prepare`)")
    p.add_argument("--out", type=Path, help="folder for run directories (default: $ECHOCMR_HOME/runs)")
    p.add_argument("--preset", default="paper", choices=sorted(PRESETS), help="training recipe (default: paper)")
    p.add_argument("--config", type=Path, metavar="FILE",
                   help="training settings as JSON ({\"train\": {...}}, e.g. a run's config.json) instead of "
                        "--preset; flags given as well apply on top")
    p.add_argument("--views", nargs="+", choices=MODEL_VIEWS, help="views to train (default: all)")
    p.add_argument("--epochs", type=int, help="maximum epochs per model")
    p.add_argument("--classifier-epochs", type=int, help="maximum epochs of the view classifier (default: --epochs)")
    p.add_argument("--batch-size", type=int, help="clips per step (per process under torchrun)")
    p.add_argument("--lr", type=float, help="AdamW learning rate")
    p.add_argument("--classifier-lr", type=float, help="learning rate of the view classifier (default: --lr)")
    p.add_argument("--patience", type=int, help="early stopping: epochs without improvement")
    p.add_argument("--select-on", choices=SELECT_ON,
                   help="view models' best epoch: validation loss (the paper's) or the mean validation AUROC "
                        "of wma_view and lge_view")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), help="compute device (default from preset)")
    p.add_argument("--num-workers", type=int, help="DataLoader worker processes")
    p.add_argument("--seed", type=int, help="random seed")
    p.add_argument("--arch", choices=("r2plus1d_18", "compact"), help="model architecture")
    p.add_argument("--width", type=int, help="compact model channels")
    p.add_argument("--frames", type=int, help="frames per clip")
    p.add_argument("--map-outputs", type=int, metavar="N",
                   help="pool the first N outputs (1: wma_view) from a score map the app shows as their "
                        "explanation (0: the paper's head; default from preset)")
    p.add_argument("--init-weights", type=Path, metavar="FILE",
                   help="start the per-view r2plus1d_18 models from a local torchvision r2plus1d_18 state dict "
                        "(e.g. Kinetics-400 weights you downloaded; read with weights_only, head replaced)")
    p.add_argument("--max-train-clips", type=int, help="use at most N training clips per model (0: all)")
    p.add_argument("--no-view-classifier", action="store_true", help="skip the view classifier")
    p.add_argument("--view-classifier-only", action="store_true",
                   help="fine-tune the active view classifier on the clips confirmed on the View review page "
                        "(--data PREPARED; --classifier-epochs, --classifier-lr, --seed apply)")
    p.add_argument("--compile", action="store_true", help="torch.compile the model (CUDA only)")
    p.add_argument("--shards", action="store_true",
                   help="read training clips from the prepared folder's shards (`echocmr shard`), sequentially")
    p.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue an interrupted run")
    p.add_argument("--run-name", help="run directory name (default: date-time-preset)")
    p.set_defaults(func=run)


def config_from_args(args: argparse.Namespace, base: TrainConfig) -> TrainConfig:
    """``base`` with every flag the user actually gave applied on top."""
    fields = {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "patience": args.patience,
              "device": args.device, "num_workers": args.num_workers, "seed": args.seed,
              "max_train_clips": args.max_train_clips, "classifier_epochs": args.classifier_epochs,
              "classifier_lr": args.classifier_lr, "select_on": getattr(args, "select_on", None)}
    changes = {k: v for k, v in fields.items() if v is not None}
    if args.views:
        changes["views"] = tuple(args.views)
    if args.no_view_classifier:
        changes["view_classifier"] = False
    if args.compile:
        changes["compile"] = True
    if getattr(args, "shards", False):
        changes["data_layout"] = "shards"
    model_fields = {"arch": args.arch, "width": args.width, "n_frames": args.frames,
                    "map_outputs": getattr(args, "map_outputs", None),
                    "pretrained_path": init_weights_path(getattr(args, "init_weights", None))}
    model_changes = {k: v for k, v in model_fields.items() if v is not None}
    if model_changes:
        changes["model"] = dataclasses.replace(base.model, **model_changes)
    config = dataclasses.replace(base, **changes)
    _validate(config)
    if getattr(args, "init_weights", None) is not None:
        check_init_weights(config.model)
    return config


# What a resumed run may change: how long it goes on and where it runs. Everything else is fixed by
# the restored weights, optimiser and scheduler (a new lr would be overwritten by the restored
# scheduler; a new batch size or seed would break the resume == uninterrupted-run guarantee).
RESUME_ADJUSTABLE = frozenset({"epochs", "classifier_epochs", "patience", "device", "num_workers", "compile"})
FLAG_OF_FIELD = {"model": "--arch/--width/--frames/--map-outputs", "view_classifier": "--no-view-classifier"}


def _flags(fields) -> str:
    return ", ".join(FLAG_OF_FIELD.get(name, "--" + name.replace("_", "-")) for name in sorted(fields))


def check_resume_changes(saved: TrainConfig, config: TrainConfig) -> None:
    """Refuse flags that a resumed run would silently ignore or that would break it."""
    fixed = [f.name for f in dataclasses.fields(TrainConfig)
             if f.name not in RESUME_ADJUSTABLE and getattr(saved, f.name) != getattr(config, f.name)]
    if fixed:
        raise ConfigError(f"{_flags(fixed)} cannot change when resuming (the run's weights, optimiser and "
                          f"schedule are restored); only {_flags(RESUME_ADJUSTABLE)} can. "
                          "Start a new run to change the others.")


def init_weights_path(path: Path | None) -> str | None:
    """``--init-weights`` as an absolute path (the run may start in another working directory)."""
    if path is None:
        return None
    if not path.is_file():
        raise ConfigError("--init-weights: the file does not exist")
    return str(path.resolve())


def check_init_weights(model: ModelConfig) -> None:
    """Fail before a run starts: the file must be an r2plus1d_18 state dict that fits the backbone."""
    if not model.pretrained_path:
        return
    if model.arch != "r2plus1d_18":
        raise ConfigError("--init-weights takes a torchvision r2plus1d_18 state dict: use it with --preset paper "
                          "or --arch r2plus1d_18")
    from ..models import build_model

    build_model(model, 1)  # reads it (weights_only, size-capped) and checks every backbone shape


def _validate(config: TrainConfig) -> None:
    for name in ("epochs", "batch_size", "patience"):
        if getattr(config, name) < 1:
            raise ConfigError(f"{name} must be at least 1")
    if config.num_workers < 0 or config.max_train_clips < 0 or config.classifier_epochs < 0:
        raise ConfigError("--num-workers, --max-train-clips and --classifier-epochs cannot be negative")
    if config.data_layout not in ("files", "shards"):
        raise ConfigError("data_layout must be 'files' or 'shards'")
    if config.select_on not in SELECT_ON:
        raise ConfigError(f"select_on must be one of {', '.join(SELECT_ON)}")
    if not config.lr > 0 or config.classifier_lr < 0:
        raise ConfigError("--lr must be positive and --classifier-lr not negative")
    if not isinstance(config.model, ModelConfig) or config.model.n_frames < 1 or config.model.period < 1:
        raise ConfigError("n_frames and period must be at least 1")


def base_config(args: argparse.Namespace) -> TrainConfig:
    """The settings the flags apply to: ``--config FILE`` when given, else the ``--preset``."""
    from ..run_record import read_train_config

    return read_train_config(args.config) if args.config is not None else preset(args.preset)


def run(args: argparse.Namespace) -> int:
    from ..run_record import default_run_name, read_run_config
    from ..train import train_model
    from ..train_dist import broadcast_object, cleanup, init_distributed

    if args.view_classifier_only:  # echocmr/commands/train_view_classifier.py
        from .train_view_classifier import run_view_classifier_only

        return run_view_classifier_only(args)
    if args.resume is not None:
        if args.config is not None:
            raise ConfigError("--config starts a new run; a resumed run keeps the settings in its config.json")
        base, data_dir = read_run_config(args.resume)
        config = config_from_args(args, base)
        check_resume_changes(base, config)
        train_model(config, args.data or data_dir, args.resume, resume=True)
        return 0
    if args.data is None:
        raise ConfigError("--data PREPARED is required (or --resume RUN_DIR)")
    config = config_from_args(args, base_config(args))
    out = args.out or data_home() / "runs"
    ctx = init_distributed(config.device)
    try:
        # Every rank must write to the same folder: rank 0 picks the time-stamped name.
        name = broadcast_object(args.run_name or default_run_name(config), ctx)
        run_dir = train_model(config, args.data, out / name, resume=False)
    finally:
        cleanup(ctx)
    print(run_dir)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m echocmr.commands.train ...``: this subcommand alone, without importing the others."""
    import logging

    from ..errors import EchoCMRError

    parser = argparse.ArgumentParser(prog="echocmr")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["train", *(sys.argv[1:] if argv is None else argv)])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except EchoCMRError as exc:
        print(f"echocmr train: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
