"""Video models: the paper's R(2+1)D-18, a compact R(2+1)D for CPUs, outputs pooled from a score map, losses.

Input contract for every model here: float32 tensor (B, 3, T, 112, 112), grey frames already
normalised by the dataset's pixel mean/std. The dataset and the inference helpers keep clips as
one grey channel (3x less to copy and pin) and ``prepare_input`` repeats that channel to 3 on the
device, so a model always sees 3 channels and ImageNet/Kinetics-style weights load unchanged.

Nothing is ever downloaded: ``r2plus1d_18`` is built with ``weights=None`` and optional weights
come only from ``ModelConfig.pretrained_path`` (safetensors, or a torch file read with
``weights_only=True``).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.video import r2plus1d_18
from torchvision.models.video.resnet import BasicBlock, Conv2Plus1D

from .config import ModelConfig
from .errors import CheckpointError, ConfigError

# "r2plus1d_18_per_target": one whole r2plus1d_18 (one logit) per output, as the published
# Sahashi et al. 2024 weights are (echocmr/official.py); imported only, never trained here.
ARCHS = ("r2plus1d_18", "compact", "r2plus1d_18_per_target")
# Pretrained files larger than this are refused before reading (r2plus1d_18 fp32 is ~125 MB).
MAX_PRETRAINED_BYTES = 1 << 30
HEAD_KEYS = ("fc.", "score_map.")  # trained for our outputs; never taken from pretrained weights


class CompactR2Plus1D(nn.Module):
    """R(2+1)D with r2plus1d_18's block structure and strides but ``width`` stem channels.

    Stages have width, 2w, 4w, 8w channels with two BasicBlocks (Conv2Plus1D) each; stages 2-4
    halve time and space, like torchvision's VideoResNet (which hard-codes 64 channels, hence
    this small re-assembly of its own building blocks). Attribute names match VideoResNet
    (stem, layer1..4, avgpool, fc) so code that handles one handles the other.
    """

    def __init__(self, width: int, n_outputs: int):
        super().__init__()
        if width < 2:
            raise ConfigError(f"compact model width must be >= 2, got {width}")
        mid = max(2, round(width * 45 / 64))  # r2plus1d_18's stem: 45 mid channels for 64
        self.stem = nn.Sequential(
            nn.Conv3d(3, mid, kernel_size=(1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3), bias=False),
            nn.BatchNorm3d(mid),
            nn.ReLU(inplace=True),
            nn.Conv3d(mid, width, kernel_size=(3, 1, 1), padding=(1, 0, 0), bias=False),
            nn.BatchNorm3d(width),
            nn.ReLU(inplace=True),
        )
        self.inplanes = width
        self.layer1 = self._make_layer(width, stride=1)
        self.layer2 = self._make_layer(width * 2, stride=2)
        self.layer3 = self._make_layer(width * 4, stride=2)
        self.layer4 = self._make_layer(width * 8, stride=2)
        self.avgpool = nn.AdaptiveAvgPool3d((1, 1, 1))
        self.fc = nn.Linear(width * 8, n_outputs)
        _init_like_torchvision(self)

    def _make_layer(self, planes: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(
                nn.Conv3d(self.inplanes, planes, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm3d(planes),
            )
        first = BasicBlock(self.inplanes, planes, Conv2Plus1D, stride, downsample)
        self.inplanes = planes
        return nn.Sequential(first, BasicBlock(planes, planes, Conv2Plus1D))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, T, H, W) float -> (B, n_outputs) float."""
        x = self.stem(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))


class PerTargetR2Plus1D(nn.Module):
    """``n_outputs`` independent r2plus1d_18 networks with one logit each, outputs concatenated.

    The published weights are one network per target (WMA, LGE); keeping them whole (rather than
    re-heading one backbone) runs them exactly as released. Keys: ``nets.<k>.<torchvision key>``.
    """

    def __init__(self, n_outputs: int):
        super().__init__()
        self.nets = nn.ModuleList(r2plus1d_18(weights=None, num_classes=1) for _ in range(n_outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, T, H, W) float -> (B, n_outputs) logits."""
        return torch.cat([net(x) for net in self.nets], dim=1)


class MapPooledNet(nn.Module):
    """An R(2+1)D whose first ``n_map`` outputs are each pooled from a score map, the rest from fc.

    A 1x1x1 convolution on ``layer3``'s features (1/8 of the resolution in space, 1/4 in time)
    scores every place and time; output k < ``n_map`` is the log-mean-exp of its map at sharpness
    ``MAP_SHARPNESS`` (multiple-instance pooling: one abnormal place can carry the clip, and a
    normal clip must keep every place low). The map is then an explanation by construction
    (``maps``; ``echocmr.attribution``'s "score-map"), where a clip-wide average before one linear
    layer leaves it to be recovered afterwards. The other outputs go through layer4, the average
    and ``fc`` as before. Keys: the trunk's (stem, layer1..4, fc) plus ``score_map``.
    """

    def __init__(self, trunk: nn.Module, n_map: int, n_outputs: int):
        super().__init__()
        if not 1 <= n_map < n_outputs:
            raise ConfigError(f"map_outputs must be 1..{n_outputs - 1} for a model with {n_outputs} outputs "
                              f"(at least one output is pooled from the whole clip), got {n_map}")
        self.n_map = int(n_map)
        parts = {name: getattr(trunk, name) for name in ("stem", "layer1", "layer2", "layer3", "layer4", "avgpool")}
        assert all(isinstance(part, nn.Module) for part in parts.values())  # VideoResNet's attribute names
        self.stem, self.layer1, self.layer2 = parts["stem"], parts["layer1"], parts["layer2"]
        self.layer3, self.layer4, self.avgpool = parts["layer3"], parts["layer4"], parts["avgpool"]
        head = trunk.fc
        assert isinstance(head, nn.Linear)  # both trunks end in one Linear layer
        self.fc = nn.Linear(head.in_features, n_outputs - n_map)
        # layer4 doubles layer3's channels in r2plus1d_18 and CompactR2Plus1D alike.
        self.score_map = nn.Conv3d(head.in_features // 2, n_map, kernel_size=1)
        for layer in (self.fc, self.score_map):
            nn.init.normal_(layer.weight, 0, 0.01)
            if layer.bias is not None:  # both have one; Conv3d's is typed optional
                nn.init.constant_(layer.bias, 0)

    def maps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (B, 3, T, H, W) -> (scores (B, n_map, T/4, H/8, W/8), layer3 features)."""
        features = self.layer3(self.layer2(self.layer1(self.stem(x))))
        return self.score_map(features), features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, T, H, W) float -> (B, n_outputs) float: map-pooled outputs first."""
        scores, features = self.maps(x)
        pooled = self.fc(self.avgpool(self.layer4(features)).flatten(1))
        return torch.cat([log_mean_exp(scores.flatten(2)), pooled], dim=1)


MAP_SHARPNESS = 4.0  # log-mean-exp temperature: 4 ~ between the mean (0) and the max (inf) of a map


def log_mean_exp(scores: torch.Tensor) -> torch.Tensor:
    """(B, K, N) float scores -> (B, K): (1/s) log mean exp(s * scores) at s = ``MAP_SHARPNESS``."""
    sharp = scores.float() * MAP_SHARPNESS
    return (torch.logsumexp(sharp, dim=2) - math.log(sharp.shape[2])) / MAP_SHARPNESS


def map_weights(scores: torch.Tensor) -> torch.Tensor:
    """(B, K, T', H', W') scores -> the same shape: each place's weight in its map's log-mean-exp
    (softmax of the sharpened scores; sums to 1 per map). float32."""
    sharp = scores.float() * MAP_SHARPNESS
    return torch.softmax(sharp.flatten(2), dim=2).reshape(sharp.shape)


def _init_like_torchvision(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.Conv3d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm3d):
            nn.init.constant_(m.weight, 1)
            nn.init.constant_(m.bias, 0)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.constant_(m.bias, 0)


def build_model(config: ModelConfig, n_outputs: int) -> nn.Module:
    """A video model with one output per target (or per view class for the classifier).

    ``config.arch``: ``"r2plus1d_18"`` (torchvision, random init, fc -> n_outputs) or
    ``"compact"`` (``config.width`` stem channels). Loads ``config.pretrained_path`` if set.
    """
    if n_outputs < 1:
        raise ConfigError("a model needs at least one output")
    if config.arch == "r2plus1d_18":
        model: nn.Module = r2plus1d_18(weights=None)
        head = model.fc
        assert isinstance(head, nn.Linear)  # torchvision's r2plus1d_18 ends in one Linear layer
        model.fc = nn.Linear(head.in_features, n_outputs)
        nn.init.normal_(model.fc.weight, 0, 0.01)
        nn.init.constant_(model.fc.bias, 0)
    elif config.arch == "compact":
        model = CompactR2Plus1D(config.width, n_outputs)
    elif config.arch == "r2plus1d_18_per_target":
        model = PerTargetR2Plus1D(n_outputs)
    else:
        raise ConfigError(f"unknown model arch {config.arch!r}; choose one of {', '.join(ARCHS)}")
    if config.map_outputs:
        if config.arch == "r2plus1d_18_per_target":
            raise ConfigError("map_outputs needs one shared trunk; r2plus1d_18_per_target has one per output")
        model = MapPooledNet(model, int(config.map_outputs), n_outputs)
    if config.pretrained_path:
        load_pretrained(model, Path(config.pretrained_path))
    return model


def without_pretrained(config: ModelConfig) -> ModelConfig:
    """The same architecture without the pretrained file (rebuilding a saved model needs none)."""
    return dataclasses.replace(config, pretrained_path="")


def load_pretrained(model: nn.Module, path: Path) -> None:
    """Load local backbone weights; every tensor except the heads (``fc.*``, ``score_map.*``) must match in shape.

    Accepts ``.safetensors`` or a torch file holding a plain state dict (read with
    ``weights_only=True``, so no code in it runs). ``module.`` / ``_orig_mod.`` prefixes are ignored.
    """
    if not path.is_file():
        raise CheckpointError(f"pretrained weights file not found: {path.name}")
    if path.stat().st_size > MAX_PRETRAINED_BYTES:
        raise CheckpointError("pretrained weights file is larger than the 1 GiB limit")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state: Any = load_file(str(path))
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # pickle/format errors come in many types; all mean "refuse"
            raise CheckpointError(f"pretrained weights could not be read safely: {type(exc).__name__}") from None
        if isinstance(state, dict):
            state = state.get("state_dict", state)
    if not isinstance(state, dict):
        raise CheckpointError("pretrained weights file does not hold a state dict")
    state = {strip_prefixes(k): v for k, v in state.items() if not strip_prefixes(k).startswith(HEAD_KEYS)}
    own = {k: v for k, v in model.state_dict().items() if not k.startswith(HEAD_KEYS)}
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape))
    if missing or unexpected or wrong:
        raise CheckpointError(
            f"pretrained weights do not fit the architecture: {len(missing)} missing, "
            f"{len(unexpected)} unexpected, {len(wrong)} with other shapes (e.g. {(missing + unexpected + wrong)[:3]})"
        )
    model.load_state_dict(state, strict=False)


def strip_prefixes(key: str) -> str:
    """Remove wrapper prefixes added by DistributedDataParallel and torch.compile."""
    changed = True
    while changed:
        changed = False
        for prefix in ("module.", "_orig_mod."):
            if key.startswith(prefix):
                key, changed = key[len(prefix):], True
    return key


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module inside DDP and/or torch.compile wrappers."""
    while True:
        if hasattr(model, "module") and isinstance(model.module, nn.Module):
            model = model.module
        elif hasattr(model, "_orig_mod") and isinstance(model._orig_mod, nn.Module):
            model = model._orig_mod
        else:
            return model


def prepare_input(x: torch.Tensor, device: torch.device, channels_last: bool = False) -> torch.Tensor:
    """(B, 1 or 3, T, H, W) float -> (B, 3, T, H, W) on ``device``; grey repeated after the copy."""
    x = x.to(device, non_blocking=True)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1, -1)
    if channels_last:
        return x.contiguous(memory_format=torch.channels_last_3d)
    return x.contiguous()


def multitask_loss(
    outputs: torch.Tensor,
    targets: torch.Tensor,
    mask: torch.Tensor,
    binary_idx: list[int] | torch.Tensor,
    continuous_idx: list[int] | torch.Tensor,
) -> torch.Tensor:
    """Masked multi-task loss: mean over present labels of BCE (binary) and MSE (continuous).

    outputs, targets, mask: (B, K) float; ``mask`` is 1 where the label is present, 0 where it is
    missing (NaN in the manifest; its ``targets`` entry may be anything, even NaN, and contributes
    nothing, not even to the gradient). Returns a scalar float32; 0 when no label is present.
    """
    outputs = outputs.float()
    present = mask > 0
    safe_targets = torch.where(present, targets.float(), torch.zeros_like(outputs))
    per_item = torch.zeros_like(outputs)
    b_idx = torch.as_tensor(binary_idx, dtype=torch.long, device=outputs.device)
    c_idx = torch.as_tensor(continuous_idx, dtype=torch.long, device=outputs.device)
    if b_idx.numel():
        bce = F.binary_cross_entropy_with_logits(outputs[:, b_idx], safe_targets[:, b_idx], reduction="none")
        per_item = per_item.index_copy(1, b_idx, bce)
    if c_idx.numel():
        mse = (outputs[:, c_idx] - safe_targets[:, c_idx]) ** 2
        per_item = per_item.index_copy(1, c_idx, mse)
    # where() rather than multiply: a NaN/inf at a masked position must not leak through 0 * x.
    per_item = torch.where(present, per_item, torch.zeros_like(per_item))
    n_present = present.sum()
    return per_item.sum() / n_present.clamp(min=1).to(per_item.dtype)


def classifier_loss(outputs: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """View-classifier loss: cross-entropy; ``targets`` (B, C) one-hot float, ``mask`` unused."""
    del mask  # the view label is always present for rows the classifier trains on
    return F.cross_entropy(outputs.float(), targets.argmax(dim=1))
