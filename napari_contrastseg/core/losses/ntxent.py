"""SemiContrast's global branch: SimCLR NT-Xent loss and its projection head."""

from __future__ import annotations

import torch
from monai.losses import ContrastiveLoss
from torch import nn


def nt_xent_loss(z_a: torch.Tensor, z_b: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """NT-Xent between two views; MONAI's ContrastiveLoss is exactly SimCLR's definition.

    Args:
        z_a: ``(B, D)`` projections of view a (need not be normalised; cosine similarity is used).
        z_b: ``(B, D)`` projections of view b; row i of both is the positive pair.
        temperature: tau.

    Returns:
        Scalar, mean over the 2B anchors of ``-log(exp(s_ii'/tau) / sum_{k != i} exp(s_ik/tau))``.
    """
    return ContrastiveLoss(temperature=temperature)(z_a, z_b)


class GlobalProjectionHead(nn.Module):
    """Global average pool -> Linear -> ReLU -> Linear, for 2D or 3D feature maps.

    Args:
        in_channels: C of the input map.
        hidden: width of the hidden layer.
        out: D of the projection.
    """

    def __init__(self, in_channels: int, hidden: int = 512, out: int = 256) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(in_channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, out))

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        """``feat``: ``(B, C, *S)`` -> ``(B, out)``."""
        return self.mlp(feat.flatten(2).mean(2))
