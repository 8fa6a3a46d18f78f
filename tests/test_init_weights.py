"""``echocmr train --init-weights FILE``: a local torchvision r2plus1d_18 state dict starts the paper preset."""

from __future__ import annotations

import os

import pytest
import torch
from torchvision.models.video import r2plus1d_18

from echocmr.cli import build_parser
from echocmr.commands.train import config_from_args
from echocmr.config import preset
from echocmr.errors import CheckpointError, ConfigError
from echocmr.models import build_model

pytestmark = pytest.mark.slow  # writes and reads r2plus1d_18 files (~125 MB each)


def _args(*extra: str):
    return build_parser().parse_args(["train", "--data", "unused", *extra])


def test_kinetics_style_weights_start_the_backbone_and_the_head_is_replaced(tmp_path):
    torch.manual_seed(0)
    kinetics = r2plus1d_18(weights=None)  # 400-class head, as torchvision's Kinetics-400 weights
    path = tmp_path / "r2plus1d_18_kinetics.pth"
    torch.save(kinetics.state_dict(), path)
    config = config_from_args(_args("--preset", "paper", "--init-weights", str(path)), preset("paper"))
    assert config.model.pretrained_path == str(path.resolve())
    model = build_model(config.model, 5)
    assert torch.equal(model.layer3[0].conv1[0][0].weight, kinetics.layer3[0].conv1[0][0].weight)
    assert model.fc.out_features == 5

    wrong = tmp_path / "wrong.pth"
    torch.save({**kinetics.state_dict(), "layer1.0.conv1.0.0.weight": torch.zeros(3, 3)}, wrong)
    with pytest.raises(CheckpointError, match="do not fit"):
        config_from_args(_args("--preset", "paper", "--init-weights", str(wrong)), preset("paper"))
    with pytest.raises(ConfigError, match="r2plus1d_18"):
        config_from_args(_args("--preset", "cpu-demo", "--init-weights", str(path)), preset("cpu-demo"))


def test_a_pickle_payload_is_refused_without_running(tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pth"
    torch.save({"stem.0.weight": Payload()}, path)
    with pytest.raises(CheckpointError, match="safely"):
        config_from_args(_args("--preset", "paper", "--init-weights", str(path)), preset("paper"))
    assert not marker.exists()
    with pytest.raises(ConfigError, match="does not exist"):
        config_from_args(_args("--init-weights", str(tmp_path / "missing.pth")), preset("paper"))
