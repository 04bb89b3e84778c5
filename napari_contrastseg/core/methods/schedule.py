"""Stages of a method inside one iteration budget."""

from __future__ import annotations

import torch


def stage_at(progress: float, fractions: list[float]) -> int:
    """Index of the stage that ``progress`` in [0, 1) falls in; stage i spans ``fractions[i]`` of the budget,
    and the last stage takes whatever the listed fractions leave."""
    edge = 0.0
    for i, fraction in enumerate(fractions):
        edge += fraction
        if progress < edge:
            return i
    return len(fractions)


def seeded_generator() -> torch.Generator:
    """A CPU generator seeded from torch's global generator (which the trainer seeds), for reproducible draws."""
    return torch.Generator().manual_seed(int(torch.randint(2**31 - 1, ())))
