"""Whole-image prediction in a worker thread."""

from __future__ import annotations

import atexit
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ...core.events import Failed, TrainingEvent
from ...core.model import TrainedModel
from .background import DEFAULT_NICE, in_own_thread
from .control import Aborted, RunControl
from .events import Predicting, WholePrediction

#: environment variable naming the folder for out-of-core predictions' zarr stores
ENV_DIR = "CONTRASTSEG_PREDICTION_DIR"


def predict_whole(
    model: TrainedModel,
    image: np.ndarray,
    channel_axis: int | None,
    device: str,
    control: RunControl,
    target: str = "",
) -> Iterator[TrainingEvent]:
    """Yield :class:`Predicting`, then :class:`WholePrediction` or :class:`Failed` (never raises).

    A NumPy image is predicted in memory; any other (dask, zarr) block by block into a zarr store on disk
    (:func:`prediction_store`), so that it is never loaded whole. Returns early, yielding nothing more, when
    ``control.abort`` or ``control.skip_prediction`` is set.
    """
    from ...core.data import spatial_shape_of

    def check(_done: int, _total: int) -> None:
        if control.abort.is_set() or control.skip_prediction.is_set():
            raise Aborted

    yield Predicting(spatial_shape_of(image, channel_axis))
    start = time.perf_counter()
    try:
        if isinstance(image, np.ndarray):
            result = model.predict(image, channel_axis, device=device, probabilities=False, progress=check)
            labels, uncertainty, store = result.labels, result.uncertainty, ""
        else:
            from ...core.chunked import predict_to_zarr

            store = str(prediction_store(target))
            group = predict_to_zarr(model, image, store, channel_axis=channel_axis, device=device, progress=check)
            labels, uncertainty = group["labels"], group["uncertainty"]
    except Aborted:
        return
    except Exception as err:  # noqa: BLE001 - every failure becomes a message, never a crash
        yield Failed(prediction_failure(err), type(err).__name__)
        return
    yield WholePrediction(labels, uncertainty, time.perf_counter() - start, target, store)


def prediction_store(target: str) -> Path:
    """A new zarr store path for a prediction of layer ``target``, deleted when Python exits: in
    ``$CONTRASTSEG_PREDICTION_DIR``, else ``<user cache>/napari-contrastseg/predictions`` (on disk, not in RAM)."""
    if os.environ.get(ENV_DIR):
        folder = Path(os.environ[ENV_DIR])
    else:
        from platformdirs import user_cache_dir

        folder = Path(user_cache_dir("napari-contrastseg")) / "predictions"
    folder.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", target)[:60] or "image"
    path = folder / f"{safe}-{uuid.uuid4().hex[:8]}.zarr"
    atexit.register(shutil.rmtree, path, True)
    return path


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
