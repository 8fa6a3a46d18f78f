"""Exploration: does a WMA output that is local by construction point at the akinetic segment?

The shipped models pool their features over the whole clip before one linear layer, so a map of
their WMA output must be recovered afterwards (integrated gradients, Grad-CAM, occlusion), and on
synthetic clips with one akinetic segment those maps point *away* from it, even for a model taught
the task (``bench/attribution_localisation.py --positive-control``). Here a copy of the bundle's
``--view`` model's trunk (stem to layer3: 1/8 of the resolution in space, 1/4 in time) gets a 1×1×1
convolution that scores every place and time, and the WMA logit is the log-mean-exp of those
scores (sharpness ``--sharpness``; multiple-instance pooling: one abnormal place can carry the
clip). It is taught the positive control's clips (``echocmr.attribution_control.control_clips``,
WMA in the view only, no segment labels), and its map is its own pooling weights — no attribution
method in between. Scored like the localisation bench: per clip the share of the map inside the
akinetic segment over the segment's share of the myocardium (1 = chance), on the same clips
(seed 0) and their all-normal twins. Prints the figures, last ``ratio: M [LO, HI]`` (95 %
percentile bootstrap over clips). ~8 min on 2 cores at the defaults. Nothing is saved.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from echocmr.attribution import central_window, localisation_ratio  # noqa: E402
from echocmr.attribution_check import RENDER_SIZE, bootstrap_mean, labelled_clip, one_akinetic, visible_segments  # noqa: E402
from echocmr.attribution_control import PositiveControlConfig, control_clips, training_batch  # noqa: E402
from echocmr.bundle import active_bundle_dir  # noqa: E402
from echocmr.config import SynthConfig  # noqa: E402
from echocmr.dataset import to_tensor  # noqa: E402
from echocmr.model_runner import LoadedModel, load_view_model  # noqa: E402


class ScoreMapWMA(nn.Module):
    """(B, 3, T, 112, 112) -> (B,) WMA logit, log-mean-exp of a (B, T/4, 14, 14) score map."""

    def __init__(self, trunk: nn.Module, channels: int, sharpness: float):
        super().__init__()
        self.trunk, self.sharpness = trunk, float(sharpness)
        self.score = nn.Conv3d(channels, 1, kernel_size=1)

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        t = self.trunk
        return self.score(t.layer3(t.layer2(t.layer1(t.stem(x)))))[:, 0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.scores(x).flatten(1) * self.sharpness
        return (torch.logsumexp(s, dim=1) - float(np.log(s.shape[1]))) / self.sharpness

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """float (T, 112, 112) for one clip: each place's share of the pooled logit, upsampled."""
        s = self.scores(x)[0] * self.sharpness
        w = torch.softmax(s.flatten(), dim=0).reshape(s.shape)
        return F.interpolate(w[None, None], size=tuple(x.shape[2:]), mode="trilinear", align_corners=False)[0, 0]


def build(base: LoadedModel, sharpness: float) -> ScoreMapWMA:
    trunk = copy.deepcopy(base.module).cpu()
    with torch.no_grad():
        channels = trunk.layer3(trunk.layer2(trunk.layer1(trunk.stem(torch.zeros(1, 3, 4, 32, 32))))).shape[1]
    return ScoreMapWMA(trunk, channels, sharpness)


def teach(model: ScoreMapWMA, base: LoadedModel, config: PositiveControlConfig) -> None:
    clips, targets = control_clips(base, config)
    y = torch.from_numpy(targets[:, 0])
    optimiser = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=1e-4)
    rng = np.random.default_rng(config.seed)
    model.train()
    for epoch in range(config.epochs):
        order, total = rng.permutation(len(clips)), 0.0
        for start in range(0, len(order), config.batch_size):
            picks = order[start:start + config.batch_size]
            loss = F.binary_cross_entropy_with_logits(model(training_batch(clips, picks, base, rng)), y[picks])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * len(picks)
        print(f"score-map head {config.view}: epoch {epoch + 1}/{config.epochs} loss {total / len(clips):.4f}", flush=True)
    model.eval()


def score(model: ScoreMapWMA, base: LoadedModel, spec, heart, segment: int) -> tuple[float, float]:
    """(localisation ratio of the map on the myocardium, window P(WMA)) for one rendered clip."""
    clip, labels, _ = labelled_clip(spec, heart)
    idx = central_window(base, len(clip.frames))
    x = to_tensor(clip.frames[idx], base.meta["normalisation"])[None].expand(-1, 3, -1, -1, -1)
    with torch.no_grad():
        heat, logit = model.weights(x).numpy(), float(model(x)[0])
    window = labels[idx]
    return localisation_ratio(heat, window == segment, window > 0), float(1 / (1 + np.exp(-logit)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", type=Path, help="bundle folder (default: the active bundle)")
    parser.add_argument("--view", default="A2C")
    parser.add_argument("--control-clips", type=int, default=PositiveControlConfig().n_clips)
    parser.add_argument("--control-epochs", type=int, default=PositiveControlConfig().epochs)
    parser.add_argument("--sharpness", type=float, default=4.0)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    torch.manual_seed(args.seed)
    bundle = args.model or active_bundle_dir()
    base = load_view_model(bundle / args.view)
    model = build(base, args.sharpness)
    teach(model, base, PositiveControlConfig(view=args.view, n_clips=args.control_clips, epochs=args.control_epochs))
    from echocmr.synth import draw_clip_spec, generate_patients

    rng, rows = np.random.default_rng(args.seed), []
    for patient in generate_patients(SynthConfig(n_patients=args.clips, seed=args.seed)):
        spec = draw_clip_spec(rng, args.view, RENDER_SIZE, 2.1)
        segment = int(rng.choice(visible_segments(spec, patient.heart)))
        normal = dataclasses.replace(patient.heart, wma=np.zeros(17, np.int8), transmural=np.zeros(17, bool))
        rows.append(score(model, base, spec, one_akinetic(normal, segment), segment)
                    + score(model, base, spec, normal, segment))
        print(f"segment {segment:2d}  ratio {rows[-1][0]:5.2f} (control {rows[-1][2]:5.2f})  "
              f"P(WMA) {rows[-1][1]:.2f} (normal {rows[-1][3]:.2f})", flush=True)
    r = np.array(rows, dtype=np.float64)
    print(f"bundle: {bundle.name}, {args.view} trunk with a score-map WMA head taught single akinetic segments; "
          "synthetic clips; 95 % percentile bootstrap over clips")
    for name, values in (("P(WMA), akinetic minus normal twin", r[:, 1] - r[:, 3]),
                         ("control ratio (same clips, all segments normal)", r[:, 2]),
                         ("paired difference, akinetic minus control", r[:, 0] - r[:, 2]),
                         ("ratio", r[:, 0])):
        m, lo, hi = bootstrap_mean(values)
        print(f"{name}: {m:.2f} [{lo:.2f}, {hi:.2f}]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
