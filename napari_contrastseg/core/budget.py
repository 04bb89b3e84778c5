"""When a training run ends: a time budget, an iteration budget, or held-out Dice that stopped rising."""

from __future__ import annotations

import math
import time

import torch

from . import distributed
from .config import HoldoutConfig
from .errors import InputError

#: The learning rate falls along a cosine from its full value to this share of it over the budget.
FINAL_LR_SHARE = 0.05
#: Training is never called stalled before this many held-out evaluations (a plateau needs points to be one).
MIN_EVALUATIONS = 5
#: A held-out evaluation may take at most this share of the time between two of them.
VALIDATION_TIME_SHARE = 0.1


class Budget:
    """Progress through a run in [0, 1]: the larger of the shares of ``iterations`` and of ``seconds`` used.

    Either limit may be None (not both). Under ``torchrun`` rank 0's clock decides, so every rank steps alike.
    """

    def __init__(self, iterations: int | None, seconds: float | None, device: torch.device) -> None:
        if iterations is None and seconds is None:
            raise InputError("Give a time budget, a number of iterations, or both.")
        if (iterations is not None and iterations < 1) or (seconds is not None and seconds <= 0):
            raise InputError("The time budget must be positive and the iterations at least 1.")
        self.iterations, self.seconds, self.device = iterations, seconds, device
        self.start = time.perf_counter()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def progress(self, iteration: int) -> float:
        """Share of the budget used after ``iteration`` steps (identical on every rank)."""
        shares = []
        if self.iterations is not None:
            shares.append(iteration / self.iterations)
        if self.seconds is not None:
            shares.append(distributed.from_rank0(self.elapsed / self.seconds, self.device))
        return min(1.0, max(shares))

    def exhausted_by(self, iteration: int) -> str:
        """``"iterations"`` or ``"time budget"``: what ended a run at full progress."""
        if self.iterations is not None and iteration >= self.iterations:
            return "iterations"
        return "time budget"


def learning_rate_factor(progress: float) -> float:
    """Cosine decay from 1 to :data:`FINAL_LR_SHARE` over the budget."""
    return FINAL_LR_SHARE + (1 - FINAL_LR_SHARE) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


class Plateau:
    """Tracks held-out scores: the best so far, whether one is due, and whether training has stopped improving.

    Only the method's last stage counts (``start``: the share of the budget before it, 0 for one stage): earlier
    stages pre-train, their scores are forgotten when it begins and their weights are never returned. Shares below
    are of that stage. An evaluation is due every ``config.every`` of the budget, and never sooner than
    1 / :data:`VALIDATION_TIME_SHARE` times the last evaluation's duration. Training has stalled once
    ``config.patience`` has passed since the score last rose by ``config.min_delta``, at least ``config.earliest``
    and :data:`MIN_EVALUATIONS` evaluations are done, and the network has learnt something: some held-out voxel of a
    class is found (a score above 0: a rare class the network has not found yet keeps training going) and, unless
    the stage starts from weights trained on this painting (``trained_start``: Continue with the same classes), the
    best score is ``config.min_delta`` above the stage's first one. That first score (after the stage's first
    steps) is a yardstick, not a best: an untrained network that happens to score well on a few held-out voxels is
    not returned once a later score exists, and is no reason to stop.
    """

    def __init__(self, config: HoldoutConfig, start: float = 0.0, trained_start: bool = False) -> None:
        self.config, self.start, self.trained_start = config, start, trained_start
        self.reference = -math.inf  # the stage's first score (cold starts only)
        self.best = -math.inf
        self.best_progress = 0.0
        self.last_progress = -math.inf
        self.last_time = -math.inf
        self.cost = 0.0
        self.evaluations = 0

    def _share(self, progress: float) -> float:
        """``progress`` of the budget as a share of the last stage (negative before it)."""
        return (progress - self.start) / max(1.0 - self.start, 1e-9)

    def due(self, progress: float, now: float) -> bool:
        return progress - self.last_progress >= self.config.every and now - self.last_time >= (
            self.cost / VALIDATION_TIME_SHARE
        )

    def update(self, score: float, progress: float, now: float, cost: float) -> bool:
        """Record an evaluation; True if ``score`` is the best so far (ties go to the later one)."""
        if progress >= self.start > self.last_progress:  # the last stage begins: what came before is forgotten
            self.best, self.evaluations, self.reference = -math.inf, 0, -math.inf
        self.last_progress, self.last_time, self.cost = progress, now, cost
        self.evaluations += 1
        if not math.isfinite(score):
            return False
        if self.evaluations == 1 and not self.trained_start:
            self.reference = score
            return False
        if score >= self.best + self.config.min_delta or self.best == -math.inf:
            self.best_progress = progress
        improved = score >= self.best
        self.best = max(self.best, score)
        return improved

    def stalled(self, progress: float) -> bool:
        c = self.config
        enough = self.evaluations >= MIN_EVALUATIONS and self._share(progress) >= c.earliest
        stale = self._share(progress) - self._share(self.best_progress) >= c.patience
        learnt = self.best > 0 and self.best >= self.reference + c.min_delta
        return enough and learnt and stale
