"""From what is on screen to a training request: the image and a snapshot of the painting, checked, with the
settings turned into the engine's configuration (main thread; nothing here changes a layer)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.config import TrainConfig
from ..core.data import SegmentationData, painted_slice_axis
from ..core.errors import InputError
from ..core.model import TrainedModel
from ..core.trainer import PreviewRequest
from .layers import image_array, spatial_shape
from .settings import TrainingSettings
from .workers.background import DEFAULT_NICE
from .workers.training import TrainingRequest


@dataclass
class Extras:
    """What the dock adds to a run besides the form: intermediate checkpoints and the work thread's niceness."""

    checkpoint_dir: Path | None = None
    checkpoint_every: int = 0
    nice: int = DEFAULT_NICE


def build_request(
    image_layer,
    labels_layer,
    class_names: list[str],
    settings: TrainingSettings,
    model: TrainedModel | None,
    extras: Extras,
) -> TrainingRequest:
    """A checked :class:`TrainingRequest`; ``model`` given: warm start from it with its network and normalisation.

    Raises :class:`InputError` with a message for the user when something cannot be trained on. The painting is
    copied: the scribbles layer is never written.
    """
    if image_layer is None:
        raise InputError(
            "Choose the image to segment in the Image menu (or open one: File > Open Sample > ContrastSeg)."
        )
    if labels_layer is None:
        raise InputError(
            "There is no scribbles layer yet: click New next to Scribbles, paint a few strokes of each class "
            "(background included), then press Train."
        )
    try:
        image, channel_axis = image_array(image_layer)
    except Exception as err:  # noqa: BLE001 - e.g. a remote or lazy array that cannot be read
        raise InputError(f"The image layer '{image_layer.name}' cannot be read into memory: {err}") from None
    shape = spatial_shape(image_layer)
    labels = np.array(labels_layer.data, copy=True)
    if labels.shape != shape:
        raise InputError(
            f"The scribbles layer '{labels_layer.name}' has shape {labels.shape} but the image "
            f"'{image_layer.name}' has shape {shape}. Choose the scribbles painted on this image, or click New."
        )
    spacing = tuple(float(s) for s in image_layer.scale)[-len(shape) :]
    data = SegmentationData(image, labels, class_names, spacing, channel_axis).validate()
    config = settings.to_config()
    if model is not None:
        info = model.info
        config.network, config.normalization = info.network, info.normalization
        config.dims = "3d" if info.spatial_dims == 3 else "2d"
        if info.slice_axis is not None and labels.ndim == 3:
            config.slice_axis = info.slice_axis
    if extras.checkpoint_dir is not None and extras.checkpoint_every > 0:
        config.checkpoint_every = int(extras.checkpoint_every)
    return TrainingRequest(
        data,
        config,
        model,
        PreviewRequest(axis=expected_slice_axis(labels, config)),
        settings.preview_seconds,
        settings.cpu_threads,
        predict_at_end=True,
        checkpoint_dir=extras.checkpoint_dir if config.checkpoint_every else None,
        nice=extras.nice,
    )


def pretrain_request(image_layer, axis: int | None, settings: TrainingSettings, extras: Extras) -> TrainingRequest:
    """Label-free pre-training of the image (nothing painted needed), slicing volumes along ``axis``."""
    if image_layer is None:
        raise InputError("Choose the image to pre-train on in the Image menu.")
    image, channel_axis = image_array(image_layer)
    shape = spatial_shape(image_layer)
    data = SegmentationData(image, np.zeros(shape, np.uint8), None, None, channel_axis).validate(require_paint=False)
    config = settings.to_config()
    config.pretrain, config.slice_axis, config.preview_every = True, axis if len(shape) == 3 else None, 0
    return TrainingRequest(data, config, None, None, 0.0, settings.cpu_threads, predict_at_end=False, nice=extras.nice)


def names_for(labels: np.ndarray, names: list[str]) -> list[str]:
    """``names``, extended to every label value the painting uses (``class k`` for the unnamed ones)."""
    top = int(labels.max()) if labels.size else 0
    return [*names, *[f"class {k}" for k in range(len(names) + 1, top + 1)]]


def expected_slice_axis(labels: np.ndarray, config: TrainConfig) -> int | None:
    """The axis a 2D network will slice the volume along (None for 2D images)."""
    if labels.ndim != 3:
        return None
    if config.slice_axis is not None:
        return int(config.slice_axis) % 3
    return painted_slice_axis(labels)


def painted_count(labels: np.ndarray, axis: int | None) -> int:
    """How much is painted: slices holding paint along ``axis`` (volumes), else painted pixels."""
    if axis is None or labels.ndim != 3:
        return int(np.count_nonzero(labels))
    other = tuple(a for a in range(3) if a != axis)
    return int((np.asarray(labels) > 0).any(axis=other).sum())
