"""Labels for unpainted slices from a random forest trained on the painting (the ilastik/convpaint recipe).

A forest on fixed multiscale pixel features learns a painting in seconds and transfers across slices better than a
network trained for a minute on the same painting (docs/benchmarks.md, the diagnosis of 2026-12-05). Its confident
labels on slices nobody painted let the network see the anatomy of the whole volume; the network's own context then
has the chance to correct the forest's pixel-wise noise. Only the training share of the painting is used: held-out
voxels are neither learnt by the forest nor labelled by it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .config import ForestConfig, NetworkConfig
from .errors import InputError
from .filters import FilterBank


def forest_labels(
    images: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    held: Sequence[np.ndarray],
    slice_axis: int | None,
    sigmas: tuple[float, ...],
    config: ForestConfig,
    seed: int,
) -> list[np.ndarray]:
    """Training labels with the forest's confident labels added, one array ``S_i`` per image (int64).

    Args:
        images: normalised ``(C, *S_i)`` float32 arrays.
        labels: the training painting ``S_i`` (0 = unpainted).
        held: the held-out painting ``S_i``: never labelled by the forest.
        slice_axis: the 2D network's slice axis in 3D volumes; None for 2D images.
        sigmas: the feature scales (the network's filter bank; the default bank's when empty).
        config: which slices, how confident, how many trees and training pixels.
        seed: the forest's and the pixel draw's seed.

    Each image's painted slices (their unpainted pixels) and ``config.slices`` evenly spaced unpainted slices are
    labelled where the forest's probability of its class is at least ``config.confidence``; painted voxels keep
    their painting.
    """
    from sklearn.ensemble import RandomForestClassifier

    if not (0.5 <= config.confidence <= 1 and 0 <= config.share <= 1 and config.slices >= 0 and config.trees >= 1
            and config.max_pixels >= 1):  # fmt: skip
        raise InputError(
            "Forest labels need 0.5 <= confidence <= 1, 0 <= share <= 1, slices >= 0, trees >= 1 and max_pixels >= 1."
        )
    bank = FilterBank(2, images[0].shape[0], tuple(sigmas) or NetworkConfig.filters).eval()
    stacks = [_slices_first(i, lab, h, slice_axis) for i, lab, h in zip(images, labels, held, strict=True)]
    rng = np.random.default_rng(seed)
    x, y = _training_pixels(bank, stacks, config.max_pixels, rng)
    forest = RandomForestClassifier(
        n_estimators=config.trees, max_depth=12, n_jobs=torch.get_num_threads(), random_state=seed
    ).fit(x, y)
    out = []
    for (image, train, held_out), original in zip(stacks, labels, strict=True):
        result = train.copy()
        for z in _slices_to_label(train, held_out, config.slices):
            features = _features(bank, image[:, z])
            probabilities = forest.predict_proba(features.reshape(-1, features.shape[-1]))
            best = probabilities.argmax(axis=1)
            guess = np.where(probabilities.max(axis=1) >= config.confidence, forest.classes_[best], 0)
            guess = guess.reshape(train.shape[1:])
            free = (train[z] == 0) & (held_out[z] == 0)
            result[z][free] = guess[free]
        out.append(_restore(result, original.ndim, slice_axis))
    return out


def _slices_first(
    image: np.ndarray, labels: np.ndarray, held: np.ndarray, slice_axis: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(C, Z, Y, X)`` image and ``(Z, Y, X)`` label views, slice axis first (a 2D image is one slice)."""
    if labels.ndim == 2:
        return image[:, None], labels[None], held[None]
    if slice_axis is None:
        raise InputError("Forest labels need 2D training (a 2D image, or a volume trained slice by slice).")
    return np.moveaxis(image, slice_axis + 1, 1), np.moveaxis(labels, slice_axis, 0), np.moveaxis(held, slice_axis, 0)


def _restore(stack: np.ndarray, ndim: int, slice_axis: int | None) -> np.ndarray:
    """Inverse of :func:`_slices_first` for labels."""
    return stack[0] if ndim == 2 else np.ascontiguousarray(np.moveaxis(stack, 0, slice_axis))


def _features(bank: FilterBank, image_slice: np.ndarray) -> np.ndarray:
    """``(Y, X, F)`` pixel features of one ``(C, Y, X)`` slice."""
    with torch.no_grad():
        features = bank(torch.from_numpy(np.ascontiguousarray(image_slice, dtype=np.float32))[None])[0]
    return features.permute(1, 2, 0).numpy()


def _training_pixels(
    bank: FilterBank, stacks: list[tuple[np.ndarray, np.ndarray, np.ndarray]], limit: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Features ``(N, F)`` and classes ``(N,)`` of the painted voxels, at most ``limit`` drawn uniformly."""
    xs, ys = [], []
    for image, train, _ in stacks:
        for z in np.flatnonzero((train > 0).any(axis=(1, 2))):
            painted = train[z] > 0
            xs.append(_features(bank, image[:, z])[painted])
            ys.append(train[z][painted])
    x, y = np.concatenate(xs), np.concatenate(ys)
    if len(y) > limit:
        pick = rng.choice(len(y), limit, replace=False)
        x, y = x[pick], y[pick]
    return x, y


def _slices_to_label(train: np.ndarray, held: np.ndarray, count: int) -> np.ndarray:
    """The painted slices of a ``(Z, Y, X)`` stack, and ``count`` unpainted ones evenly spaced along it."""
    painted = (train > 0).any(axis=(1, 2))
    unpainted = np.flatnonzero(~painted & ~(held > 0).any(axis=(1, 2)))
    spaced = np.linspace(0, unpainted.size - 1, count if unpainted.size else 0).round().astype(int)
    return np.union1d(np.flatnonzero(painted), unpainted[spaced]).astype(int)
