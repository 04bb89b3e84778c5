"""Training crops: labelled crops around painted voxels and unlabelled crops from anywhere, from one or more images."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class PatchSampler:
    """Draws crops from one or more normalised images.

    2D training (2D images, or 3D volumes sliced along ``slice_axis``) yields 2D crops; 3D training yields 3D
    patches. Internally each image is a 3D stack ``(C, Z, Y, X)`` (a 2D image is a stack of one slice) padded to
    at least the patch size, so one code path serves all cases.

    Labelled crops draw a class uniformly among the painted ones, then an image holding that class uniformly,
    then one of its painted voxels of that class. Unlabelled crops draw an image with probability proportional
    to its voxel count (images without any paint included), then a position uniformly. With one image the random
    stream is the single-image one (no image draws), so seeded runs reproduce.

    Args:
        images: normalised float32 arrays ``(C, *S_i)``, all with the same C and the same number of axes.
        labels: arrays ``S_i``, 0 = unpainted, 1..K classes (all zero for unlabelled images).
        patch_size: 2 values for 2D crops, 3 for 3D patches.
        slice_axis: spatial axis to slice 3D volumes along for 2D crops; None for 2D images and 3D patches.
        rng: numpy random generator (the trainer seeds it).
    """

    def __init__(
        self,
        images: Sequence[np.ndarray],
        labels: Sequence[np.ndarray],
        patch_size: tuple[int, ...],
        slice_axis: int | None,
        rng: np.random.Generator,
    ) -> None:
        self.rng = rng
        self.flat_2d = len(patch_size) == 2
        self.patch = (1, *patch_size) if self.flat_2d else tuple(patch_size)
        stacks = [self._as_stack(i, lab, slice_axis) for i, lab in zip(images, labels, strict=True)]
        self.images = [s[0] for s in stacks]
        self.labels = [s[1] for s in stacks]
        flats = [lab.reshape(-1) for lab in self.labels]
        self.classes = sorted({int(c) for f in flats for c in np.unique(f[f > 0])})
        # class -> [(image index, flat indices of its voxels of that class)]
        self.painted = {
            c: [(i, idx) for i, f in enumerate(flats) if (idx := np.flatnonzero(f == c)).size] for c in self.classes
        }
        sizes = np.array([lab.size for lab in self.labels], dtype=np.float64)
        self.image_weights = sizes / sizes.sum()

    def _as_stack(self, image: np.ndarray, labels: np.ndarray, slice_axis: int | None) -> tuple[np.ndarray, np.ndarray]:
        if labels.ndim == 2:
            image, labels = image[:, None], labels[None]
        elif slice_axis is not None:
            image = np.moveaxis(image, slice_axis + 1, 1)
            labels = np.moveaxis(labels, slice_axis, 0)
        pads = [(0, max(0, p - s)) for p, s in zip(self.patch, labels.shape, strict=True)]
        if any(p[1] for p in pads):
            image, labels = np.pad(image, [(0, 0), *pads], mode="edge"), np.pad(labels, pads)
        return image, labels

    def labelled(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """``n`` crops containing painted voxels, classes drawn uniformly: images ``(n, C, *P)``, labels ``(n, *P)``."""
        picks = []
        for _ in range(n):
            holders = self.painted[self.classes[self.rng.integers(len(self.classes))]]
            i, voxels = holders[self.rng.integers(len(holders))] if len(holders) > 1 else holders[0]
            shape = self.labels[i].shape
            voxel = np.unravel_index(self.rng.choice(voxels), shape)
            start = [
                int(np.clip(v - self.rng.integers(p), 0, s - p))
                for v, p, s in zip(voxel, self.patch, shape, strict=True)
            ]
            picks.append((i, start))
        return self._crop(picks, with_labels=True)

    def unlabelled(self, n: int) -> np.ndarray:
        """``n`` crops from anywhere: ``(n, C, *P)`` (painted or not; the methods ignore the labels)."""
        picks = []
        for _ in range(n):
            i = int(self.rng.choice(len(self.images), p=self.image_weights)) if len(self.images) > 1 else 0
            shape = self.labels[i].shape
            picks.append((i, [int(self.rng.integers(s - p + 1)) for p, s in zip(self.patch, shape, strict=True)]))
        return self._crop(picks, with_labels=False)[0]

    def _crop(self, picks: list[tuple[int, list[int]]], with_labels: bool) -> tuple[np.ndarray, np.ndarray]:
        boxes = [(i, tuple(slice(s, s + p) for s, p in zip(start, self.patch, strict=True))) for i, start in picks]
        images = np.stack([self.images[i][(slice(None), *box)] for i, box in boxes])
        labels = np.stack([self.labels[i][box] for i, box in boxes]) if with_labels else np.empty(0)
        if self.flat_2d:
            images = images[:, :, 0]
            labels = labels[:, 0] if with_labels else labels
        return images, labels
