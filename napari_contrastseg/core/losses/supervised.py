"""Supervised loss on painted pixels only: cross-entropy + soft Dice, both ignoring label 0."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.losses import DiceLoss

_UNPAINTED = -1  # index of label 0 once labels are shifted to channel indices

_dice = DiceLoss(softmax=True, to_onehot_y=True, batch=True, ignore_index=_UNPAINTED)


def painted_ce_dice_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy + soft Dice over painted pixels.

    Args:
        logits: ``(B, K, *S)``, channel ``k-1`` scores class ``k``.
        labels: ``(B, *S)`` long, 0 = unpainted, 1..K = classes.

    Returns:
        Scalar. Dice is MONAI's, over the whole batch (``batch=True``) since sparse strokes leave most images
        without some classes. Unpainted pixels contribute neither value nor gradient; with nothing painted the
        result is a zero that keeps the graph. No branch reads the device: a step stays free of host round trips.
    """
    target = labels.long() - 1
    painted = (target != _UNPAINTED).sum().clamp_min(1)
    ce = F.cross_entropy(logits, target, ignore_index=_UNPAINTED, reduction="sum") / painted
    return ce + _dice(logits, target.unsqueeze(1))
