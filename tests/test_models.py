"""Models, masked losses and the dataset."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from echocmr.config import ModelConfig
from echocmr.dataset import (ClipDataset, ClipSampling, EpochSampler, compute_target_scaling, eval_starts,
                             frame_indices, select_rows, target_arrays)
from echocmr.prepared import read_manifest
from echocmr.errors import CheckpointError
from echocmr.models import build_model, classifier_loss, multitask_loss, prepare_input
from echocmr.targets import BINARY_TARGETS, CLASSIFIER_LABELS, TARGETS


NAMES = tuple(t.name for t in TARGETS)
BINARY = [i for i, n in enumerate(NAMES) if n in BINARY_TARGETS]
CONTINUOUS = [i for i, n in enumerate(NAMES) if n not in BINARY_TARGETS]
TINY = ModelConfig(arch="compact", width=4, n_frames=8, period=2)


@pytest.fixture(scope="module")
def prepared(tiny_prepared):
    return tiny_prepared  # tests/conftest.py: built once per session


def test_r2plus1d_18_has_one_output_per_target():
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch="r2plus1d_18"), len(NAMES)).eval()
    with torch.inference_mode():
        out = model(torch.randn(1, 3, 8, 112, 112))
    assert out.shape == (1, len(NAMES))
    assert sum(p.numel() for p in model.parameters()) > 30_000_000  # the real R(2+1)D-18


def test_compact_model_shapes_and_grey_input():
    model = build_model(TINY, len(NAMES)).eval()
    grey = torch.randn(2, 1, 8, 112, 112)
    with torch.inference_mode():
        out = model(prepare_input(grey, torch.device("cpu")))
        same = model(grey.expand(-1, 3, -1, -1, -1).contiguous())
    assert out.shape == (2, len(NAMES)) and torch.equal(out, same)
    classifier = build_model(TINY, len(CLASSIFIER_LABELS))
    assert classifier(torch.randn(1, 3, 8, 112, 112)).shape == (1, 4)


def test_masked_loss_equals_loss_over_present_labels_only():
    torch.manual_seed(0)
    outputs = torch.randn(5, len(NAMES), requires_grad=True)
    targets = torch.randn(5, len(NAMES))
    targets[:, BINARY] = (targets[:, BINARY] > 0).float()
    mask = (torch.rand(5, len(NAMES)) > 0.4).float()
    targets[mask == 0] = float("nan")  # a missing label is NaN in the manifest
    loss = multitask_loss(outputs, targets, mask, BINARY, CONTINUOUS)
    terms = []
    for i in range(5):
        for k in range(len(NAMES)):
            if mask[i, k]:
                o, t = outputs[i, k], targets[i, k]
                terms.append(F.binary_cross_entropy_with_logits(o, t) if k in BINARY else (o - t) ** 2)
    expected = torch.stack(terms).mean()
    assert torch.allclose(loss, expected, atol=1e-6)
    loss.backward()
    assert torch.isfinite(outputs.grad).all()
    assert torch.all(outputs.grad[mask == 0] == 0)
    # No label at all: zero loss, not NaN.
    assert multitask_loss(outputs, targets, torch.zeros_like(mask), BINARY, CONTINUOUS).item() == 0.0


def test_a_few_steps_reduce_the_loss(prepared):
    manifest = read_manifest(prepared)
    rows = select_rows(manifest, "train", "A4C")
    scaling = compute_target_scaling(rows)
    values, mask = target_arrays(rows, NAMES, scaling)
    dataset = ClipDataset(prepared, rows, values, mask, ClipSampling(8, 2), {"mean": 80.0, "std": 60.0},
                          train=False)
    x, y, m, _ = (torch.stack(t) if isinstance(t[0], torch.Tensor) else t
                  for t in zip(*[dataset[i] for i in range(4)]))
    torch.manual_seed(0)
    model = build_model(TINY, len(NAMES))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(6):
        loss = multitask_loss(model(prepare_input(x, torch.device("cpu"))), y, m, BINARY, CONTINUOUS)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]
    assert classifier_loss(torch.zeros(2, 4), torch.eye(4)[:2], torch.ones(2, 4)).item() == pytest.approx(np.log(4))


def test_pretrained_weights_load_except_the_head(tmp_path):
    from safetensors.torch import save_file

    source = build_model(TINY, 3)
    path = tmp_path / "backbone.safetensors"
    save_file({f"module.{k}": v.contiguous() for k, v in source.state_dict().items()}, str(path))
    model = build_model(ModelConfig(arch="compact", width=4, pretrained_path=str(path)), len(NAMES))
    assert torch.equal(model.stem[0].weight, source.stem[0].weight)
    assert model.fc.out_features == len(NAMES)
    with pytest.raises(CheckpointError, match="do not fit"):
        build_model(ModelConfig(arch="compact", width=8, pretrained_path=str(path)), 2)


MAPPED = ModelConfig(arch="compact", width=4, n_frames=8, period=2, map_outputs=2)


def test_map_pooled_outputs_are_the_log_mean_exp_of_their_maps():
    """Outputs 0 and 1 are (1/4) log mean exp(4 s) over their own layer3 maps; the rest come from
    layer4's clip average and fc, exactly as the plain model computes them."""
    from echocmr.models import MAP_SHARPNESS, MapPooledNet, map_weights

    torch.manual_seed(0)
    model = build_model(MAPPED, len(NAMES)).eval()
    assert isinstance(model, MapPooledNet) and model.fc.out_features == len(NAMES) - 2
    torch.nn.init.normal_(model.score_map.weight, 0, 0.5)  # a map with contrast
    x = torch.randn(2, 3, 8, 112, 112)
    with torch.inference_mode():
        out = model(x)
        scores, features = model.maps(x)
        pooled = model.fc(model.avgpool(model.layer4(features)).flatten(1))
    assert scores.shape == (2, 2, 2, 14, 14) and out.shape == (2, len(NAMES))
    flat = scores.flatten(2).double() * MAP_SHARPNESS
    expected = (flat.exp().mean(dim=2).log() / MAP_SHARPNESS).float()
    assert torch.allclose(out[:, :2], expected, atol=1e-5) and torch.equal(out[:, 2:], pooled)
    assert scores.flatten(2).mean(2).lt(out[:, :2]).all() and out[:, :2].lt(scores.flatten(2).amax(2)).all()
    weights = map_weights(scores)
    assert torch.allclose(weights.flatten(2).sum(2), torch.ones(2, 2)) and (weights >= 0).all()
    assert list(model.state_dict())[-2:] == ["score_map.weight", "score_map.bias"]


def test_map_outputs_that_cannot_work_are_refused():
    from echocmr.errors import ConfigError

    with pytest.raises(ConfigError, match=r"map_outputs must be 1..1 for a model with 2 outputs.*got 2"):
        build_model(MAPPED, 2)  # nothing left to pool from the whole clip
    with pytest.raises(ConfigError, match="one shared trunk"):
        build_model(ModelConfig(arch="r2plus1d_18_per_target", map_outputs=1), 2)


def test_pretrained_weights_start_a_map_pooled_model_except_its_heads(tmp_path):
    """A plain backbone file (its fc of another size) starts the trunk; fc and score_map stay new."""
    from safetensors.torch import save_file

    source = build_model(TINY, 3)
    path = tmp_path / "backbone.safetensors"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(path))
    import dataclasses

    model = build_model(dataclasses.replace(MAPPED, pretrained_path=str(path)), len(NAMES))
    assert torch.equal(model.layer3[0].conv1[0][0].weight, source.layer3[0].conv1[0][0].weight)
    assert model.score_map.out_channels == 2 and model.fc.out_features == len(NAMES) - 2


def test_dataset_filters_and_masks(prepared):
    manifest = read_manifest(prepared)
    rows = select_rows(manifest, "train", "A4C")
    assert "rejected000" not in set(rows["clip_id"]) and set(rows["view"]) == {"A4C"}
    scaling = compute_target_scaling(rows)
    values, mask = target_arrays(rows, NAMES, scaling)
    t1 = NAMES.index("t1")
    assert np.all(mask[rows["t1"].isna().to_numpy(), t1] == 0)
    present = mask[:, t1] > 0
    assert abs(values[present, t1].mean()) < 1e-5 and abs(values[present, t1].std() - 1) < 1e-4
    train = ClipDataset(prepared, rows, values, mask, ClipSampling(8, 2), {"mean": 80.0, "std": 60.0}, train=True)
    x, y, m, index = train[(1, 0)]
    assert x.shape == (1, 8, 112, 112) and x.dtype == torch.float32 and y.shape == (len(NAMES),)
    assert torch.equal(x, train[(1, 0)][0])  # keyed by (epoch, index): reproducible anywhere
    assert not torch.equal(x, train[(2, 0)][0])  # and different next epoch
    sampler = EpochSampler(train, num_replicas=2, rank=1, seed=0)
    sampler.set_epoch(3)
    keys = list(sampler)
    assert all(k[0] == 3 for k in keys) and len(keys) == (len(train) + 1) // 2


def test_clip_sampling_loops_short_videos_and_spreads_eval_clips():
    sampling = ClipSampling(8, 2)
    assert list(frame_indices(5, sampling, 0)) == [0, 2, 4, 1, 3, 0, 2, 4]
    assert eval_starts(100, sampling, 4) == [0, 28, 57, 85]
    assert eval_starts(10, sampling, 3) == [0, 0, 0]
