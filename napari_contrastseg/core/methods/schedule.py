"""Stages of a method inside one budget: where a point of the budget falls, and the ramp of auxiliary weights."""

from __future__ import annotations

import torch

#: Auxiliary losses ramp up linearly over this share of their stage (from 0 to their full weight).
RAMP_SHARE = 0.2


def stage_at(progress: float, fractions: list[float]) -> int:
    """Index of the stage that ``progress`` in [0, 1) falls in; stage i spans ``fractions[i]`` of the budget,
    and the last stage takes whatever the listed fractions leave."""
    return stage_position(progress, fractions)[0]


def stage_position(progress: float, fractions: list[float], resume: bool = False) -> tuple[int, float]:
    """``(stage, share of that stage done)`` at ``progress``; ``resume`` (a warm start): the whole budget is the
    last stage, so a Continue fine-tunes instead of redoing the pre-training stages."""
    if resume:
        return len(fractions), progress
    edge = 0.0
    for i, fraction in enumerate(fractions):
        if progress < edge + fraction:
            return i, (progress - edge) / fraction
        edge += fraction
    rest = 1.0 - edge
    return len(fractions), (progress - edge) / rest if rest > 0 else 1.0


def ramp(within: float) -> float:
    """Weight of an auxiliary loss at ``within`` of its stage: 0 -> 1 over :data:`RAMP_SHARE`, then 1."""
    return min(1.0, within / RAMP_SHARE)


def seeded_generator() -> torch.Generator:
    """A CPU generator seeded from torch's global generator (which the trainer seeds), for reproducible draws."""
    return torch.Generator().manual_seed(int(torch.randint(2**31 - 1, ())))
