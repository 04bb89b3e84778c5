"""Scores of a prediction against ground truth on a subset of voxels (MONAI metrics)."""

from __future__ import annotations

import numpy as np
import torch
from monai.metrics import compute_dice, compute_hausdorff_distance


def _one_hot(labels: np.ndarray, classes: list[int], mask: np.ndarray) -> torch.Tensor:
    """``(1, len(classes), *S)`` float tensor; voxels outside ``mask`` are 0 in every channel."""
    return torch.from_numpy(np.stack([(labels == c) & mask for c in classes])[None].astype(np.float32))


def dice_per_class(
    prediction: np.ndarray, truth: np.ndarray, classes: list[int], mask: np.ndarray | None = None
) -> dict[int, float]:
    """Dice of each class value in ``classes`` over the voxels where ``mask`` is True (all if None).

    A class absent from both prediction and truth inside the mask scores NaN (undefined), not 1.
    """
    mask = np.ones(truth.shape, bool) if mask is None else mask
    scores = compute_dice(_one_hot(prediction, classes, mask), _one_hot(truth, classes, mask), ignore_empty=True)
    return {c: float(s) for c, s in zip(classes, scores[0].tolist(), strict=True)}


def hd95_per_class(
    prediction: np.ndarray,
    truth: np.ndarray,
    classes: list[int],
    mask: np.ndarray | None = None,
    spacing: tuple[float, ...] | None = None,
) -> dict[int, float]:
    """95th-percentile Hausdorff distance per class (in ``spacing`` units), over the voxels in ``mask``."""
    mask = np.ones(truth.shape, bool) if mask is None else mask
    dist = compute_hausdorff_distance(
        _one_hot(prediction, classes, mask),
        _one_hot(truth, classes, mask),
        percentile=95,
        spacing=spacing,
        include_background=True,
    )
    return {c: float(s) for c, s in zip(classes, dist[0].tolist(), strict=True)}
