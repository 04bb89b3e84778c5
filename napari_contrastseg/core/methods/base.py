"""The strategy interface every training method implements, and the registry that names them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from ..errors import InputError
from ..network import UNet
from .schedule import stage_position


@dataclass
class Batch:
    """One training step's data on the training device.

    ``images``: labelled crops ``(B, C, *P)``; ``labels``: ``(B, *P)`` long, 0 = unpainted, 1..K classes;
    ``unlabelled``: crops from anywhere ``(Bu, C, *P)``, or None for methods that do not use them.
    """

    images: torch.Tensor
    labels: torch.Tensor
    unlabelled: torch.Tensor | None = None


class Method(nn.Module):
    """A training method: loss terms, plus any heads or teachers it needs (held as submodules of this module).

    The trainer owns the loop, the optimiser (over the network's and this module's parameters), devices,
    precision, cancel and events; a method only says what to minimise at a point of the schedule.

    Args:
        network: the segmentation U-Net being trained.
        n_classes: K.
        options: method options; keys must be among :attr:`defaults`.
    """

    name: ClassVar[str]
    needs_unlabelled: ClassVar[bool] = False
    #: whether the method has a label-free first stage that can run before anything is painted
    pretrainable: ClassVar[bool] = False
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, network: UNet, n_classes: int, options: dict[str, Any] | None = None) -> None:
        super().__init__()
        unknown = set(options or {}) - set(self.defaults)
        if unknown:
            raise InputError(
                f"Unknown option(s) {sorted(unknown)} for method {self.name!r}; known: {sorted(self.defaults)}."
            )
        self.options = {**self.defaults, **(options or {})}
        self.n_classes = n_classes
        #: a warm start (Continue): the whole budget is the last stage (fine-tuning), see ``stage_position``
        self.resume = False
        #: label-free pre-training: the whole budget is the first stage, without any supervised term
        self.pretraining = False

    @property
    def stage_fractions(self) -> list[float]:
        """Shares of the budget of every stage but the last (which takes the rest); [] for one stage."""
        return []

    @property
    def stagewise(self) -> bool:
        """Whether the trainer starts each stage with a fresh optimiser state and its own learning-rate schedule
        (option ``stagewise_optimizer``, default True; False: one schedule over the whole budget)."""
        return bool(self.options.get("stagewise_optimizer", True))

    @property
    def final_stage_start(self) -> float:
        """The share of the budget before the last stage (0 for one stage, a Continue or pre-training)."""
        return 0.0 if self.resume or self.pretraining else float(sum(self.stage_fractions))

    def position(self, progress: float) -> tuple[int, float]:
        """``(stage, share of it done)`` at ``progress`` of the budget."""
        if self.pretraining:
            return 0, progress
        return stage_position(progress, self.stage_fractions, self.resume)

    def unlabelled_count(self, batch_size: int) -> int:
        """Unlabelled crops per step (the labelled ones are ``batch_size``)."""
        return batch_size

    def losses(self, network: UNet, batch: Batch, progress: float) -> dict[str, torch.Tensor]:
        """Loss terms to add up, at ``progress`` in [0, 1) of the iteration budget."""
        raise NotImplementedError

    def after_step(self, network: UNet, progress: float) -> None:
        """Called after each optimiser step (e.g. to update an EMA teacher)."""


METHODS: dict[str, type[Method]] = {}


def register(cls: type[Method]) -> type[Method]:
    """Class decorator adding a method to :data:`METHODS` under ``cls.name``."""
    METHODS[cls.name] = cls
    return cls


def create_method(name: str, network: UNet, n_classes: int, options: dict[str, Any] | None = None) -> Method:
    """Instantiate the method called ``name``; unknown names raise :class:`InputError` listing the known ones."""
    if name not in METHODS:
        raise InputError(f"Unknown method {name!r}; choose one of {sorted(METHODS)}.")
    return METHODS[name](network, n_classes, options)
