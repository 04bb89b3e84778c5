"""The dock's one state: what is chosen, what is trained, what runs. Panels read and write it, and listen to it.

An evented dataclass (psygnal, as napari's own models): ``state.events.<field>.connect(callback)`` is called with
the new value whenever a field changes. Panels never import one another; everything they share is here (and in
:class:`~.jobs.Jobs`, which runs the work).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from psygnal import evented

from ..core.events import Estimate
from ..core.model import TrainedModel
from .class_list import DEFAULT_NAMES


@dataclass(frozen=True, eq=False)
class UncertaintyMap:
    """The whole-image prediction of the current model on the image layer ``image``: its uncertainty ``volume``
    (normalised entropy) and its predicted classes ``labels`` (1..K), what "Next slice to paint" scores by."""

    image: str
    volume: np.ndarray
    labels: np.ndarray


@dataclass(frozen=True)
class PaintedEstimate:
    """The held-out estimate of a finished training, and how many slices (or voxels, in 2D) were painted then."""

    painted: int
    mean: float


@evented
@dataclass
class DockState:
    """``image`` / ``scribbles``: the chosen layers' names ("" when none). ``model``: the current model and
    ``model_source`` where it came from. ``training`` / ``applying``: whether such a job runs. ``slice_axis``: the
    axis a 2D network slices the image along. ``pretrained``: a label-free pre-training of ``pretrained_image``,
    the starting point of the next Train on it. ``estimates``: the held-out estimate after each training, with the
    painting it had (the "does more paint still help?" signal). ``status``: the dock's status line."""

    image: str = ""
    scribbles: str = ""
    class_names: list[str] = field(default_factory=lambda: list(DEFAULT_NAMES))
    model: TrainedModel | None = None
    model_source: str = ""
    training: bool = False
    applying: bool = False
    slice_axis: int | None = None
    uncertainty: UncertaintyMap | None = None
    estimate: Estimate | None = None
    estimates: tuple[PaintedEstimate, ...] = ()
    pretrained: TrainedModel | None = None
    pretrained_image: str = ""
    status: str = ""


def describe_model(model: TrainedModel, source: str) -> str:
    """One line about ``model``: classes, slicing, method, how long it trained and its estimated Dice."""
    info = model.info
    names = info.class_names
    shown = ", ".join(names[:4]) + (f", … ({len(names)} classes)" if len(names) > 4 else "")
    where = f"2D along axis {info.slice_axis}" if info.slice_axis is not None else f"{info.spatial_dims}D"
    t = info.training or {}
    done = f", {t.get('iterations', '?')} iterations" + (" (stopped early)" if t.get("cancelled") else "")
    estimate = t.get("estimated_mean_dice")
    said = f", estimated Dice {estimate:.2f}" if isinstance(estimate, float) and np.isfinite(estimate) else ""
    return f"Model ({source}): {shown}; {where}; {info.method}{done}{said}."


def hint(state: DockState) -> str:
    """What to do next, while nothing has been trained."""
    if not state.image:
        return "Open an image (File > Open), or try File > Open Sample > ContrastSeg."
    if not state.scribbles:
        return "Click New to make a scribbles layer; paint background (1) and each class (2, 3, ...); then Train."
    return "Ready: press Train. Keep painting while it trains; Continue uses the new strokes."
