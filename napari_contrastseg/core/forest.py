"""Labels for unpainted slices from a random forest trained on the painting (the ilastik/convpaint recipe).

A forest on fixed multiscale pixel features learns a painting in seconds and transfers across slices better than a
network trained for a minute on the same painting (docs/benchmarks.md, the diagnosis of 2026-12-05). Its confident
labels on slices nobody painted let the network see the anatomy of the whole volume; the network's own context then
has the chance to correct the forest's pixel-wise noise. Only the training share of the painting is used: held-out
voxels are neither learnt by the forest nor labelled by it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch

from .config import ForestConfig, NetworkConfig
from .errors import InputError
from .filters import FilterBank
from .forest_io import forest_from_tensors, forest_tensors
from .metrics import dice_per_class


class ForestLabels(NamedTuple):
    """What :func:`forest_labels` gives: the labels to train on (None when the gate kept them out) and the forest's
    Dice on the held-out painting, averaged over the classes other than background (NaN when no such class is
    held out). One decision for all images of a run."""

    labels: list[np.ndarray] | None
    held_out_dice: float


class PixelForest:
    """A random forest fitted on the filter bank's features of painted pixels of 2D slices."""

    def __init__(self, forest, bank: FilterBank) -> None:
        self.forest, self.bank = forest, bank

    @classmethod
    def fit(cls, stacks: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]], sigmas: tuple[float, ...],
            config: ForestConfig, seed: int) -> tuple[PixelForest, float]:  # fmt: skip
        """The forest fitted on ``stacks`` (``(C, Z, Y, X)`` normalised image, ``(Z, Y, X)`` training painting,
        ``(Z, Y, X)`` held-out painting, as :func:`slices_first` gives them; at most ``config.max_pixels``
        training voxels) and its Dice on the held-out painting (see :class:`ForestLabels`)."""
        from sklearn.ensemble import RandomForestClassifier

        bank = _bank(stacks[0][0].shape[0], sigmas)
        rng = np.random.default_rng(seed)
        (x, y), held_pixels = _painted_pixels(bank, stacks, config.max_pixels, rng, config.balanced)
        forest = RandomForestClassifier(
            n_estimators=config.trees,
            max_depth=12,
            n_jobs=torch.get_num_threads(),
            random_state=seed,
            class_weight="balanced" if config.balanced else None,
        ).fit(x, y)
        held = foreground_dice(forest.predict(held_pixels[0]), held_pixels[1]) if len(held_pixels[1]) else float("nan")
        return cls(forest, bank), held

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor], in_channels: int, sigmas: tuple[float, ...],
                     classes: int) -> PixelForest:  # fmt: skip
        """The forest that :meth:`tensors` wrote, on the features of ``in_channels`` channels at ``sigmas`` (the
        network's filter bank; the default bank's when empty), predicting class values among 1..``classes``."""
        bank = _bank(in_channels, sigmas)
        return cls(forest_from_tensors(tensors, bank.out_channels, classes), bank)

    def tensors(self) -> dict[str, torch.Tensor]:
        """The trees as ``forest.*`` tensors (:mod:`.forest_io`)."""
        return forest_tensors(self.forest)

    def probabilities(self, image_slice: np.ndarray, classes: int) -> np.ndarray:
        """``(classes, Y, X)`` float32 probabilities of the class values 1..``classes`` for one ``(C, Y, X)``
        normalised slice (0 for a class the forest never saw painted)."""
        features = _features(self.bank, image_slice)
        found = self.forest.predict_proba(features.reshape(-1, features.shape[-1]))
        out = np.zeros((classes, found.shape[0]), np.float32)
        out[self.forest.classes_.astype(int) - 1] = found.T
        return out.reshape(classes, *image_slice.shape[1:])


def forest_labels(
    images: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    held: Sequence[np.ndarray],
    slice_axis: int | None,
    sigmas: tuple[float, ...],
    config: ForestConfig,
    seed: int,
) -> ForestLabels:
    """The training labels with the forest's confident labels added (one int64 array ``S_i`` per image; None when
    the gate keeps them out) and the forest's held-out Dice.

    Args:
        images: normalised ``(C, *S_i)`` float32 arrays.
        labels: the training painting ``S_i`` (0 = unpainted; 1 = background).
        held: the held-out painting ``S_i``: scored for the gate, never learnt or labelled by the forest.
        slice_axis: the 2D network's slice axis in 3D volumes; None for 2D images.
        sigmas: the feature scales (the network's filter bank; the default bank's when empty).
        config: which slices, how confident, how many trees and training pixels, the gate.
        seed: the forest's and the pixel draw's seed.

    Each image's painted slices (their unpainted pixels) and ``config.slices`` evenly spaced unpainted slices are
    labelled where the forest's probability of its class is at least ``config.confidence``; painted voxels keep
    their painting. With ``config.gate`` above 0, no labels (None) when the held-out Dice is below it or undefined.
    """
    if not (0.5 <= config.confidence <= 1 and 0 <= config.share <= 1 and config.slices >= 0 and config.trees >= 1
            and config.max_pixels >= 1 and 0 <= config.gate <= 1):  # fmt: skip
        raise InputError(
            "Forest labels need 0.5 <= confidence <= 1, 0 <= share <= 1, slices >= 0, trees >= 1, max_pixels >= 1 "
            "and 0 <= gate <= 1."
        )
    stacks = [slices_first(i, lab, h, slice_axis) for i, lab, h in zip(images, labels, held, strict=True)]
    forest, held_dice = PixelForest.fit(stacks, sigmas, config, seed)
    if config.gate > 0 and not held_dice >= config.gate:
        return ForestLabels(None, held_dice)
    classes = int(max(lab.max() for lab in labels))
    out = []
    for (image, train, held_out), original in zip(stacks, labels, strict=True):
        result = train.copy()
        for z in _slices_to_label(train, held_out, config.slices):
            probabilities = forest.probabilities(image[:, z], classes)
            guess = np.where(probabilities.max(axis=0) >= config.confidence, probabilities.argmax(axis=0) + 1, 0)
            free = (train[z] == 0) & (held_out[z] == 0)
            result[z][free] = guess[free]
        out.append(_restore(result, original.ndim, slice_axis))
    return ForestLabels(out, held_dice)


def _bank(in_channels: int, sigmas: tuple[float, ...]) -> FilterBank:
    """The 2D filter bank at ``sigmas`` (the default bank's when empty)."""
    return FilterBank(2, in_channels, tuple(sigmas) or NetworkConfig.filters).eval()


def foreground_dice(guess: np.ndarray, truth: np.ndarray) -> float:
    """Dice of ``guess`` against ``truth`` (both ``(N,)`` class values), averaged over the classes > 1 in ``truth``."""
    classes = [int(c) for c in np.unique(truth) if c > 1]
    return float(np.mean(list(dice_per_class(guess, truth, classes).values()))) if classes else float("nan")


def slices_first(
    image: np.ndarray, labels: np.ndarray, held: np.ndarray, slice_axis: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(C, Z, Y, X)`` image and ``(Z, Y, X)`` label views, slice axis first (a 2D image is one slice)."""
    if labels.ndim == 2:
        return image[:, None], labels[None], held[None]
    if slice_axis is None:
        raise InputError("Forest labels need 2D training (a 2D image, or a volume trained slice by slice).")
    return np.moveaxis(image, slice_axis + 1, 1), np.moveaxis(labels, slice_axis, 0), np.moveaxis(held, slice_axis, 0)


def _restore(stack: np.ndarray, ndim: int, slice_axis: int | None) -> np.ndarray:
    """Inverse of :func:`slices_first` for labels."""
    return stack[0] if ndim == 2 else np.ascontiguousarray(np.moveaxis(stack, 0, slice_axis))


def _features(bank: FilterBank, image_slice: np.ndarray) -> np.ndarray:
    """``(Y, X, F)`` pixel features of one ``(C, Y, X)`` slice."""
    with torch.no_grad():
        features = bank(torch.from_numpy(np.ascontiguousarray(image_slice, dtype=np.float32))[None])[0]
    return features.permute(1, 2, 0).numpy()


def _painted_pixels(
    bank: FilterBank,
    stacks: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    limit: int,
    rng: np.random.Generator,
    balanced: bool = False,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Features ``(N, F)`` and classes ``(N,)`` of the training painting (at most ``limit`` voxels, drawn
    uniformly; ``balanced``: at most ``limit / K`` of each of the K classes) and of the held-out painting, each
    painted slice's features computed once."""
    train_x, train_y, held_x, held_y = [], [], [], []
    for image, train, held in stacks:
        for z in np.flatnonzero((train > 0).any(axis=(1, 2)) | (held > 0).any(axis=(1, 2))):
            features = _features(bank, image[:, z])
            for labels, xs, ys in ((train[z], train_x, train_y), (held[z], held_x, held_y)):
                xs.append(features[labels > 0])
                ys.append(labels[labels > 0])
    x, y = np.concatenate(train_x), np.concatenate(train_y)
    groups = [np.flatnonzero(y == c) for c in np.unique(y)] if balanced else [np.arange(len(y))]
    share = limit // len(groups)
    pick = np.concatenate([rng.choice(g, share, replace=False) if len(g) > share else g for g in groups])
    if len(pick) < len(y):
        x, y = x[pick], y[pick]
    return (x, y), (np.concatenate(held_x), np.concatenate(held_y))


def _slices_to_label(train: np.ndarray, held: np.ndarray, count: int) -> np.ndarray:
    """The painted slices of a ``(Z, Y, X)`` stack, and ``count`` unpainted ones evenly spaced along it."""
    painted = (train > 0).any(axis=(1, 2))
    unpainted = np.flatnonzero(~painted & ~(held > 0).any(axis=(1, 2)))
    spaced = np.linspace(0, unpainted.size - 1, count if unpainted.size else 0).round().astype(int)
    return np.union1d(np.flatnonzero(painted), unpainted[spaced]).astype(int)
