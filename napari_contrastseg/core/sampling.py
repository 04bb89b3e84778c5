"""Training crops: labelled crops around painted voxels and unlabelled crops from anywhere."""

from __future__ import annotations

import numpy as np


class PatchSampler:
    """Draws crops from one normalised image.

    2D training (a 2D image, or a 3D volume sliced along ``slice_axis``) yields 2D crops; 3D training yields 3D
    patches. Internally the image is a 3D stack ``(C, Z, Y, X)`` (a 2D image is a stack of one slice) padded to
    at least the patch size, so one code path serves all cases.

    Args:
        image: normalised float32 ``(C, *S)``.
        labels: ``S``, 0 = unpainted, 1..K classes.
        patch_size: 2 values for 2D crops, 3 for 3D patches.
        slice_axis: spatial axis to slice a 3D volume along for 2D crops; None for 2D images and 3D patches.
        rng: numpy random generator (the trainer seeds it).
    """

    def __init__(
        self,
        image: np.ndarray,
        labels: np.ndarray,
        patch_size: tuple[int, ...],
        slice_axis: int | None,
        rng: np.random.Generator,
    ) -> None:
        self.rng = rng
        self.flat_2d = len(patch_size) == 2
        if labels.ndim == 2:
            image, labels = image[:, None], labels[None]
        elif slice_axis is not None:
            image = np.moveaxis(image, slice_axis + 1, 1)
            labels = np.moveaxis(labels, slice_axis, 0)
        self.patch = (1, *patch_size) if self.flat_2d else tuple(patch_size)
        pads = [(0, max(0, p - s)) for p, s in zip(self.patch, labels.shape, strict=True)]
        self.image = np.pad(image, [(0, 0), *pads], mode="edge") if any(p[1] for p in pads) else image
        self.labels = np.pad(labels, pads) if any(p[1] for p in pads) else labels
        flat = self.labels.reshape(-1)
        self.classes = [int(c) for c in np.unique(flat[flat > 0])]
        self.painted = {c: np.flatnonzero(flat == c) for c in self.classes}

    def labelled(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """``n`` crops containing painted voxels, classes drawn uniformly: images ``(n, C, *P)``, labels ``(n, *P)``."""
        starts = []
        for _ in range(n):
            cls = self.classes[self.rng.integers(len(self.classes))]
            voxel = np.unravel_index(self.rng.choice(self.painted[cls]), self.labels.shape)
            start = [
                int(np.clip(v - self.rng.integers(p), 0, s - p))
                for v, p, s in zip(voxel, self.patch, self.labels.shape, strict=True)
            ]
            starts.append(start)
        return self._crop(starts, with_labels=True)

    def unlabelled(self, n: int) -> np.ndarray:
        """``n`` crops from anywhere in the image: ``(n, C, *P)`` (painted or not; the methods ignore the labels)."""
        starts = [
            [int(self.rng.integers(s - p + 1)) for p, s in zip(self.patch, self.labels.shape, strict=True)]
            for _ in range(n)
        ]
        return self._crop(starts, with_labels=False)[0]

    def _crop(self, starts: list[list[int]], with_labels: bool) -> tuple[np.ndarray, np.ndarray]:
        boxes = [tuple(slice(s, s + p) for s, p in zip(start, self.patch, strict=True)) for start in starts]
        images = np.stack([self.image[(slice(None), *box)] for box in boxes])
        labels = np.stack([self.labels[box] for box in boxes]) if with_labels else np.empty(0)
        if self.flat_2d:
            images = images[:, :, 0]
            labels = labels[:, 0] if with_labels else labels
        return images, labels
