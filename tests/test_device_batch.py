"""Clips stay uint8 through the DataLoader; augmentation + normalisation on the device reproduce
the float path (dataset.augment + dataset.to_tensor) that training used before."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from echocmr.dataset import ClipDataset, ClipSampling, select_rows
from echocmr.prepared import read_manifest
from echocmr.device_batch import N_PARAMS, batch_to_model_input

from prepared_factory import make_prepared

NORM = {"mean": 81.3, "std": 57.9}
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return make_prepared(tmp_path_factory.mktemp("prepared"), views={"A4C": 12}, n_frames=40)


def _datasets(prepared, train: bool, augment: bool = True):
    rows = select_rows(read_manifest(prepared), "train")
    values = np.random.default_rng(0).normal(size=(len(rows), 3)).astype(np.float32)
    mask = np.ones_like(values)
    kwargs = dict(train=train, seed=5, augment=augment, n_clips=2)
    return (ClipDataset(prepared, rows, values, mask, ClipSampling(16, 2), NORM, **kwargs),
            ClipDataset(prepared, rows, values, mask, ClipSampling(16, 2), NORM, uint8_output=True, **kwargs))


def _collate(items):
    return [torch.stack(t) if isinstance(t[0], torch.Tensor) else torch.tensor(t) for t in zip(*items)]


@pytest.mark.parametrize("train,augment", [(True, True), (True, False), (False, False)])
def test_device_side_normalisation_equals_the_float_path(prepared, train, augment):
    float_set, u8_set = _datasets(prepared, train, augment)
    keys = [(e, i) for e in (0, 3) for i in range(len(float_set))] if train else list(range(len(float_set)))
    old = _collate([float_set[k] for k in keys])
    new = _collate([u8_set[k] for k in keys])
    assert new[0].dtype == torch.uint8 and new[0].shape == (len(keys), 1, 16, 112, 112)
    assert new[1].shape == (len(keys), N_PARAMS)
    x_new, y_new, m_new = batch_to_model_input(new, CPU)
    x_old, y_old, m_old = batch_to_model_input(old, CPU)
    assert x_new.shape == x_old.shape == (len(keys), 3, 16, 112, 112) and x_new.dtype == torch.float32
    assert torch.equal(y_new, y_old) and torch.equal(m_new, m_old)
    if augment:
        # Only the float64 clip mean is summed in another order (numpy pairwise vs torch): at most
        # a float32 rounding step of a normalised value, in practice identical.
        assert torch.allclose(x_new, x_old, rtol=0, atol=1e-5)
        assert (x_new == x_old).float().mean() > 0.999
    else:
        assert torch.equal(x_new, x_old)


def test_uint8_batches_cross_the_dataloader_workers(prepared):
    float_set, u8_set = _datasets(prepared, train=False)
    loader = DataLoader(u8_set, batch_size=4, num_workers=2)
    batches = list(loader)
    assert all(b[0].dtype == torch.uint8 for b in batches)
    x = torch.cat([batch_to_model_input(b, CPU)[0] for b in batches])
    ref = torch.cat([batch_to_model_input(b, CPU)[0] for b in DataLoader(float_set, batch_size=4)])
    assert torch.equal(x, ref)
