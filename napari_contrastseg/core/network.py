"""U-Net (2D or 3D) that returns logits and the decoder feature maps the contrastive heads attach to."""

from __future__ import annotations

import copy
from typing import NamedTuple

import torch
from monai.networks.blocks import Convolution
from monai.networks.nets.basic_unet import Down, TwoConv, UpCat
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from .config import GROUPS, NORMS, NetworkConfig
from .errors import InputError
from .filters import FilterBank

_ACT = ("LeakyReLU", {"negative_slope": 0.1, "inplace": True})


class UNetOutput(NamedTuple):
    """``logits``: ``(B, K, *S)``; ``decoder``: decoder maps coarse to fine, the last ``(B, features[0], *S)``;
    ``bottleneck``: ``(B, features[-1], *S / 2**(depth-1))``."""

    logits: torch.Tensor
    decoder: list[torch.Tensor]
    bottleneck: torch.Tensor


class UNet(nn.Module):
    """A U-Net built from MONAI's BasicUNet blocks with configurable widths and depth.

    Args:
        spatial_dims: 2 or 3.
        in_channels: image channels C.
        out_channels: classes K.
        config: widths (finest to bottleneck), dropout, normalisation and the fixed filter bank in front
            (``config.filters``; none when empty).
    """

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, config: NetworkConfig) -> None:
        super().__init__()
        feats = tuple(config.features)
        if len(feats) < 2:
            raise ValueError("a U-Net needs at least two levels of features")
        args = {"act": _ACT, "norm": norm_layer(config), "bias": True, "dropout": config.dropout}
        self.spatial_dims = spatial_dims
        self.features = feats
        bank = FilterBank(spatial_dims, in_channels, config.filters) if config.filters else None
        self.filters = bank or nn.Identity()
        self.stem = TwoConv(spatial_dims, bank.out_channels if bank else in_channels, feats[0], **args)
        self.down = nn.ModuleList(Down(spatial_dims, a, b, **args) for a, b in zip(feats[:-1], feats[1:], strict=True))
        self.up = nn.ModuleList(
            # is_pad off: inputs are multiples of 2**(depth-1), so the skip and upsampled maps always match
            UpCat(spatial_dims, b, a, a, **args, halves=True, is_pad=False)
            for a, b in zip(feats[:-1], feats[1:], strict=True)
        )
        self.head = Convolution(spatial_dims, feats[0], out_channels, kernel_size=1, conv_only=True)

    def forward(self, x: torch.Tensor) -> UNetOutput:
        """``x``: ``(B, C, *S)`` with every spatial size a multiple of ``2**(depth-1)``."""
        skips = [self.stem(self.filters(x))]
        for down in self.down:
            skips.append(down(skips[-1]))
        y = skips.pop()
        bottleneck = y
        decoder = []
        for up in reversed(self.up):
            y = up(y, skips.pop())
            decoder.append(y)
        return UNetOutput(self.head(y), decoder, bottleneck)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The bottleneck ``(B, features[-1], *S / 2**(depth-1))`` alone (no decoder: half the work)."""
        y = self.stem(self.filters(x))
        for down in self.down:
            y = down(y)
        return y

    @property
    def decoder_channels(self) -> list[int]:
        """Channels of each decoder map, coarse to fine."""
        return list(reversed(self.features[:-1]))


def norm_layer(config: NetworkConfig) -> str | tuple[str, dict]:
    """MONAI's name and arguments for ``config.norm``; :class:`InputError` for an unknown norm or, with ``group``,
    a width that is not a multiple of :data:`GROUPS`."""
    if config.norm not in NORMS:
        raise InputError(f"norm must be one of {', '.join(NORMS)}, not {config.norm!r}.")
    if config.norm == "group" and any(f % GROUPS for f in config.features):
        raise InputError(f"With norm 'group' every width must be a multiple of {GROUPS}; got {tuple(config.features)}.")
    arguments = {"instance": {"affine": True}, "group": {"num_groups": GROUPS}}
    return (config.norm, arguments[config.norm]) if config.norm in arguments else config.norm


def fold_batch_norm(network: UNet) -> UNet:
    """An eval-mode copy with every BatchNorm folded into the convolution before it: same outputs up to float
    rounding, one pass over each feature map fewer."""
    folded = copy.deepcopy(network).eval()
    for block in folded.modules():
        norm = getattr(getattr(block, "adn", None), "N", None)
        if isinstance(block, Convolution) and isinstance(norm, nn.modules.batchnorm._BatchNorm):
            block.conv = fuse_conv_bn_eval(block.conv, norm)
            block.adn.N = nn.Identity()
    return folded


def channels_last(spatial_dims: int) -> torch.memory_format:
    """The weights' memory layout for the fastest convolutions (oneDNN on CPUs)."""
    return torch.channels_last if spatial_dims == 2 else torch.channels_last_3d
