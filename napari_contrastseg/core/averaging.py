"""An exponential moving average of a network's weights: what a run scores, previews and returns when asked."""

from __future__ import annotations

import copy

import torch

from .errors import InputError
from .losses import ema_update


class WeightAverage:
    """``theta_avg <- m_t theta_avg + (1 - m_t) theta`` after each step, ``m_t = min(momentum, (1 + t) / (10 + t))``
    at step ``t`` since the last :meth:`restart` (the first steps are not dragged towards the starting weights).

    ``network`` is the averaged copy (buffers, e.g. BatchNorm statistics, follow the raw network's).
    """

    def __init__(self, network: torch.nn.Module, momentum: float) -> None:
        if not 0 < momentum < 1:
            raise InputError(f"The weight average's momentum must lie between 0 and 1 (ema), not {momentum}.")
        self.momentum = momentum
        self.network = copy.deepcopy(network)
        self.steps = 0

    def restart(self, network: torch.nn.Module) -> None:
        """Start again from ``network``'s weights (a new training stage)."""
        self.network.load_state_dict(network.state_dict())
        self.steps = 0

    @torch.no_grad()
    def update(self, network: torch.nn.Module) -> None:
        """Fold the raw weights of one more step into the average."""
        ema_update(self.network, network, min(self.momentum, (1 + self.steps) / (10 + self.steps)))
        self.steps += 1
