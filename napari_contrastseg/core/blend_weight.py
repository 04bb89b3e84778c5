"""The forest's weight in the blend, chosen run by run on the held-out painting (2D networks with a pixel forest).

One weight cannot suit every image: the forest alone does better than the network on some (brain tissue classes,
fluorescence nuclei) and far worse on others (small lesions). When a run ends, a forest fitted on the training
share of the painting and the returned network predict the slices that hold held-out painting; each candidate
weight blends the two, and the one whose prediction scores the highest Dice there (mean over foreground classes)
is saved with the model. Ties, and runs with nothing held out, keep the first candidate (the configured weight).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .forest import PixelForest, foreground_dice, slices_first
from .inference import slice_probabilities
from .model_info import ModelInfo

#: At most this many slices with held-out voxels are predicted (evenly spaced over all images).
MAX_SLICES = 8


def choose_weight(
    network: torch.nn.Module,
    info: ModelInfo,
    images: Sequence[np.ndarray],
    held: Sequence[np.ndarray],
    forest: PixelForest,
    weights: Sequence[float],
    device: torch.device,
) -> tuple[float, dict[float, float]]:
    """The weight among ``weights`` (the configured one first) and each candidate's held-out Dice (foreground mean).

    Args:
        network: the returned 2D network (its weights are not changed).
        info: its metadata (classes, slice axis, context, crop size).
        images: normalised ``(C, *S_i)`` arrays; ``held``: the held-out painting ``S_i`` (0 elsewhere).
        forest: fitted on the training share of the painting only.
    """
    stacks = [slices_first(i, h, h, info.slice_axis) for i, h in zip(images, held, strict=True)]
    found = [(n, z) for n, (_, h, _) in enumerate(stacks) for z in np.flatnonzero((h > 0).any(axis=(1, 2)))]
    if len(found) > MAX_SLICES:
        found = [found[i] for i in np.linspace(0, len(found) - 1, MAX_SLICES).round().astype(int)]
    parts = []
    for n in sorted({n for n, _ in found}):
        picked = np.array([z for m, z in found if m == n])
        image, held_out, _ = stacks[n]
        slices = np.moveaxis(image, 1, 0)  # (Z, C, Y, X)
        mine = slice_probabilities(network, slices, info, picked, device)  # (K, n, Y, X)
        trees = np.stack([forest.probabilities(slices[z], info.n_classes) for z in picked], axis=1)
        truth = held_out[picked]
        parts.append((mine[:, truth > 0], trees[:, truth > 0], truth[truth > 0]))
    return chosen_weight(parts, weights)


def chosen_weight(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]], weights: Sequence[float]
                  ) -> tuple[float, dict[float, float]]:  # fmt: skip
    """The weight among ``weights`` whose blend of the network's and the forest's ``(K, N)`` probabilities has the
    highest Dice against the ``(N,)`` classes 1..K (foreground mean; the first weight on ties and without any
    held-out voxel), and each weight's score."""
    if not parts:
        return weights[0], {}
    mine, trees, truth = (np.concatenate(part, axis=-1) for part in zip(*parts, strict=True))
    scores = {w: foreground_dice(((1 - w) * mine + w * trees).argmax(0) + 1, truth) for w in weights}
    best = max(weights, key=lambda w: (scores[w] if np.isfinite(scores[w]) else -1.0, -weights.index(w)))
    return best, scores
