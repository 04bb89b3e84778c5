"""A share of the painting kept out of training: an accuracy estimate that needs no ground truth.

The held-out voxels are whole blocks of the painting (squares of the painted slices, cubes for 3D networks), so
that they are not the direct neighbours of trained voxels; every class keeps at least half of its painting for
training. :class:`HeldOutSet` scores a network on them: per class Dice over the held-out voxels.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import torch

from .config import HoldoutConfig
from .sampling import PatchSampler

#: Blocks are halved for classes too small to hold out, down to this side.
SMALLEST_BLOCK = 4
#: A class never loses more than this share of its painted voxels to the held-out set.
MAX_SHARE = 0.5
#: At most this many held-out blocks are scored (each in one crop centred on it), the rarest classes' first.
MAX_BLOCKS = 48


def estimate_note(labels: Sequence[np.ndarray], slice_axis: int | None) -> str:
    """What the held-out estimate cannot see, in a sentence for the user ("" when nothing needs saying).

    ``labels``: each image's painting ``(*S)``; ``slice_axis``: the axis a 2D network slices volumes along (None:
    the volume axis with the fewest painted slices). When every volume holds paint on one slice only, the held-out
    share lies on that slice, beside the trained voxels: it says how well the painted slice is learnt, not how the
    other slices fare, and it ran far above the true Dice on the development suite (docs/benchmarks.md)."""
    volumes = [np.asarray(lab) > 0 for lab in labels if np.ndim(lab) == 3]
    if not volumes or len(volumes) != len(labels):
        return ""

    def slices(painted: np.ndarray, axis: int) -> int:
        return int(painted.any(axis=tuple(a for a in range(3) if a != axis)).sum())

    axes = range(3) if slice_axis is None else (slice_axis % 3,)
    if sum(min(slices(p, a) for a in axes) for p in volumes) != 1:
        return ""
    return (
        "held out on the only painted slice, so it cannot see how the other slices fare and is usually too high: "
        "paint a second slice for an estimate that can"
    )


def block_ids(
    shape: tuple[int, ...], flat: np.ndarray, block: int, slice_axis: int | None, spatial_dims: int
) -> np.ndarray:
    """Block index of the voxels at ``flat`` indices of an array of ``shape``: ``block``-sided squares of each
    slice along ``slice_axis`` (2D networks on volumes), squares of a 2D image, or cubes (3D networks)."""
    sizes = [block] * len(shape)
    if len(shape) == 3 and spatial_dims == 2 and slice_axis is not None:
        sizes[slice_axis] = 1
    coords = np.unravel_index(flat, shape)
    grid = [-(-n // s) for n, s in zip(shape, sizes, strict=True)]
    return np.ravel_multi_index(tuple(c // s for c, s in zip(coords, sizes, strict=True)), grid)


def split_painting(
    labels: Sequence[np.ndarray],
    config: HoldoutConfig,
    slice_axis: int | None,
    spatial_dims: int,
    rng: np.random.Generator,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """``(training labels, held-out labels)``: each painted voxel lands in exactly one of the two.

    For each class, rarest first, blocks holding it are drawn at random until ``config.fraction`` of its painted
    voxels are held out; a block that would take any class past :data:`MAX_SHARE` is skipped. A class too small
    for that (a lesion inside one block) is tried again with blocks of half the side, down to
    :data:`SMALLEST_BLOCK`. Nothing is held out when ``config.fraction`` is 0, or when no voxel of a foreground
    class (2..K) could be held out: an estimate from background alone would say nothing.
    """
    train = [np.asarray(lab).copy() for lab in labels]
    held = [np.zeros_like(lab) for lab in train]
    if config.fraction <= 0:
        return train, held
    rows = [(n, np.flatnonzero(lab.reshape(-1) > 0)) for n, lab in enumerate(train)]
    rows = [(n, flat) for n, flat in rows if flat.size]
    if not rows:
        return train, held
    image = np.concatenate([np.full(flat.size, n) for n, flat in rows])
    flat = np.concatenate([f for _, f in rows])
    value = np.concatenate([train[n].reshape(-1)[f] for n, f in rows])
    classes, totals = np.unique(value, return_counts=True)
    total = dict(zip(classes.tolist(), totals.tolist(), strict=True))
    out = np.zeros(value.size, bool)
    taken = dict.fromkeys(total, 0)
    size = config.block
    while size >= SMALLEST_BLOCK:
        block = _row_blocks(train, rows, size, slice_axis, spatial_dims)
        order = np.argsort(block, kind="stable")
        members = dict(zip(block[order[np.r_[0, np.flatnonzero(np.diff(block[order])) + 1]]].tolist(),
                           np.split(order, np.flatnonzero(np.diff(block[order])) + 1), strict=True))  # fmt: skip
        for c in classes[np.argsort(totals)].tolist():
            for b in rng.permutation(np.unique(block[(value == c) & ~out])):
                if taken[c] >= config.fraction * total[c]:
                    break
                new = members[int(b)][~out[members[int(b)]]]
                kinds, counts = np.unique(value[new], return_counts=True)
                pairs = list(zip(kinds.tolist(), counts.tolist(), strict=True))
                if all(taken[k] + m <= MAX_SHARE * total[k] for k, m in pairs):
                    out[new] = True
                    for k, m in pairs:
                        taken[k] += m
        if all(taken[c] >= config.fraction * total[c] for c in total):
            break
        size //= 2
    if not (out & (value > 1)).any():
        return train, held
    for n in range(len(train)):
        mine = out & (image == n)
        t, h = train[n].reshape(-1), held[n].reshape(-1)
        h[flat[mine]] = t[flat[mine]]
        t[flat[mine]] = 0
    return train, held


def _row_blocks(labels, rows, size: int, slice_axis: int | None, spatial_dims: int) -> np.ndarray:
    """Block of every painted voxel (rows of :func:`split_painting`), unique across images."""
    parts, offset = [], 0
    for n, flat in rows:
        ids = block_ids(labels[n].shape, flat, size, slice_axis, spatial_dims)
        parts.append(ids + offset)
        offset += int(ids.max()) + 1
    return np.concatenate(parts)


class HeldOutSet:
    """Crops centred on held-out blocks (at most :data:`MAX_BLOCKS`), scored by per class Dice.

    Each crop is scored on the held-out voxels of the block it is centred on, so every scored voxel is seen once,
    with context around it. Blocks are taken in a round robin over classes, rarest first, so that a rare class is
    scored even when a large one holds most blocks.

    Args:
        sampler: the training sampler (its padded image stacks give the crops, with their neighbour slices).
        held: held-out labels ``S_i`` per image (0 elsewhere), as from :func:`split_painting`.
        config, slice_axis, spatial_dims: as the split was made.
        rng: draws which blocks are scored when there are more than :data:`MAX_BLOCKS`.
    """

    def __init__(self, sampler: PatchSampler, held: Sequence[np.ndarray], config: HoldoutConfig,
                 slice_axis: int | None, spatial_dims: int, rng: np.random.Generator) -> None:  # fmt: skip
        blocks = []  # (class to file the block under, image, voxel coordinates, their classes) in stack coordinates
        for n, lab in enumerate(held):
            flat = np.flatnonzero(lab.reshape(-1) > 0)
            if not flat.size:
                continue
            ids = np.zeros(lab.shape, np.int64)
            ids.reshape(-1)[flat] = block_ids(lab.shape, flat, config.block, slice_axis, spatial_dims)
            stack = sampler.label_stack(lab, slice_axis)
            where = np.argwhere(stack > 0)
            ids = sampler.label_stack(ids, slice_axis)[tuple(where.T)]
            values = stack[tuple(where.T)]
            order = np.argsort(ids, kind="stable")
            for part in np.split(order, np.flatnonzero(np.diff(ids[order])) + 1):
                blocks.append((n, where[part], values[part]))
        totals = np.bincount(np.concatenate([v for *_, v in blocks]), minlength=1) if blocks else np.zeros(1)
        groups: dict[int, list] = {}
        for k in rng.permutation(len(blocks)):
            rarest = int(min(np.unique(blocks[k][2]), key=lambda c: totals[c]))
            groups.setdefault(rarest, []).append(blocks[k])
        ranked = [groups[c] for c in sorted(groups, key=lambda c: totals[c])]
        queue = [b for turn in itertools.zip_longest(*ranked) for b in turn if b is not None][:MAX_BLOCKS]
        picks, masks = [], []
        for n, coords, values in queue:
            shape = sampler.labels[n].shape
            centre = (coords.min(0) + coords.max(0)) // 2
            start = [int(np.clip(c - p // 2, 0, s - p)) for c, p, s in zip(centre, sampler.patch, shape, strict=True)]
            mask = np.zeros(sampler.patch, np.int64)
            local = coords - start
            inside = ((local >= 0) & (local < sampler.patch)).all(1)  # a block larger than the crop: its middle
            mask[tuple(local[inside].T)] = values[inside]
            picks.append((n, start))
            masks.append(mask[0] if sampler.flat_2d else mask)
        self.images = sampler.crops(picks) if picks else None
        self.labels = np.stack(masks) if masks else np.zeros((0,), np.int64)
        self.classes = sorted(int(c) for c in np.unique(self.labels[self.labels > 0]))

    def __len__(self) -> int:
        return 0 if self.images is None else len(self.images)

    @torch.no_grad()
    def dice(self, network: torch.nn.Module, device: torch.device, batch_size: int = 8) -> dict[int, float]:
        """Per class value: Dice of ``network``'s argmax over the held-out voxels (eval mode during the call)."""
        if not len(self):
            return {}
        was_training = network.training
        network.eval()
        try:
            predicted = []
            for start in range(0, len(self), batch_size):
                x = torch.from_numpy(self.images[start : start + batch_size]).to(device)
                predicted.append((network(x).logits.float().argmax(1) + 1).cpu().numpy())
        finally:
            network.train(was_training)
        pred, truth = np.concatenate(predicted), self.labels
        scored = truth > 0
        out = {}
        for c in self.classes:
            p, t = (pred == c) & scored, truth == c
            out[c] = float(2 * (p & t).sum() / max(1, p.sum() + t.sum()))
        return out
