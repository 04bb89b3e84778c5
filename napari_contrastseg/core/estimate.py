"""How good the returned model is likely to be, from the painting alone (2D networks with a pixel forest).

Two figures, per class, each computed once when training ends:

- ``held_out``: Dice of the prediction as the model makes it (network and forest blended) on the held-out share
  of the painting, the forest fitted on the training share only. The network's own held-out estimate
  (:mod:`.holdout`) scores the network alone, which is not what the user gets.
- ``agreement``: Dice between the network's and the forest's classes on slices nobody painted (evenly spaced; the
  unpainted pixels of a 2D image). The held-out painting lies on the painted slices, so it says nothing about how
  the model carries over to other slices; two learners with different errors that agree there are more likely right.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch

from .forest import PixelForest, slices_first
from .inference import slice_probabilities
from .model_info import ModelInfo

#: At most this many unpainted slices (or 2D images) are compared, and this many slices with held-out voxels scored.
MAX_SLICES = 8


class ReturnedEstimate(NamedTuple):
    """Per class value 1..K (those that occur): ``held_out`` Dice of the blended prediction on the held-out
    painting (empty when nothing is held out) and network-forest ``agreement`` on unpainted voxels; ``weight``:
    the forest's weight in the blend, the one of the candidates whose ``held_out`` was the highest."""

    held_out: dict[int, float]
    agreement: dict[int, float]
    weight: float

    def summary(self, class_names: Sequence[str]) -> dict:
        """JSON-plain: per class name and the mean over foreground classes (2..K; None when there is none)."""
        out = {}
        for key, scores in (("held_out", self.held_out), ("agreement", self.agreement)):
            foreground = [d for c, d in scores.items() if c > 1]
            out[key] = {class_names[c - 1]: round(d, 4) for c, d in scores.items()}
            out[f"{key}_mean"] = round(float(np.mean(foreground)), 4) if foreground else None
        both = [min(d, self.agreement[c]) for c, d in self.held_out.items() if c > 1 and c in self.agreement]
        out["min_mean"] = round(float(np.mean(both)), 4) if both else None  # per class the lower of the two
        return out


def estimate_returned(
    network: torch.nn.Module,
    info: ModelInfo,
    images: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    held: Sequence[np.ndarray],
    forests: tuple[PixelForest | None, PixelForest],
    weights: Sequence[float],
    device: torch.device,
) -> ReturnedEstimate:
    """The two figures of the module docstring, and the forest's weight chosen among ``weights``.

    Args:
        network: the returned 2D network (its weights are not changed).
        info: its metadata (classes, slice axis, context, crop size).
        images: normalised ``(C, *S_i)`` arrays; ``labels``: the whole painting ``S_i``; ``held``: its held-out
            share ``S_i`` (0 elsewhere).
        forests: the forest fitted on the training share (None when nothing is held out) and the returned one
            (fitted on the whole painting; compared with the network on unpainted voxels).
        weights: the forest's weights in the blend to choose among, the default first (it wins ties, and when
            nothing is held out). With more than one, ``held_out`` is the best of them on the voxels that chose it,
            so it is optimistic.
    """
    k = info.n_classes
    stacks = [slices_first(i, lab, h, info.slice_axis) for i, lab, h in zip(images, labels, held, strict=True)]
    held_parts, agree_pairs = [], []
    if forests[0] is not None:
        for n, picked in _spaced(stacks, lambda lab, h: (h > 0).any(axis=(1, 2))):
            image, _, held_out = stacks[n]
            slices = np.moveaxis(image, 1, 0)  # (Z, C, Y, X)
            mine = slice_probabilities(network, slices, info, picked, device)  # (K, n, Y, X)
            trees = np.stack([forests[0].probabilities(slices[z], k) for z in picked], axis=1)
            truth = held_out[picked]
            held_parts.append((mine[:, truth > 0], trees[:, truth > 0], truth[truth > 0]))
    for n, picked in _spaced(stacks, lambda lab, h: ~(lab > 0).any(axis=(1, 2)) | (lab.shape[0] == 1)):
        image, painting, _ = stacks[n]
        slices = np.moveaxis(image, 1, 0)
        mine = slice_probabilities(network, slices, info, picked, device).argmax(0) + 1
        trees = np.stack([forests[1].probabilities(slices[z], k) for z in picked]).argmax(1) + 1
        where = painting[picked] == 0  # unpainted slices: all of them; a 2D image: its unpainted pixels
        agree_pairs.append((mine[where], trees[where]))
    weight, held_out_dice = _chosen_weight(held_parts, weights)
    return ReturnedEstimate(held_out_dice, _dice(agree_pairs, truth_classes=False), weight)


def _spaced(stacks: list[tuple[np.ndarray, np.ndarray, np.ndarray]], wanted) -> list[tuple[int, np.ndarray]]:
    """``(image, slice indices)`` of at most :data:`MAX_SLICES` slices over all images, evenly spaced among those
    for which ``wanted(painting, held)`` (``(Z, Y, X)`` each) is True."""
    found = [(n, z) for n, (_, lab, h) in enumerate(stacks) for z in np.flatnonzero(wanted(lab, h))]
    if len(found) > MAX_SLICES:
        found = [found[i] for i in np.linspace(0, len(found) - 1, MAX_SLICES).round().astype(int)]
    return [(n, np.array([z for m, z in found if m == n])) for n in sorted({n for n, _ in found})]


def _chosen_weight(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]], weights: Sequence[float]
                   ) -> tuple[float, dict[int, float]]:  # fmt: skip
    """The weight among ``weights`` whose blend of the network's and the forest's ``(K, N)`` probabilities has the
    highest held-out Dice (foreground mean; the first weight on ties), and its per class Dice."""
    if not parts:
        return weights[0], {}
    mine, trees, truth = (np.concatenate(part, axis=-1) for part in zip(*parts, strict=True))
    best, best_mean = (weights[0], {}), -np.inf
    for weight in weights:
        scores = _dice([(((1 - weight) * mine + weight * trees).argmax(0) + 1, truth)], truth_classes=True)
        foreground = [d for c, d in scores.items() if c > 1]
        mean = float(np.mean(foreground)) if foreground else -np.inf
        if mean > best_mean or not best[1]:
            best, best_mean = (weight, scores), mean
    return best


def _dice(pairs: list[tuple[np.ndarray, np.ndarray]], truth_classes: bool) -> dict[int, float]:
    """Per class Dice of the first arrays against the second (concatenated ``(N,)`` class values), for the classes
    in the second (``truth_classes``) or in either."""
    if not pairs:
        return {}
    a, b = (np.concatenate(part) for part in zip(*pairs, strict=True))
    classes = np.unique(b) if truth_classes else np.union1d(a, b)
    return {int(c): float(2 * ((a == c) & (b == c)).sum() / max(1, (a == c).sum() + (b == c).sum())) for c in classes}
