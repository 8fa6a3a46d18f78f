"""Clips/s of r2plus1d_18 for inference and training on one GPU: fp32 eager beside bf16 autocast +
channels_last_3d (+ torch.compile), over a sweep of batch sizes. Unattended:

    python bench/gpu_throughput.py                      # CUDA, batches 8 16 32 64 128, 32 frames
    python bench/gpu_throughput.py --device cpu --tiny  # the same code on CPU, tiny sizes (CI)

Every step starts from what the loader delivers: pinned uint8 grey clips (B, 1, T, 112, 112) with
their augmentation parameters; the copy to the device, the device-side augmentation and
normalisation (``echocmr.device_batch``), the 3-channel repeat, the masked multi-task loss and
AdamW are all inside the timed step, as in ``echocmr train``. cuDNN autotuning is on.
A batch that runs out of memory ends the sweep for that variant; a variant that fails (e.g. no
compiler for torch.compile) is reported and skipped. The LAST line is ``train_clips_per_s: <x>``,
the best training figure of any variant and batch; before it, ``speedup:`` over fp32 eager.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from echocmr.config import ModelConfig  # noqa: E402
from echocmr.dataset import draw_augmentation  # noqa: E402
from echocmr.device_batch import batch_to_model_input, pack_params  # noqa: E402
from echocmr.models import build_model, multitask_loss  # noqa: E402
from echocmr.targets import TARGETS  # noqa: E402

BINARY = [i for i, t in enumerate(TARGETS) if t.kind == "binary"]
CONTINUOUS = [i for i, t in enumerate(TARGETS) if t.kind == "continuous"]


@dataclass(frozen=True)
class Variant:
    name: str
    amp: bool
    channels_last: bool
    compile: bool


VARIANTS = (Variant("fp32 eager", False, False, False),
            Variant("bf16 + channels_last_3d", True, True, False),
            Variant("bf16 + channels_last_3d + compile", True, True, True))


def loader_batch(batch_size: int, frames: int, pin: bool) -> list[torch.Tensor]:
    """What the DataLoader hands the training step: uint8 clips, params, targets, mask, index."""
    rng = np.random.default_rng(0)
    clips = torch.from_numpy(rng.integers(0, 256, (batch_size, 1, frames, 112, 112), dtype=np.uint8))
    params = torch.stack([pack_params({"mean": 80.0, "std": 60.0}, draw_augmentation(rng)) for _ in range(batch_size)])
    y = (torch.rand(batch_size, len(TARGETS)) > 0.5).float()
    batch = [clips, params, y, torch.ones_like(y), torch.arange(batch_size)]
    return [t.pin_memory() for t in batch] if pin else batch


def measure(model_config: ModelConfig, variant: Variant, batch_size: int, frames: int, train: bool,
            device: torch.device, steps: int, warmup: int) -> float:
    """Clips/s of ``steps`` timed steps (after ``warmup``) of a fresh model."""
    torch.manual_seed(0)
    model = build_model(model_config, len(TARGETS)).to(device)
    if variant.channels_last:
        model = model.to(memory_format=torch.channels_last_3d)
    model.train(train)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    run = torch.compile(model) if variant.compile else model
    batch = loader_batch(batch_size, frames, pin=device.type == "cuda")

    def step() -> None:
        x, y, mask = batch_to_model_input(batch, device, variant.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=variant.amp):
            if not train:
                with torch.inference_mode():
                    run(x)
                return
            outputs = run(x)
        loss = multitask_loss(outputs.float(), y, mask, BINARY, CONTINUOUS)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(warmup):
        step()
    synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize(device)
    return batch_size * steps / (time.perf_counter() - start)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def sweep(args: argparse.Namespace, device: torch.device, model_config: ModelConfig) -> dict:
    """{(mode, variant name, batch): clips/s} over every variant and batch that fits."""
    results: dict = {}
    variants = [v for v in VARIANTS if args.compile or not v.compile]
    for train in (False, True):
        mode = "train" if train else "infer"
        for variant in variants:
            for batch_size in args.batches:
                try:
                    rate = measure(model_config, variant, batch_size, args.frames, train, device, args.steps, args.warmup)
                except torch.cuda.OutOfMemoryError:
                    print(f"{mode:5s} {variant.name:34s} {batch_size:5d}  out of memory: larger batches skipped")
                    torch.cuda.empty_cache()
                    break
                except Exception as exc:  # noqa: BLE001 - unattended: report the variant and go on
                    print(f"{mode:5s} {variant.name:34s} {batch_size:5d}  failed: {type(exc).__name__}: {exc}"[:300])
                    break
                results[(mode, variant.name, batch_size)] = rate
                peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")
                print(f"{mode:5s} {variant.name:34s} {batch_size:5d} {rate:10.1f} {peak:9.1f}", flush=True)
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", choices=("auto", "cuda", "cpu"))
    parser.add_argument("--batches", type=int, nargs="+", default=[8, 16, 32, 64, 128])
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                        help="include the torch.compile variant (default: on CUDA only)")
    parser.add_argument("--tiny", action="store_true", help="tiny compact model and sizes (a CPU smoke run)")
    args = parser.parse_args(argv)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    args.compile = device.type == "cuda" if args.compile is None else args.compile
    model_config = ModelConfig(arch="r2plus1d_18")
    if args.tiny:
        model_config = ModelConfig(arch="compact", width=4)
        args.batches, args.frames, args.steps, args.warmup = [2], 4, 1, 1
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        print(f"device: {torch.cuda.get_device_name()}  torch {torch.__version__}")
    else:
        print(f"device: CPU ({torch.get_num_threads()} threads)  torch {torch.__version__}")
    print(f"model {model_config.arch}, {args.frames} frames x 112 x 112, uint8 input, device-side augmentation")
    print(f"{'mode':5s} {'variant':34s} {'batch':>5s} {'clips/s':>10s} {'peak GiB':>9s}")
    results = sweep(args, device, model_config)
    train = {k: v for k, v in results.items() if k[0] == "train"}
    if not train:
        print("train_clips_per_s: 0")
        return 1
    best_key = max(train, key=train.get)
    base = max((v for k, v in train.items() if k[1] == VARIANTS[0].name), default=float("nan"))
    print(f"best training: {best_key[1]}, batch {best_key[2]}")
    print(f"speedup: {train[best_key] / base:.2f} (best over best fp32 eager)")
    print(f"train_clips_per_s: {train[best_key]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
