"""The training worker: runs the engine's ``train`` generator in a thread and forwards its events.

It keeps the GUI fed without flooding it: step events are merged to at most ``STEP_EVENTS_PER_SECOND`` (losses
averaged on the device and read once per merged event), the live preview is spaced to about ``preview_seconds``
by adapting ``preview_every`` to the measured speed, and after training the whole image is predicted (unless the
widget is closing).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ...core.config import TrainConfig
from ...core.data import SegmentationData
from ...core.events import Failed, Finished, LossValues, Preview, Started, Step, TrainingEvent
from ...core.model import TrainedModel
from ...core.trainer import PreviewRequest, train
from .background import DEFAULT_NICE, in_own_thread
from .control import RunControl
from .prediction import predict_whole, prediction_failure

STEP_EVENTS_PER_SECOND = 4.0  # each GUI update costs a window redraw (measured: docs/napari.md)


@dataclass
class TrainingRequest:
    """Everything one run needs, copied from the layers on the main thread before the worker starts."""

    data: SegmentationData
    config: TrainConfig
    initial_model: TrainedModel | None = None
    preview: PreviewRequest | None = None  # the widget updates ``preview.index`` as the user moves the slider
    preview_seconds: float = 3.0
    cpu_threads: int = 1
    predict_at_end: bool = True
    checkpoint_dir: Path | None = None
    nice: int = DEFAULT_NICE  # lower the training thread's priority by this much (Linux)


def training_events(request: TrainingRequest, control: RunControl) -> Iterator[TrainingEvent]:
    """Yield the engine's events (merged steps), then :class:`Predicting` and :class:`WholePrediction`.

    The work runs in a dedicated lower-priority thread (:mod:`.background`); this generator, run by the napari
    worker, only relays. Never raises: problems arrive as :class:`Failed`. ``control.done`` is set at the end.
    """
    control.started.set()
    try:
        if control.abort.is_set():
            return
        yield from in_own_thread(lambda: _work(request, control), control, request.nice, "training")
    finally:
        control.done.set()


def _work(request: TrainingRequest, control: RunControl) -> Iterator[TrainingEvent]:
    try:
        import torch

        torch.set_num_threads(max(1, int(request.cpu_threads)))  # per thread: the GUI thread keeps its own
        finished = yield from _train(request, control)
        if finished is None or control.abort.is_set() or not request.predict_at_end:
            return
        data = request.data
        yield from predict_whole(finished.model, data.image, data.channel_axis, request.config.device, control)
    except Exception as err:  # noqa: BLE001 - the GUI must get a message, never an exception
        if not control.abort.is_set():
            yield Failed(prediction_failure(err), type(err).__name__)


def _train(request: TrainingRequest, control: RunControl) -> Iterator[TrainingEvent]:
    """Forward the trainer's events; return the :class:`Finished` event (None after a failure)."""
    config = request.config
    pending: list[Mapping[str, float]] = []
    last_step = 0.0
    speed = 0.0
    adapted = False
    for event in train(
        request.data,
        config,
        initial_model=request.initial_model,
        cancel=control,
        preview=request.preview if config.preview_every else None,
        checkpoint_dir=request.checkpoint_dir,
    ):
        if control.abort.is_set() and not isinstance(event, (Finished, Failed)):
            continue  # closing: run to the end of the current step, tell nobody
        if isinstance(event, Step):
            speed = event.iterations_per_second
            pending.append(event.losses)
            now = time.perf_counter()
            if now - last_step < 1.0 / STEP_EVENTS_PER_SECOND and event.progress < 1:
                continue
            last_step = now
            event = replace(event, losses=dict(LossValues.mean(pending)))  # read here, not in the GUI thread
            pending = []
        elif isinstance(event, Preview) and not adapted and request.preview_seconds > 0:
            adapted = True  # from now on preview about every ``preview_seconds`` (the trainer reads it each step)
            config.preview_every = max(1, int(round(speed * request.preview_seconds)))
        if isinstance(event, Finished):
            if not control.abort.is_set():
                yield event
            return event
        if isinstance(event, Failed):
            if not control.abort.is_set():
                yield event
            return None
        if isinstance(event, Started) and request.preview is not None and request.preview.index is None:
            request.preview.index = _default_preview_index(request.data.labels, event.slice_axis)
        yield event
    return None


def _default_preview_index(labels: np.ndarray, slice_axis: int | None) -> int | None:
    """The middle painted slice along ``slice_axis`` (what the trainer previews when no index is given)."""
    if slice_axis is None or labels.ndim != 3:
        return None
    other = tuple(a for a in range(3) if a != slice_axis)
    painted = np.flatnonzero((labels > 0).any(axis=other))
    return int(painted[len(painted) // 2]) if painted.size else None
