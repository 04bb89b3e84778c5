"""Dense prediction of a whole 2D image or 3D volume with MONAI sliding-window inference."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from monai.inferers import sliding_window_inference

from .data import as_channels_first, channel_axis_for, check_image, spatial_shape_of
from .device import autocast, release_memory, select_device
from .errors import InputError
from .forest import PixelForest
from .model_info import ModelInfo
from .network import channels_last, fold_batch_norm
from .normalization import normalize

ProgressCallback = Callable[[int, int], None]


@dataclass
class Prediction:
    """``labels``: ``S`` uint8 in the user's class values 1..K; ``uncertainty``: ``S`` float32 normalised entropy
    in [0, 1]; ``probabilities``: ``(K, *S)`` float32, or None when not requested."""

    labels: np.ndarray
    uncertainty: np.ndarray
    probabilities: np.ndarray | None


def predict(
    network: torch.nn.Module,
    info: ModelInfo,
    image: np.ndarray,
    channel_axis: int | None = None,
    *,
    tile_size: int | None = None,
    overlap: float = 0.25,
    batch_size: int = 8,
    device: str | torch.device = "auto",
    probabilities: bool = True,
    progress: ProgressCallback | None = None,
    forest: PixelForest | None = None,
) -> Prediction:
    """Predict every voxel of ``image`` (spatial shape ``S``, optional channel axis) with ``network`` and its
    metadata ``info`` (a :class:`~.model.TrainedModel`'s parts; ``TrainedModel.predict`` calls this).

    A 2D network predicts a 3D volume slice by slice along the axis it was trained on (axis 0 for a network
    trained on 2D images), each slice with its ``info.network.context`` neighbours on either side as extra
    channels; ``batch_size`` slices (2D) or tiles (3D) go through the network at once.
    ``tile_size`` defaults to the training crop size; ``overlap`` is the tiles' fractional overlap. ``forest``:
    the model's pixel forest, blended in with ``info.forest_weight`` (2D networks).
    """
    if channel_axis is None and image.ndim == info.image_ndim + 1:
        channel_axis = channel_axis_for(image.shape, None, info.in_channels)  # e.g. an RGB picture, channels last
    check_image(image, channel_axis)
    volume = normalize(as_channels_first(image, channel_axis), info.normalization)
    check_model_fits(info, spatial_shape_of(image, channel_axis), volume.shape[0])
    with on_device(network, info, device) as (network, dev):
        return predict_normalized(
            network,
            volume,
            info,
            tile_size=tile_size,
            overlap=overlap,
            batch_size=batch_size,
            device=dev,
            probabilities=probabilities,
            progress=progress,
            forest=forest,
        )


def check_model_fits(info: ModelInfo, spatial: tuple[int, ...], channels: int) -> None:
    """Raise :class:`InputError` unless an image of spatial shape ``spatial`` with ``channels`` suits the model."""
    if channels != info.in_channels:
        raise InputError(
            f"The model expects {info.in_channels} channel(s) but the image has {channels}; "
            "set the channel axis, or use a model trained on images like this one."
        )
    if info.spatial_dims == 3 and len(spatial) != 3:
        raise InputError("This model was trained on 3D patches and needs a 3D volume.")


@contextmanager
def on_device(
    network: torch.nn.Module, info: ModelInfo, device: str | torch.device
) -> Iterator[tuple[torch.nn.Module, torch.device]]:
    """``network`` on ``device`` in eval mode; back on the CPU, accelerator cache freed, afterwards."""
    dev = torch.device(device) if isinstance(device, torch.device) else select_device(device)
    try:
        yield network.to(dev, memory_format=channels_last(info.spatial_dims)).eval(), dev
    finally:
        network.to("cpu")
        release_memory(dev)


def predict_normalized(
    network: torch.nn.Module,
    volume: np.ndarray,
    info: ModelInfo,
    *,
    tile_size: int | None = None,
    overlap: float = 0.25,
    batch_size: int = 8,
    device: torch.device,
    probabilities: bool = True,
    progress: ProgressCallback | None = None,
    halo: tuple[int, int] = (0, 0),
    forest: PixelForest | None = None,
) -> Prediction:
    """Predict a normalised ``(C, *S)`` array with ``network`` already on ``device`` and in eval mode.

    ``halo``: for a 2D network on a volume, how many slices at the start and at the end of the slice axis are
    there only as neighbours of the others (out-of-core slabs): they are not in the result, and only the one
    beside the result on each side is predicted, where the model smooths through the plane
    (:attr:`ModelInfo.smooths_slices`). ``forest``: as for :func:`predict`.
    """
    tile = tile_size or max(info.patch_size)
    m = info.network.min_size
    if tile < m or tile % m:
        raise InputError(f"tile_size must be a multiple of {m} (the network's pooling steps), got {tile}.")
    network = fold_batch_norm(network)
    blend = Blend(forest, info.forest_weight) if forest is not None and info.spatial_dims == 2 else None
    if info.spatial_dims == 2 and volume.ndim == 4:
        axis = info.slice_axis if info.slice_axis is not None else 0
        stack = np.moveaxis(volume, axis + 1, 0)  # (Z, C, H, W)
        spare = (min(1, halo[0]), min(1, halo[1])) if info.smooths_slices else (0, 0)
        inputs = SliceInputs(stack, info.network.context, (halo[0] - spare[0], halo[1] - spare[1]))
        result = _predict_stack(network, inputs, tile, overlap, batch_size, device, probabilities, progress, info,
                                blend, info.smooths_slices, spare)  # fmt: skip
        return _move_axis_back(result, axis)
    inputs = SliceInputs(volume[None], info.network.context)  # 0 but for a 2D image under a volume's model
    result = _predict_stack(network, inputs, tile, overlap, batch_size, device, probabilities, progress, info, blend)
    probs = None if result.probabilities is None else result.probabilities[:, 0]
    return Prediction(result.labels[0], result.uncertainty[0], probs)


class SliceInputs:
    """The network inputs of a stack ``(Z, C, *s)``: slice ``z`` with its ``context`` neighbours on each side as
    channels ``(C * (2 context + 1), *s)``, neighbour-major (``z - context`` first), edge slices repeated.

    ``halo`` slices at each end are neighbours only: ``len`` and indices count the other slices. ``picked``: only
    these slice indices (of the whole stack) are predicted, in this order; indices count them.
    """

    def __init__(self, stack: np.ndarray, context: int, halo: tuple[int, int] = (0, 0),
                 picked: np.ndarray | None = None) -> None:  # fmt: skip
        self.stack, self.context = stack, context
        self.picked = np.arange(halo[0], stack.shape[0] - halo[1]) if picked is None else np.asarray(picked, int)
        self.count = len(self.picked)

    def __len__(self) -> int:
        return self.count

    @property
    def spatial(self) -> tuple[int, ...]:
        return self.stack.shape[2:]

    def batch(self, start: int, stop: int) -> np.ndarray:
        """Inputs of slices ``start:stop`` (of the predicted ones): ``(stop - start, C', *s)``."""
        z = self.picked[start:stop]
        if not self.context:
            return self.stack[z]
        offsets = np.arange(-self.context, self.context + 1)
        picked = self.stack[np.clip(z[:, None] + offsets, 0, self.stack.shape[0] - 1)]  # (n, 2k+1, C, *s)
        return np.ascontiguousarray(picked.reshape(len(z), -1, *self.spatial))

    def slices(self, start: int, stop: int) -> np.ndarray:
        """Slices ``start:stop`` (of the predicted ones) without their neighbours: ``(stop - start, C, *s)``."""
        return self.stack[self.picked[start:stop]]


def slice_probabilities(network: torch.nn.Module, stack: np.ndarray, info: ModelInfo, picked: np.ndarray,
                        device: torch.device, batch_size: int = 8) -> np.ndarray:  # fmt: skip
    """``(K, n, *s)`` class probabilities of a 2D ``network`` alone (no forest; an eval-mode copy) for the slices
    ``picked`` (n indices) of a normalised ``(Z, C, *s)`` stack, each with its context neighbours, tiled as
    :func:`predict` tiles."""
    inputs = SliceInputs(stack, info.network.context, picked=picked)
    tile = max(info.patch_size)
    folded = fold_batch_norm(network)
    return _predict_stack(folded, inputs, tile, 0.25, batch_size, device, True, None, info).probabilities


@dataclass
class Blend:
    """A pixel forest's probabilities mixed into the network's: ``(1 - weight) * network + weight * forest``."""

    forest: PixelForest
    weight: float

    def __call__(self, p: torch.Tensor, slices: np.ndarray) -> torch.Tensor:
        """``p`` ``(N, K, *s)``, the network's probabilities of ``slices`` ``(N, C, *s)``, blended."""
        trees = np.stack([self.forest.probabilities(s, p.shape[1]) for s in slices])
        return (1 - self.weight) * p + self.weight * torch.from_numpy(trees).to(p.device)


def _predict_stack(network, inputs, tile, overlap, batch_size, dev, probabilities, progress, info, blend=None,
                   smooth=False, spare=(0, 0)) -> Prediction:  # fmt: skip
    """Predict :class:`SliceInputs` of N 2D slices, or of one image (N = 1); results keep the N axis. ``blend``:
    a :class:`Blend` applied to each batch's probabilities (2D networks). ``smooth``: the N slices are consecutive
    and their probabilities are smoothed through the plane (:func:`smooth_through_plane`); ``spare``: how many of
    the first and last of them are predicted only as neighbours in that smoothing, and left out of the result."""
    n, k = len(inputs) - spare[0] - spare[1], info.n_classes
    spatial = inputs.spatial
    labels = np.empty((n, *spatial), np.uint8)
    uncertainty = np.empty((n, *spatial), np.float32)
    probs = np.empty((k, n, *spatial), np.float32) if probabilities else None
    log_k = math.log(k) if k > 1 else 1.0
    batches = _probability_batches(network, inputs, tile, overlap, batch_size, dev, info, blend, spare[0])
    start = -spare[0]  # where the next batch's first slice goes in the result
    with torch.inference_mode(), autocast(dev, enabled=True):
        for p in smooth_through_plane(batches) if smooth else batches:
            lo, hi = max(start, 0), min(start + len(p), n)
            p, start = p[lo - start : hi - start], start + len(p)
            entropy = -(p * torch.log(p.clamp_min(1e-8))).sum(1) / log_k
            best = p.max(1).indices  # not argmax: much faster over dim 1 on CPUs; ties also go to the first class
            labels[lo:hi] = (best + 1).to(torch.uint8).cpu().numpy()
            uncertainty[lo:hi] = entropy.cpu().numpy()
            if probs is not None:
                probs[:, lo:hi] = p.transpose(0, 1).cpu().numpy()
            if progress is not None and hi > lo:
                progress(hi, n)
    return Prediction(labels, uncertainty, probs)


def _probability_batches(network, inputs, tile, overlap, batch_size, dev, info, blend, first: int = 0
                         ) -> Iterator[torch.Tensor]:  # fmt: skip
    """Class probabilities ``(b, K, *s)`` of consecutive batches of :class:`SliceInputs` (``blend`` applied). The
    ``first`` slices (if any) form a batch of their own, so that the others are batched as they would be without
    them (out-of-core slabs then batch their slices as the whole volume does)."""
    n = len(inputs)
    chunk = batch_size if info.spatial_dims == 2 else 1
    roi = (tile,) * info.spatial_dims
    starts = ([0] if first else []) + list(range(first, n, chunk))
    for start, stop in zip(starts, [*starts[1:], n], strict=True):
        x = torch.from_numpy(inputs.batch(start, stop)).to(dev)
        logits = sliding_window_inference(
            x,
            roi,
            sw_batch_size=batch_size,
            predictor=lambda t: network(t).logits,
            overlap=overlap,
            mode="gaussian",
            padding_mode="replicate",
        )
        p = torch.softmax(logits.float(), dim=1)
        yield p if blend is None else blend(p, inputs.slices(start, stop))


def smooth_through_plane(batches: Iterable[torch.Tensor]) -> Iterator[torch.Tensor]:
    """``(p[z-1] + 2 p[z] + p[z+1]) / 4`` along the slices of a stream of batches ``(b, K, *s)`` of consecutive
    slices (the first and last slices stand in for their missing neighbour). Each slice is given out once its next
    neighbour has come in, so the batches given out lag one slice behind those taken in; every slice comes out."""
    before = last = None  # the slices before the last one taken in, and that last one (not yet given out)
    for batch in batches:
        run = batch if last is None else torch.cat([last, batch])
        if len(run) < 2:
            last = run
            continue
        padded = torch.cat([run[:1] if before is None else before, run])
        yield (padded[:-2] + 2 * padded[1:-1] + padded[2:]) / 4
        before, last = run[-2:-1], run[-1:]
    if last is not None:
        yield ((last if before is None else before) + 3 * last) / 4


def _move_axis_back(result: Prediction, axis: int) -> Prediction:
    """Undo the slice-axis move of a slice-wise prediction."""

    def back(a: np.ndarray, src: int) -> np.ndarray:
        return np.ascontiguousarray(np.moveaxis(a, src, axis + src))

    probs = None if result.probabilities is None else back(result.probabilities, 1)
    return Prediction(back(result.labels, 0), back(result.uncertainty, 0), probs)
