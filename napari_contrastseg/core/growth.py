"""Pseudo-labels grown outward from the painted slices (2D networks on volumes; :class:`~.config.GrowthConfig`).

A network trained on a few painted slices predicts the slices next to them best: the anatomy there differs least.
During a run, from ``start`` of the last stage on and then every ``every`` of it, the network (the weights the run
would return) predicts the ``slices`` unpainted slices nearest to the painted ones that have no pseudo-labels yet
(fewer of large slices: at most ``pixels`` pixels, at least one slice). Where its probability of a class is at
least ``confidence``, that class becomes a pseudo-label, kept for the rest of the run, so that the labelled region
grows outward slice by slice. ``share`` of the labelled crops (ramped up over the first two growths) are then
centred on pseudo-labels, class-balanced as the painting's crops are, and augmented as they are: labels from the
plain slices, learnt under the core's spatial and intensity augmentation (weak to strong). Slices that hold paint,
the held-out share included, are never pseudo-labelled, so the held-out estimate stays independent of them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .config import GrowthConfig
from .distributed import array_from_rank0
from .inference import slice_probabilities
from .model_info import ModelInfo
from .sampling import PatchSampler


class GrownLabels:
    """The pseudo-labels of one run and the sampler that draws crops centred on them.

    Args:
        images: normalised ``(C, *S_i)`` volumes (the run's).
        painting: the whole painting ``S_i`` per volume (training and held-out shares): its slices are never grown.
        info: the run's model metadata (slice axis, context, crop size).
        config: when and how much to grow (checked by :func:`~.setup.plan_training`).
        start: the share of the budget where the last stage begins (growth counts from there).
        rng, balance: the run's generator and ``sampling_balance`` for :attr:`sampler`, which draws crops centred on
            pseudo-labels (its label stacks hold them, slice axis first).
    """

    def __init__(self, images: Sequence[np.ndarray], painting: Sequence[np.ndarray], info: ModelInfo,
                 config: GrowthConfig, start: float, rng: np.random.Generator, balance: float) -> None:  # fmt: skip
        self.images, self.info, self.config, self.axis = images, info, config, info.slice_axis
        self.first = start + config.start * (1 - start)
        self.every = config.every * (1 - start)
        self.pending = _outward_order(painting, self.axis)  # (volume, slice) nearest to the painting first
        largest = max((p.size // p.shape[self.axis] for p in painting if p.ndim == 3), default=1)
        self.per_growth = max(1, min(config.slices, config.pixels // largest))
        empty = [np.zeros(p.shape, np.min_scalar_type(info.n_classes)) for p in painting]
        self.sampler = PatchSampler(images, empty, tuple(info.patch_size), self.axis, rng, info.network.context,
                                    balance)  # fmt: skip
        self.growths = self.voxels = 0

    def due(self, progress: float) -> bool:
        """Whether a growth is due at ``progress`` of the budget (before its end, with slices left to grow into)."""
        return bool(self.pending) and self.first + self.growths * self.every <= progress < 1

    @property
    def extras(self) -> list[tuple[PatchSampler, float]]:
        """``[(sampler, share of the labelled crops)]`` for the trainer's draws (empty before any pseudo-label)."""
        return [(self.sampler, self.config.share * min(1.0, self.growths / 2))] if self.voxels else []

    def summary(self) -> dict:
        """What grew, for the model's training summary."""
        return {"growths": self.growths, "voxels": self.voxels}

    def grow(self, network: torch.nn.Module, device: torch.device) -> int:
        """Pseudo-label the next slices with ``network``; returns how many voxels were labelled."""
        picks, self.pending = self.pending[: self.per_growth], self.pending[self.per_growth :]
        self.growths += 1
        labelled = 0
        for n in sorted({n for n, _ in picks}):
            z = np.array([s for m, s in picks if m == n])
            stack = np.moveaxis(self.images[n], self.axis + 1, 0)  # (Z, C, H, W)
            probabilities = slice_probabilities(network, stack, self.info, z, device)  # (K, n, H, W), an eval copy
            guess = np.where(probabilities.max(0) >= self.config.confidence, probabilities.argmax(0) + 1, 0)
            guess = array_from_rank0(guess, device)  # every rank learns the same labels and keeps the same draws
            self.sampler.add_labels(n, z, guess)
            labelled += int((guess > 0).sum())
        self.voxels += labelled
        return labelled


def _outward_order(painting: Sequence[np.ndarray], axis: int) -> list[tuple[int, int]]:
    """Every unpainted slice ``(volume, index)`` of the volumes that hold paint, nearest to a painted slice first
    (ties: volume, then index)."""
    order = []
    for n, labels in enumerate(painting):
        painted = np.flatnonzero((labels > 0).any(axis=tuple(a for a in range(3) if a != axis)))
        if not painted.size:
            continue
        index = np.arange(labels.shape[axis])
        distance = np.abs(index[:, None] - painted[None]).min(1)
        order += [(int(distance[z]), n, int(z)) for z in index if distance[z] > 0]
    return [(n, z) for _, n, z in sorted(order)]


def grown_labels(plan, config, start: float, rng: np.random.Generator) -> GrownLabels | None:
    """The run's :class:`GrownLabels`, or None where nothing grows (off, 3D networks, 2D images, pre-training)."""
    info = plan.info
    volumes = all(lab.ndim == 3 for lab in plan.labels)
    if not config.growth.enabled or config.pretrain or info.spatial_dims != 2 or not volumes:
        return None
    return GrownLabels(plan.images, plan.labels, info, config.growth, start, rng, config.sampling_balance)
