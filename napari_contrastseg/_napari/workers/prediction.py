"""Whole-image prediction in a worker thread."""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np

from ...core.events import Failed, TrainingEvent
from ...core.model import TrainedModel
from .background import DEFAULT_NICE, in_own_thread
from .control import Aborted, RunControl
from .events import Predicting, WholePrediction


def predict_whole(
    model: TrainedModel,
    image: np.ndarray,
    channel_axis: int | None,
    device: str,
    control: RunControl,
    target: str = "",
) -> Iterator[TrainingEvent]:
    """Yield :class:`Predicting`, then :class:`WholePrediction` or :class:`Failed` (never raises).

    Returns early, yielding nothing more, when ``control.abort`` or ``control.skip_prediction`` is set.
    """
    from ...core.data import spatial_shape_of

    def check(_done: int, _total: int) -> None:
        if control.abort.is_set() or control.skip_prediction.is_set():
            raise Aborted

    yield Predicting(spatial_shape_of(image, channel_axis))
    start = time.perf_counter()
    try:
        result = model.predict(image, channel_axis, device=device, probabilities=False, progress=check)
    except Aborted:
        return
    except Exception as err:  # noqa: BLE001 - every failure becomes a message, never a crash
        yield Failed(prediction_failure(err), type(err).__name__)
        return
    yield WholePrediction(result.labels, result.uncertainty, time.perf_counter() - start, target)


def prediction_failure(err: BaseException) -> str:
    """A plain message for a prediction that failed."""
    import torch

    from ...core.errors import ContrastSegError

    if isinstance(err, torch.OutOfMemoryError):
        return (
            "Out of GPU memory while predicting the whole image. Choose the CPU as device, or close other "
            "programs that use the GPU, and apply the model again."
        )
    if isinstance(err, MemoryError):
        return "Out of memory while predicting the whole image; close other programs or use a smaller image."
    if isinstance(err, ContrastSegError):
        return str(err)
    return f"Prediction failed: {type(err).__name__}: {err}"


def apply_model_events(
    model: TrainedModel,
    image: np.ndarray,
    channel_axis: int | None,
    device: str,
    control: RunControl,
    cpu_threads: int = 1,
    target: str = "",
    nice: int = DEFAULT_NICE,
) -> Iterator[TrainingEvent]:
    """Worker generator for "Apply": :func:`predict_whole` in a lower-priority thread; sets ``control.done``."""
    control.started.set()

    def work() -> Iterator[TrainingEvent]:
        import torch

        torch.set_num_threads(max(1, int(cpu_threads)))
        yield from predict_whole(model, image, channel_axis, device, control, target)

    try:
        if control.abort.is_set():
            return
        yield from in_own_thread(work, control, nice, "prediction")
    finally:
        control.done.set()
