"""Training crops: labelled crops around painted voxels and unlabelled crops from anywhere, from one or more images."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class PatchSampler:
    """Draws crops from one or more normalised images.

    2D training (2D images, or 3D volumes sliced along ``slice_axis``) yields 2D crops; 3D training yields 3D
    patches. Internally each image is a 3D stack ``(C, Z, Y, X)`` (a 2D image is a stack of one slice) padded to
    at least the patch size, so one code path serves all cases. With ``context`` k, a 2D crop also holds the k
    slices on each side as channels, ``(C * (2k + 1), H, W)`` neighbour-major with edge slices repeated, as
    :class:`~.inference.SliceInputs` feeds the network at inference.

    A labelled crop is centred (up to a random shift) on a painted voxel: with probability ``balance`` one of a
    class drawn uniformly among the painted classes (in an image drawn uniformly among those holding it), else
    one drawn uniformly among all painted voxels (classes as often as they are painted). Unlabelled crops draw an
    image with probability proportional to its voxel count (images without any paint included), then a voxel of
    its content (:meth:`content`). With one image the random stream has no image draws, so seeded runs reproduce.

    Args:
        images: normalised float32 arrays ``(C, *S_i)``, all with the same C and the same number of axes.
        labels: arrays ``S_i``, 0 = unpainted, 1..K classes (all zero for unlabelled images).
        patch_size: 2 values for 2D crops, 3 for 3D patches.
        slice_axis: spatial axis to slice 3D volumes along for 2D crops; None for 2D images and 3D patches.
        rng: numpy random generator (the trainer seeds it).
        context: neighbouring slices on each side given as channels (2D crops only).
        balance: share of class-balanced labelled crops, in [0, 1].
    """

    def __init__(
        self,
        images: Sequence[np.ndarray],
        labels: Sequence[np.ndarray],
        patch_size: tuple[int, ...],
        slice_axis: int | None,
        rng: np.random.Generator,
        context: int = 0,
        balance: float = 1.0,
    ) -> None:
        self.rng = rng
        self.flat_2d = len(patch_size) == 2
        self.context = context if self.flat_2d else 0
        self.balance = balance
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
        self._share_classes()
        sizes = np.array([lab.size for lab in self.labels], dtype=np.float64)
        self.image_weights = sizes / sizes.sum()
        self._content: dict[int, np.ndarray | None] = {}

    def add_labels(self, i: int, z: np.ndarray, labels: np.ndarray) -> None:
        """Label slices ``z`` (indices along the stack's first axis) of image ``i`` with ``labels`` ``(len(z), Y,
        X)`` (0 = none), so that labelled crops are drawn from them too; the slices must hold no labels yet."""
        stack = self.labels[i]
        stack[(z, slice(0, labels.shape[1]), slice(0, labels.shape[2]))] = labels
        per_slice = stack[0].size
        for c in (int(c) for c in np.unique(labels[labels > 0])):
            k = np.flatnonzero(stack[z] == c)
            new = np.asarray(z)[k // per_slice] * per_slice + k % per_slice
            holders = self.painted.setdefault(c, [])
            mine = [j for j, (m, _) in enumerate(holders) if m == i]
            if mine:
                holders[mine[0]] = (i, np.concatenate([holders[mine[0]][1], new]))
            else:
                holders.append((i, new))
        self.classes = sorted(self.painted)
        self._share_classes()

    def _share_classes(self) -> None:
        """Each class's share of the labelled voxels (``class_shares``, in the order of ``classes``)."""
        counts = np.array([sum(idx.size for _, idx in self.painted[c]) for c in self.classes], dtype=np.float64)
        self.class_shares = counts / counts.sum() if counts.size else counts

    def _as_stack(self, image: np.ndarray, labels: np.ndarray, slice_axis: int | None) -> tuple[np.ndarray, np.ndarray]:
        if labels.ndim == 2:
            image = image[:, None]
        elif slice_axis is not None:
            image = np.moveaxis(image, slice_axis + 1, 1)
        pads = self._pads(labels, slice_axis)
        if any(p[1] for p in pads):
            image = np.pad(image, [(0, 0), *pads], mode="edge")
        if self.context:  # neighbours of the first and last slices: the edge slices repeated
            image = np.pad(image, [(0, 0), (self.context, self.context), (0, 0), (0, 0)], mode="edge")
        return image, self.label_stack(labels, slice_axis)

    def _pads(self, labels: np.ndarray, slice_axis: int | None) -> list[tuple[int, int]]:
        shape = (1, *labels.shape) if labels.ndim == 2 else labels.shape
        if labels.ndim == 3 and slice_axis is not None:
            shape = np.moveaxis(np.empty(shape, bool), slice_axis, 0).shape
        return [(0, max(0, p - s)) for p, s in zip(self.patch, shape, strict=True)]

    def label_stack(self, labels: np.ndarray, slice_axis: int | None) -> np.ndarray:
        """``labels`` ``S`` as this sampler's label stacks are laid out: ``(Z, Y, X)``, slice axis first, padded."""
        pads = self._pads(labels, slice_axis)
        if labels.ndim == 2:
            labels = labels[None]
        elif slice_axis is not None:
            labels = np.moveaxis(labels, slice_axis, 0)
        return np.pad(labels, pads) if any(p[1] for p in pads) else labels

    def crops(self, picks: list[tuple[int, list[int]]]) -> np.ndarray:
        """Image crops ``(n, C', *P)`` at ``(image index, start in the label stack)`` positions."""
        return self._crop(picks, with_labels=False)[0]

    def labelled(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """``n`` crops containing painted voxels: images ``(n, C', *P)``, labels ``(n, *P)``."""
        picks = []
        for _ in range(n):
            balanced = self.balance >= 1 or self.rng.random() < self.balance
            classes = len(self.classes)
            k = self.rng.integers(classes) if balanced else self.rng.choice(classes, p=self.class_shares)
            holders = self.painted[self.classes[k]]
            if len(holders) == 1:
                i, voxels = holders[0]
            elif balanced:
                i, voxels = holders[self.rng.integers(len(holders))]
            else:
                sizes = np.array([idx.size for _, idx in holders], dtype=np.float64)
                i, voxels = holders[self.rng.choice(len(holders), p=sizes / sizes.sum())]
            shape = self.labels[i].shape
            voxel = np.unravel_index(self.rng.choice(voxels), shape)
            start = [
                int(np.clip(v - self.rng.integers(p), 0, s - p))
                for v, p, s in zip(voxel, self.patch, shape, strict=True)
            ]
            picks.append((i, start))
        return self._crop(picks, with_labels=True)

    def unlabelled(self, n: int) -> np.ndarray:
        """``n`` crops where the image has content (painted or not; the methods ignore the labels): ``(n, C', *P)``.

        Each is centred (up to a random shift) on a voxel of the image's content (:meth:`content`), so crops of
        air around a head or of empty background around a sample are rare; uniform when no content is found.
        """
        picks = []
        for _ in range(n):
            i = int(self.rng.choice(len(self.images), p=self.image_weights)) if len(self.images) > 1 else 0
            shape, content = self.labels[i].shape, self.content(i)
            if content is None:
                start = [int(self.rng.integers(s - p + 1)) for p, s in zip(self.patch, shape, strict=True)]
            else:
                voxel = np.unravel_index(self.rng.choice(content), shape)
                start = [int(np.clip(v - self.rng.integers(p), 0, s - p))
                         for v, p, s in zip(voxel, self.patch, shape, strict=True)]  # fmt: skip
            picks.append((i, start))
        return self.crops(picks)

    def content(self, i: int) -> np.ndarray | None:
        """Flat indices (into the label stack; at most about 10^6, evenly thinned) of image ``i``'s voxels brighter
        than Otsu's threshold of its first channel: the anatomy or the sample rather than the air or empty
        background. None when that is under 1 % or over 99 % of the voxels (no clear background)."""
        if i not in self._content:
            from skimage.filters import threshold_otsu

            depth = self.labels[i].shape[0]
            channel = self.images[i][0, self.context : self.context + depth] if self.flat_2d else self.images[i][0]
            flat = channel.reshape(-1)
            threshold = threshold_otsu(flat[:: max(1, flat.size // 200_000)])
            where = np.flatnonzero(flat > threshold)
            share = where.size / flat.size
            self._content[i] = where[:: max(1, where.size // 1_000_000)] if 0.01 <= share <= 0.99 else None
        return self._content[i]

    def _crop(self, picks: list[tuple[int, list[int]]], with_labels: bool) -> tuple[np.ndarray, np.ndarray]:
        boxes = [(i, tuple(slice(s, s + p) for s, p in zip(start, self.patch, strict=True))) for i, start in picks]
        depth = 2 * self.context + self.patch[0]  # image slices per crop (padded: slice z + j is neighbour j - k)
        images = np.stack(
            [self.images[i][(slice(None), slice(box[0].start, box[0].start + depth), *box[1:])] for i, box in boxes]
        )
        labels = np.stack([self.labels[i][box] for i, box in boxes]) if with_labels else np.empty(0)
        if self.flat_2d:  # (n, C, depth, H, W) -> (n, depth * C, H, W), neighbour-major
            images = images.transpose(0, 2, 1, 3, 4).reshape(len(boxes), -1, *images.shape[3:])
            labels = labels[:, 0] if with_labels else labels
        return np.ascontiguousarray(images), labels
