"""Typed events the trainer yields; every front end (CLI, napari, Slicer) consumes the same stream."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

import numpy as np

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
            out[f.name] = value
        return json.dumps(out, default=str)


@dataclass
class Started(TrainingEvent):
    """Training began. ``device`` is in words (e.g. ``"cuda:0 (NVIDIA H100)"``, ``"cpu (2 threads)"``)."""

    device: str
    n_parameters: int
    method: str
    iterations: int
    dims: str
    slice_axis: int | None
    patch_size: tuple[int, ...]
    batch_size: int
    warm_start: str  # "none", "full" or "partial (new classes)"
    kind: str = field(init=False, default="started")


@dataclass
class Step(TrainingEvent):
    """One optimisation step. ``losses`` holds every loss term and ``total``."""

    iteration: int  # 1-based
    iterations: int
    losses: dict[str, float]
    learning_rate: float
    iterations_per_second: float
    batch_size: int
    kind: str = field(init=False, default="step")


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
    """Training ended (all iterations, or cancelled); ``model`` holds the last weights."""

    iteration: int
    cancelled: bool
    seconds: float
    model: TrainedModel
    summary: dict[str, Any]
    kind: str = field(init=False, default="finished")


@dataclass
class Failed(TrainingEvent):
    """Training could not run or go on. ``message`` is for the user; ``error`` names the exception type."""

    message: str
    error: str
    kind: str = field(init=False, default="failed")
