"""Typed events the trainer yields; every front end (CLI, napari, Slicer) consumes the same stream."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from .model import TrainedModel


@dataclass
class TrainingEvent:
    """Base class. ``kind`` names the event in JSON lines."""

    kind: str = field(init=False, default="event")

    def to_json(self) -> str:
        """One JSON line; arrays and models are summarised, not serialised."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "model":
                continue  # a TrainedModel: in-process front ends take it from the event; the CLI saves it
            if isinstance(value, np.ndarray):
                value = {"shape": list(value.shape), "dtype": str(value.dtype)}
            elif isinstance(value, Mapping):
                value = dict(value)
            elif isinstance(value, TrainingEvent):
                value = json.loads(value.to_json())
            out[f.name] = value
        return json.dumps(out, default=str)


@dataclass
class Started(TrainingEvent):
    """Training began. ``device`` is in words (e.g. ``"cuda:0 (NVIDIA H100)"``, ``"cpu (2 threads)"``)."""

    device: str
    n_parameters: int
    method: str
    iterations: int | None  # the iteration limit (None: the time budget alone)
    dims: str
    slice_axis: int | None
    patch_size: tuple[int, ...]
    batch_size: int
    warm_start: str  # "none", "full" or "partial (new classes)"
    time_budget: float | None = None  # seconds
    held_out_voxels: int = 0  # painted voxels kept out of training for the accuracy estimate
    normalization: str = ""  # the intensity normalisation used ("percentile", "ct" or "window")
    kind: str = field(init=False, default="started")


class LossValues(Mapping[str, float]):
    """One step's loss terms by name, left on the training device until first read.

    The trainer never reads them, so a step needs no device-to-host copy; reading waits for that step's work.
    ``values``: ``(len(names),)`` float tensor.
    """

    def __init__(self, names: Sequence[str], values: torch.Tensor) -> None:
        self._names = tuple(names)
        self._values: torch.Tensor | None = values.detach()
        self._floats: dict[str, float] | None = None

    @classmethod
    def mean(cls, steps: Sequence[Mapping[str, float]]) -> Mapping[str, float]:
        """Term-wise mean of several steps' values, read from the device in one copy when they share names."""
        tensors = [s._values for s in steps if isinstance(s, LossValues) and s._values is not None]
        if len(tensors) == len(steps) and len({s._names for s in steps}) == 1:
            return cls(steps[0]._names, torch.stack(tensors).mean(0))
        names = steps[-1].keys()
        return {k: float(np.mean([s[k] for s in steps if k in s])) for k in names}

    @property
    def read(self) -> bool:
        """Whether the values have been copied to the host."""
        return self._floats is not None

    def _host(self) -> dict[str, float]:
        if self._floats is None:
            self._floats = dict(zip(self._names, self._values.cpu().tolist(), strict=True))
            self._values = None
        return self._floats

    def __getitem__(self, name: str) -> float:
        return self._host()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __len__(self) -> int:
        return len(self._names)

    def __repr__(self) -> str:
        return f"LossValues({self._host()})"


@dataclass
class Step(TrainingEvent):
    """One optimisation step. ``losses`` holds every loss term and ``total``, read lazily (:class:`LossValues`).

    ``progress``: share of the budget used (time or iterations, whichever is further), in [0, 1].
    """

    iteration: int  # 1-based
    iterations: int | None  # the iteration limit, or None under a time budget alone
    losses: Mapping[str, float]
    learning_rate: float
    iterations_per_second: float
    batch_size: int
    progress: float = 0.0
    seconds: float = 0.0
    kind: str = field(init=False, default="step")


@dataclass
class Estimate(TrainingEvent):
    """Dice of the current weights on the held-out share of the painting: an accuracy estimate without ground truth.

    ``dice``: class name -> Dice over that class's held-out voxels (classes with none held out are missing);
    ``mean``: the mean over foreground classes (2..K), NaN if none is held out; ``best``: whether these are the
    best weights so far (the ones a finished run returns); ``note``: what the estimate cannot see, for the user
    (:func:`~.holdout.estimate_note`; empty when nothing needs saying).
    """

    iteration: int
    seconds: float
    dice: dict[str, float]
    mean: float
    best: bool
    note: str = ""
    kind: str = field(init=False, default="estimate")


@dataclass
class Preview(TrainingEvent):
    """Prediction of the requested slice (2D image, or one slice of a volume along ``axis``).

    ``labels``: user class values (0 nowhere); ``uncertainty``: normalised entropy in [0, 1]; both of the slice's shape.
    """

    iteration: int
    axis: int | None
    index: int | None
    labels: np.ndarray
    uncertainty: np.ndarray
    kind: str = field(init=False, default="preview")


@dataclass
class Checkpoint(TrainingEvent):
    """Weights written to ``path`` at ``iteration``."""

    iteration: int
    path: str
    kind: str = field(init=False, default="checkpoint")


@dataclass
class Finished(TrainingEvent):
    """Training ended (also after a cancel); ``model`` holds the weights with the best held-out Dice (the last
    ones when nothing is held out). ``stop_reason``: ``"time budget"``, ``"iterations"``, ``"no longer improving"`` or
    ``"cancelled"``; ``estimate``: the held-out Dice of the returned weights (see :class:`Estimate`), or None."""

    iteration: int
    cancelled: bool
    seconds: float
    model: TrainedModel
    summary: dict[str, Any]
    stop_reason: str = ""
    estimate: Estimate | None = None
    kind: str = field(init=False, default="finished")


@dataclass
class Failed(TrainingEvent):
    """Training could not run or go on. ``message`` is for the user; ``error`` names the exception type."""

    message: str
    error: str
    kind: str = field(init=False, default="failed")
