"""Does a view classifier trained only on the synthetic cohort recognise real cines?

Renders ``--clips`` synthetic clips per class (A4C, A2C, PLAX, and "other" = PSAX / A3C), writes
each as a DICOM in memory and ingests it with ``echocmr.ingest.read_clip`` like any file, trains
the project's compact (2+1)D view classifier (cpu-demo sizes: width 8, 8 frames, period 4, with
the training augmentation) on them, and classifies real cines shipped inside PyPI packages
(pydicom's ``examples_ybr_color.dcm``, an apical 4-chamber cine) that it never saw. It also
reports accuracy on held-out synthetic clips. Small and CPU-only: a quick check, not the shipped
model (``make demo-assets`` rebuilds that). Last line: ``real_correct: K/N``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from echocmr.config import ModelConfig, SynthConfig  # noqa: E402
from echocmr.dataset import ClipSampling, augment, eval_starts, frame_indices, to_tensor  # noqa: E402
from echocmr.ingest.pipeline import read_clip  # noqa: E402
from echocmr.models import build_model, prepare_input  # noqa: E402
from echocmr.synth import draw_clip_spec, generate_patients, render_clip  # noqa: E402

LABELS = ("A4C", "A2C", "PLAX", "other")
REAL = {"examples_ybr_color.dcm": "A4C"}
FPS = 30.0
SAMPLING = ClipSampling(8, 4)


def synthetic_videos(n_per_class: int, seed: int, size: tuple[int, int]) -> list[tuple[np.ndarray, int]]:
    from realism import _dicom_bytes

    rng = np.random.default_rng(seed)
    patients = generate_patients(SynthConfig(n_patients=n_per_class * len(LABELS), seed=seed))
    out = []
    for i, patient in enumerate(patients):
        label = i % len(LABELS)
        view = LABELS[label] if LABELS[label] != "other" else ("PSAX", "A3C")[int(rng.integers(2))]
        spec = draw_clip_spec(rng, view, size, 2.1, (30.0, 60.0))
        rendered = render_clip(spec, patient.heart, bgr=True)
        clip = read_clip(_dicom_bytes(rendered, spec), target_fps=FPS)
        out.append((clip.frames, label))
    return out


def _batch(videos, rng, norm) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = [], []
    for frames, label in videos:
        start = int(rng.integers(max(len(frames) - SAMPLING.span, 0) + 1))
        clip = augment(frames[frame_indices(len(frames), SAMPLING, start)], rng)
        xs.append(((torch.as_tensor(clip) - norm["mean"]) / norm["std"]).unsqueeze(0))
        ys.append(label)
    return torch.stack(xs), torch.tensor(ys)


def train(videos, steps: int, seed: int):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    allpix = np.concatenate([v[0][::8].ravel() for v in videos])
    norm = {"mean": float(allpix.mean()), "std": float(allpix.std() + 1e-6)}
    model = build_model(ModelConfig(arch="compact", width=8, n_frames=SAMPLING.n_frames,
                                    period=SAMPLING.period), len(LABELS))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    model.train()
    for step in range(steps):
        pick = rng.choice(len(videos), size=16)
        x, y = _batch([videos[i] for i in pick], rng, norm)
        loss = torch.nn.functional.cross_entropy(model(prepare_input(x, torch.device("cpu"))), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 50 == 0:
            print(f"  step {step}: loss {loss.item():.3f}", flush=True)
    model.eval()
    return model, norm


@torch.inference_mode()
def classify(model, norm, frames: np.ndarray) -> np.ndarray:
    clips = [to_tensor(frames[frame_indices(len(frames), SAMPLING, s)], norm)
             for s in eval_starts(len(frames), SAMPLING, 4)]
    logits = model(prepare_input(torch.stack(clips), torch.device("cpu")))
    return torch.softmax(logits, dim=1).mean(dim=0).numpy()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=24, help="synthetic training clips per class")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    start = time.time()
    videos = synthetic_videos(args.clips, args.seed, (120, 160))
    held = synthetic_videos(max(2, args.clips // 4), args.seed + 1, (120, 160))
    print(f"rendered and ingested {len(videos) + len(held)} clips in {time.time() - start:.0f} s")
    model, norm = train(videos, args.steps, args.seed)
    acc = np.mean([int(np.argmax(classify(model, norm, f))) == y for f, y in held])
    print(f"held-out synthetic accuracy: {acc:.2f} ({len(held)} clips)")
    import pydicom

    correct = 0
    for name, truth in REAL.items():
        clip = read_clip(str(Path(os.path.dirname(pydicom.__file__)) / "data" / "test_files" / name), target_fps=FPS)
        probs = classify(model, norm, clip.frames)
        label = LABELS[int(np.argmax(probs))]
        correct += label == truth
        print(f"real {name} ({truth}): {label}  " + "  ".join(f"{k} {p:.2f}" for k, p in zip(LABELS, probs)))
    print(f"total {time.time() - start:.0f} s")
    print(f"real_correct: {correct}/{len(REAL)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
