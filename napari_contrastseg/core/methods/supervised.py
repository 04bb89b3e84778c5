"""Plain supervision: cross-entropy + soft Dice on painted pixels only."""

from __future__ import annotations

import torch

from ..losses import painted_ce_dice_loss
from ..network import UNet
from .base import Batch, Method, register


@register
class Supervised(Method):
    """The baseline every other method adds terms to."""

    name = "supervised"

    def losses(self, network: UNet, batch: Batch, progress: float) -> dict[str, torch.Tensor]:
        return {"supervised": painted_ce_dice_loss(network(batch.images).logits, batch.labels)}
