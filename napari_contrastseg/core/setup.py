"""Resolve a training request (data + config + optional warm-start model) into concrete choices."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from .config import TrainConfig
from .data import SegmentationData, default_class_names, painted_slice_axis, validate_collection
from .errors import InputError
from .model import TrainedModel
from .model_info import ModelInfo
from .network import norm_layer
from .normalization import normalize, resolve_normalization

#: Training crop side by network dimensions: 96 px for 2D, chosen on the painting alone (0.598 against 0.577 for 64 px
#: in painted-slice cross-validation, docs/benchmarks.md); 48 for 3D patches.
DEFAULT_PATCH = {2: 96, 3: 48}


@dataclass
class TrainingPlan:
    """What a run trains on: normalised images ``(C, *S_i)``, their labels ``S_i`` (int64), and the model's metadata.

    One image for the usual interactive case; several for a model trained on many painted (or unpainted) images.
    """

    images: list[np.ndarray]
    labels: list[np.ndarray]
    info: ModelInfo


def plan_training(data: SegmentationData | Sequence[SegmentationData], config: TrainConfig) -> TrainingPlan:
    """Check the data and derive dims, slice axis and patch size; raises :class:`InputError` on bad input.

    ``data`` is one image or several (all 2D or all 3D, same channels); with several, unpainted ones are allowed.
    """
    items = [data] if isinstance(data, SegmentationData) else list(data)
    if config.pretrain:  # label-free: any painting is ignored
        for item in items:
            item.validate(require_paint=False)
    elif len(items) == 1:
        items[0].validate()
    else:
        validate_collection(items)
    if (config.iterations is not None and config.iterations < 1) or config.batch_size < 1:
        raise InputError("iterations and batch_size must be at least 1.")
    if config.iterations is None and config.time_budget is None:
        raise InputError("Give a time budget, a number of iterations, or both.")
    if not 0 <= config.sampling_balance <= 1 or not 0 <= config.holdout.fraction < 1:
        raise InputError("sampling_balance must lie in [0, 1] and the held-out fraction in [0, 1).")
    if not 0 <= config.forest.blend <= 1:
        raise InputError(f"The forest's weight in the prediction must lie in [0, 1], got {config.forest.blend}.")
    if not all(0 < w <= 1 for w in config.forest.weights):
        raise InputError(f"The forest's weights to choose among must lie in (0, 1], got {config.forest.weights}.")
    g = config.growth
    if g.enabled and not (0.5 <= g.confidence <= 1 and 0 < g.share < 1 and 0 <= g.start < 1 and 0 < g.every <= 1
                          and g.slices >= 1 and g.pixels >= 1):  # fmt: skip
        raise InputError("Grown pseudo-labels need 0.5 <= confidence <= 1, 0 < share < 1, 0 <= start < 1, "
                         "0 < every <= 1, slices >= 1 and pixels >= 1.")  # fmt: skip
    if config.network.context < 0:
        raise InputError(f"context must be 0 or more neighbouring slices, got {config.network.context}.")
    labels = [np.asarray(item.labels, dtype=np.int64) * (not config.pretrain) for item in items]
    ndim = labels[0].ndim
    dims = {"auto": "2d"}.get(config.dims, config.dims)
    if dims not in ("2d", "3d"):
        raise InputError(f"dims must be auto, 2d or 3d, not {config.dims!r}.")
    if dims == "3d" and ndim != 3:
        raise InputError("3D patch training needs a 3D volume; this image is 2D.")
    slice_axis = None
    if ndim == 3 and dims == "2d":
        slice_axis = _slice_axis(labels) if config.slice_axis is None else config.slice_axis
        if not -3 <= slice_axis < 3:
            raise InputError(f"slice_axis {slice_axis} does not exist in a 3D volume (use 0, 1 or 2).")
        slice_axis %= 3
    spatial_dims = 2 if dims == "2d" else 3
    size = config.patch_size or DEFAULT_PATCH[spatial_dims]
    norm_layer(config.network)  # an unknown norm is refused here, before any work
    m = config.network.min_size
    if size < m or size % m:
        raise InputError(f"patch_size must be a multiple of {m} (the network's pooling steps), got {size}.")
    planes = [[s for a, s in enumerate(lab.shape) if a != slice_axis] for lab in labels]  # slice_axis None: all
    # no bigger than the largest image (smaller ones are padded), rounded up to a multiple of m
    patch = [max(min(size, -(-s // m) * m) for s in axis_sizes) for axis_sizes in zip(*planes, strict=True)]
    first = items[0]
    normalization = resolve_normalization(first.image, first.channel_axis, config.normalization)
    images = [normalize(item.channels_first, normalization) for item in items]
    named = next((item for item in items if item.class_names), items[0])
    # neighbouring slices as channels, and smoothing across them, only where there are neighbours: a 2D network
    # sliding along a volume (a model of 2D images stays readable by versions from before the smoothing)
    sliding = slice_axis is not None
    network = replace(config.network, context=config.network.context if sliding else 0,
                      through_plane=config.network.through_plane and sliding)  # fmt: skip
    info = ModelInfo(
        class_names=named.names if named.class_names else default_class_names(max(item.n_classes for item in items)),
        in_channels=images[0].shape[0],
        spatial_dims=spatial_dims,
        image_ndim=ndim,
        slice_axis=slice_axis,
        patch_size=patch,
        network=network,
        normalization=normalization,
        method=config.method,
        method_options=dict(config.method_options),
        spacing=list(first.spacing) if first.spacing is not None else None,
    )
    return TrainingPlan(images, labels, info)


def _slice_axis(labels: list[np.ndarray]) -> int:
    """The painted slice axis of the painted images; the most common one when they differ (ties: first image);
    the last axis when nothing is painted (pre-training)."""
    axes = [painted_slice_axis(lab) for lab in labels if (lab > 0).any()]
    return max(axes, key=axes.count) if axes else 2


def check_warm_start(model: TrainedModel, info: ModelInfo) -> str:
    """How ``model``'s weights can seed a run planned as ``info``: ``"full"`` or ``"partial (new classes)"``."""
    old = model.info
    if old.in_channels != info.in_channels:
        raise InputError(f"The current model takes {old.in_channels} channel(s), this image has {info.in_channels}.")
    if old.spatial_dims != info.spatial_dims or tuple(old.network.features) != tuple(info.network.features):
        raise InputError("The current model has a different network shape (2D/3D or widths); train a new one.")
    if old.network.context != info.network.context:
        raise InputError(
            f"The current model sees {old.network.context} neighbouring slice(s) on each side and this run asks for "
            f"{info.network.context}; keep {old.network.context} to continue from it, or train a new model."
        )
    if tuple(old.network.filters) != tuple(info.network.filters):
        raise InputError(
            f"The current model's filter bank has scales {_scales(old.network.filters)} and this run asks for "
            f"{_scales(info.network.filters)}; keep the model's to continue from it, or train a new model."
        )
    if old.network.norm != info.network.norm:
        raise InputError(
            f"The current model uses {old.network.norm} normalisation and this run asks for {info.network.norm}; "
            f"choose {old.network.norm} to continue from it, or train a new model."
        )
    if old.normalization.mode != info.normalization.mode:
        raise InputError(
            f"The current model normalises intensities as {old.normalization.mode!r} and this run as "
            f"{info.normalization.mode!r}; use the model's normalisation to continue from it, or train a new model."
        )
    return "full" if old.n_classes == info.n_classes else "partial (new classes)"


def _scales(sigmas: tuple[float, ...]) -> str:
    """Filter-bank scales as a user writes them (``1,2,4,8``; ``none`` for no filter bank)."""
    return ",".join(f"{s:g}" for s in sigmas) or "none"
