"""Training throughput of r2plus1d_18 on CUDA: fp32 eager vs EchoCMR's path, in one run.

    .venv/bin/python bench/gpu_throughput.py [--batch-size 16] [--frames 32] [--steps 30] [--compile]

Both paths run the same training step (pinned grey clips copied to the GPU, repeated to 3
channels, masked multi-task loss, AdamW): the baseline in fp32 with the default memory format,
ours with bf16 autocast + channels_last_3d (+ torch.compile with --compile). cuDNN autotuning is
on for both. Prints clips/s of each; the LAST line is ``speedup: <ratio>``. Without CUDA it says
so and exits 0.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from echocmr.config import ModelConfig  # noqa: E402
from echocmr.models import build_model, multitask_loss, prepare_input  # noqa: E402
from echocmr.targets import TARGETS  # noqa: E402

BINARY = [i for i, t in enumerate(TARGETS) if t.kind == "binary"]
CONTINUOUS = [i for i, t in enumerate(TARGETS) if t.kind == "continuous"]


def clips_per_second(batch_size: int, frames: int, steps: int, warmup: int, amp: bool, channels_last: bool,
                     compile_model: bool) -> float:
    """Timed training steps of a fresh r2plus1d_18; returns clips per second."""
    device = torch.device("cuda")
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch="r2plus1d_18"), len(TARGETS)).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last_3d)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    step_model = torch.compile(model) if compile_model else model
    x = torch.randn(batch_size, 1, frames, 112, 112).pin_memory()
    y = (torch.rand(batch_size, len(TARGETS)) > 0.5).float().to(device)
    mask = torch.ones_like(y)

    def step() -> None:
        inputs = prepare_input(x, device, channels_last)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            outputs = step_model(inputs)
        loss = multitask_loss(outputs.float(), y, mask, BINARY, CONTINUOUS)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    return batch_size * steps / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=8)
    parser.add_argument("--compile", action="store_true", help="also torch.compile our path")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("gpu_throughput: no CUDA device on this machine; nothing to measure (run it on a GPU machine).")
        return 0
    torch.backends.cudnn.benchmark = True
    print(f"device: {torch.cuda.get_device_name()}  torch {torch.__version__}  batch {args.batch_size} "
          f"x {args.frames} frames x 112 x 112")
    common = dict(batch_size=args.batch_size, frames=args.frames, steps=args.steps, warmup=args.warmup)
    base = clips_per_second(**common, amp=False, channels_last=False, compile_model=False)
    print(f"fp32 eager:                              {base:8.1f} clips/s")
    ours = clips_per_second(**common, amp=True, channels_last=True, compile_model=args.compile)
    label = "bf16 autocast + channels_last_3d" + (" + compile" if args.compile else "")
    print(f"{label + ':':41s}{ours:8.1f} clips/s")
    print(f"speedup: {ours / base:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
