"""Events the workers add to the engine's own (``core.events``)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...core.events import TrainingEvent


@dataclass
class Predicting(TrainingEvent):
    """The whole-image prediction has started (``shape``: the image's spatial shape)."""

    shape: tuple[int, ...]
    kind: str = field(init=False, default="predicting")


@dataclass
class WholePrediction(TrainingEvent):
    """Labels (1..K) and uncertainty ([0, 1]) of the whole image; ``target`` names the image layer predicted.

    For a lazily read image both are zarr arrays in the store ``store`` (else NumPy arrays and ``store`` is empty).
    """

    labels: np.ndarray
    uncertainty: np.ndarray
    seconds: float
    target: str = ""
    store: str = ""
    kind: str = field(init=False, default="whole_prediction")
