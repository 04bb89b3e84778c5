"""Out-of-core prediction: an image read block by block, labels (and uncertainty) written to zarr block by block."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import torch

from .data import as_channels_first, spatial_shape_of
from .errors import InputError
from .files import atomic_path
from .inference import ProgressCallback, check_model_fits, on_device, predict_normalized
from .model import TrainedModel
from .model_info import ModelInfo
from .normalization import intensity_ranges, normalize
from .zarr_io import geometry_attrs, import_zarr

#: default slab of a 2D network on a volume: about this many voxels (rounded to whole batches of slices)
SLAB_VOXELS = 2**24
#: default block edge, in pixels (2D images) or voxels (3D networks)
BLOCK_EDGE = {2: 2048, 3: 128}
#: chunk edge of the output along the axes a slab spans whole
CHUNK_EDGE = 256

Region = tuple[slice, ...]


def predict_to_zarr(
    model: TrainedModel,
    image,
    out: str | Path,
    *,
    channel_axis: int | None = None,
    block: int | None = None,
    tile_size: int | None = None,
    overlap: float = 0.25,
    batch_size: int = 8,
    device: str | torch.device = "auto",
    uncertainty: bool = True,
    spacing: tuple[float, ...] | None = None,
    affine: np.ndarray | None = None,
    progress: ProgressCallback | None = None,
):
    """Predict ``image`` into a new zarr group at ``out``; returns it, opened read-only.

    The group is written under a temporary name beside ``out`` and renamed when complete (replacing a group
    there only then; callers refuse existing outputs they should not replace).

    ``image``: any array-like with ``shape``, ``dtype`` and NumPy slicing (zarr array, memory map, dask, NumPy),
    spatial shape ``S`` plus an optional channel axis; only one block of it is in memory at a time. The group holds
    ``labels`` (``S`` uint8, class values 1..K) and, if ``uncertainty``, ``uncertainty`` (``S`` float16 normalised
    entropy), with ``spacing`` / ``affine`` / ``class_names`` in the attributes.

    Intensity percentiles come from one streaming pass over the very voxels :func:`~.inference.predict` samples,
    so the normalisation equals the in-memory one. A 2D network on a volume predicts slabs of ``block`` whole
    slices along its slice axis (default: about 16 M voxels in whole batches of ``batch_size`` slices; the labels
    are then bit-identical to :func:`~.inference.predict`), each read with the neighbours its slices' inputs and
    smoothing through the plane need. Otherwise (3D networks, 2D images) cubes of ``block``
    voxels a side (default 128 in 3D, 2048 in 2D) are read with every sliding window that reaches them, placed on
    the whole image's window grid, so results differ from the in-memory ones by float rounding only.
    ``progress(done, total)`` counts slices (slabs) or blocks.
    """
    info = model.info
    spatial = _check(image, channel_axis, info)
    ranges = intensity_ranges(image, channel_axis, info.normalization)
    tile = tile_size or max(info.patch_size)
    if info.spatial_dims == 2 and len(spatial) == 3:
        axis = info.slice_axis if info.slice_axis is not None else 0
        slabs = _slabs(spatial, axis, block or _default_slab(spatial, axis, batch_size))
        reach = info.network.context + int(info.smooths_slices)  # input neighbours, and smoothing's
        plan = [(_with_neighbours(s, axis, reach, spatial[axis]), s) for s in slabs]
        units = [s[axis].stop - s[axis].start for s in slabs]
        chunks = tuple(slabs[0][axis].stop if a == axis else min(n, CHUNK_EDGE) for a, n in enumerate(spatial))
    else:
        edge = block or BLOCK_EDGE[len(spatial)]
        plan, units = _blocks(spatial, edge, tile, overlap), None
        chunks = tuple(min(n, edge) for n in spatial)
    attrs = {**geometry_attrs(spacing, affine), "class_names": list(info.class_names)}
    with atomic_path(out) as store, on_device(model.network, info, device) as (network, dev):
        group = _create_group(store, spatial, chunks, uncertainty, attrs)
        total, done = (sum(units), 0) if units else (len(plan), 0)
        for n, (read, write) in enumerate(plan):
            step = units[n] if units else 1

            def report(inner: int, inner_total: int, done=done, step=step) -> None:
                if progress is not None:
                    progress(done + inner * step // inner_total, total)

            region = np.asarray(image[_with_channel(read, channel_axis, len(image.shape))])
            volume = normalize(as_channels_first(region, channel_axis), info.normalization, ranges)
            halo = (0, 0) if units is None else _halo(read, write, axis)
            result = predict_normalized(
                network,
                volume,
                info,
                tile_size=tile,
                overlap=overlap,
                batch_size=batch_size,
                device=dev,
                probabilities=False,
                progress=report,
                halo=halo,
                forest=model.forest,
            )
            if units is not None:  # the neighbour slices were not predicted
                read = tuple(w if a == axis else r for a, (r, w) in enumerate(zip(read, write, strict=True)))
            inside = tuple(slice(w.start - r.start, w.stop - r.start) for r, w in zip(read, write, strict=True))
            group["labels"][write] = result.labels[inside]
            if uncertainty:
                group["uncertainty"][write] = result.uncertainty[inside]
            done += step
    return import_zarr().open_group(store=str(out), mode="r")


def _check(image, channel_axis: int | None, info: ModelInfo) -> tuple[int, ...]:
    """The spatial shape of ``image``; :class:`InputError` where the model cannot predict it."""
    if not all(hasattr(image, a) for a in ("shape", "dtype", "__getitem__")):
        raise InputError(f"The image must be an array (shape, dtype, slicing), got {type(image).__name__}.")
    dtype = np.dtype(image.dtype)
    if dtype.kind not in "biuf":
        raise InputError(f"The image has data type {dtype}; a real-valued numeric image is needed.")
    ndim = len(image.shape)
    if channel_axis is not None and not -ndim <= channel_axis < ndim:
        raise InputError(f"channel_axis {channel_axis} does not exist in an image with {ndim} axes.")
    spatial = spatial_shape_of(image, channel_axis)
    if len(spatial) not in (2, 3) or min(spatial) < 1:
        raise InputError(f"Only non-empty 2D images and 3D volumes are supported; the image has shape {image.shape}.")
    check_model_fits(info, spatial, 1 if channel_axis is None else image.shape[channel_axis])
    return tuple(int(s) for s in spatial)


def _default_slab(spatial: tuple[int, ...], axis: int, batch_size: int) -> int:
    """Slices per slab: about :data:`SLAB_VOXELS`, in whole batches so that batches match the in-memory ones."""
    per_slice = int(np.prod(spatial)) // spatial[axis]
    return max(batch_size, SLAB_VOXELS // per_slice // batch_size * batch_size)


def _slabs(spatial: tuple[int, ...], axis: int, size: int) -> list[Region]:
    """Consecutive runs of ``size`` whole slices along ``axis``."""
    return [
        tuple(slice(start, min(start + size, n)) if a == axis else slice(0, n) for a, n in enumerate(spatial))
        for start in range(0, spatial[axis], size)
    ]


def _with_neighbours(slab: Region, axis: int, context: int, size: int) -> Region:
    """``slab`` with ``context`` more slices on each side along ``axis`` (within the volume): what it reads."""
    ends = slab[axis]
    grown = slice(max(0, ends.start - context), min(size, ends.stop + context))
    return tuple(grown if a == axis else s for a, s in enumerate(slab))


def _halo(read: Region, write: Region, axis: int) -> tuple[int, int]:
    """Neighbour-only slices before and after the written ones, along ``axis``."""
    return write[axis].start - read[axis].start, read[axis].stop - write[axis].stop


def _blocks(spatial: tuple[int, ...], edge: int, tile: int, overlap: float) -> list[tuple[Region, Region]]:
    """(read, write) regions: cubes of ``edge`` to write, each read with all the windows reaching it."""
    per_axis = []
    for n in spatial:
        starts = window_starts(n, tile, overlap)
        runs = []
        for a in range(0, n, edge):
            b = min(a + edge, n)
            reaching = [s for s in starts if s < b and s + tile > a]
            runs.append((slice(reaching[0], min(reaching[-1] + tile, n)), slice(a, b)))
        per_axis.append(runs)
    return [tuple(zip(*combo, strict=True)) for combo in itertools.product(*per_axis)]


def window_starts(size: int, tile: int, overlap: float) -> list[int]:
    """Where MONAI's sliding windows start along one axis of ``size`` (``monai.data.utils.dense_patch_slices``).

    A region from one of these starts to a window's end (or the image's end) gets the same windows from MONAI, so
    its prediction equals the whole image's there.
    """
    if size <= tile:
        return [0]
    step = max(1, int(tile * (1 - overlap)))
    starts = list(range(0, size - tile, step))
    return [*starts, size - tile]


def _with_channel(region: Region, channel_axis: int | None, ndim: int) -> Region:
    """``region`` over the spatial axes, with the whole channel axis put back in."""
    if channel_axis is None:
        return region
    index = list(region)
    index.insert(channel_axis % ndim, slice(None))
    return tuple(index)


def _create_group(out: str | Path, spatial: tuple[int, ...], chunks: tuple[int, ...], uncertainty: bool, attrs):
    """A new zarr group at ``out`` with ``labels`` (uint8) and optionally ``uncertainty`` (float16) arrays."""
    group = import_zarr().open_group(store=str(out), mode="w")
    group.attrs.update(attrs)
    arrays = [("labels", np.uint8)] + ([("uncertainty", np.float16)] if uncertainty else [])
    for name, dtype in arrays:
        array = group.create_array(name, shape=spatial, dtype=dtype, chunks=chunks, fill_value=0)
        array.attrs.update(attrs)
    return group
