"""Simulated painting of the benchmark protocol (docs: benchmark-protocol.md).

Ground truth is given in *painted-value space*: ``1`` = background, ``2..K`` =
foreground classes. The outputs use the same values, with ``0`` = unpainted.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

#: Side of the square stroke stamped around each scribble centre.
SCRIBBLE_SQUARE = 5
#: Erosion radius (pixels, 2D, per slice) applied before choosing centres.
SCRIBBLE_EROSION = 2
#: One scribble centre per this many pixels of the eroded class region.
SCRIBBLE_DENSITY = 200
#: 2D images: the painting lies in the top-left tile whose sides are this fraction of the image's.
TILE_FRACTION = 4


def _out_dtype(ground_truth: np.ndarray) -> type[np.unsignedinteger]:
    """Smallest of uint8/uint16 that holds every label value."""
    top = int(ground_truth.max()) if ground_truth.size else 0
    if top < 0 or top > np.iinfo(np.uint16).max:
        raise ValueError(f"label values must lie in 0..65535, got max {top}")
    return np.uint8 if top <= np.iinfo(np.uint8).max else np.uint16


def foreground_slices(ground_truth: np.ndarray, axis: int = -1) -> np.ndarray:
    """Sorted indices of slices along ``axis`` that contain a foreground class (value >= 2)."""
    other = tuple(i for i in range(ground_truth.ndim) if i != axis % ground_truth.ndim)
    return np.flatnonzero(np.any(ground_truth >= 2, axis=other))


def choose_slices(ground_truth: np.ndarray, n: int, axis: int = -1) -> list[int]:
    """The ``n`` protocol slices: quantiles ``linspace(0, 1, n + 2)[1:-1]`` of the foreground slices."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    candidates = foreground_slices(ground_truth, axis)
    if candidates.size == 0:
        raise ValueError("ground truth has no foreground class (values >= 2)")
    quantiles = np.linspace(0.0, 1.0, n + 2)[1:-1]
    picks = [int(candidates[round(float(q) * (candidates.size - 1))]) for q in quantiles]
    return sorted(set(picks))


def paint_slices(ground_truth: np.ndarray, n: int, axis: int = -1) -> np.ndarray:
    """Paint ``n`` protocol slices completely with their ground-truth values; 0 elsewhere."""
    painted = np.zeros(ground_truth.shape, dtype=_out_dtype(ground_truth))
    for index in choose_slices(ground_truth, n, axis):
        sl = _slice_at(ground_truth.ndim, axis, index)
        painted[sl] = ground_truth[sl]
    return painted


def paint_scribbles(ground_truth: np.ndarray, n: int, axis: int = -1, seed: int = 0) -> np.ndarray:
    """Sparse strokes on the protocol slices: 5x5 squares clipped to each class region.

    For every class on a chosen slice (background included), ``max(1, round(m / 200))``
    centres are drawn without replacement from the ``m`` pixels of the class region
    eroded by 2 (falling back to the un-eroded region when erosion empties it).
    """
    painted = np.zeros(ground_truth.shape, dtype=_out_dtype(ground_truth))
    rng = np.random.default_rng(seed)
    for index in choose_slices(ground_truth, n, axis):
        sl = _slice_at(ground_truth.ndim, axis, index)
        painted[sl] = _scribble_plane(np.asarray(ground_truth[sl]), rng).astype(painted.dtype)
    return painted


def painted_tile(shape: tuple[int, ...]) -> tuple[slice, ...]:
    """A 2D image's protocol tile: the top-left quarter of each side (at least one pixel)."""
    return tuple(slice(0, max(1, size // TILE_FRACTION)) for size in shape)


def paint_tile(ground_truth: np.ndarray, scribbles: bool = False, seed: int = 0) -> np.ndarray:
    """A 2D image's protocol painting: the tile (:func:`painted_tile`) painted completely, or with ``scribbles``
    only the strokes of :func:`paint_scribbles` inside it; 0 elsewhere."""
    if ground_truth.ndim != 2:
        raise ValueError(f"the tile painting is for 2D images, got {ground_truth.ndim} dimensions")
    tile = painted_tile(ground_truth.shape)
    if not (ground_truth[tile] >= 2).any():
        raise ValueError("the tile holds no foreground class (values >= 2)")
    painted = np.zeros(ground_truth.shape, dtype=_out_dtype(ground_truth))
    plane = np.asarray(ground_truth[tile])
    painted[tile] = _scribble_plane(plane, np.random.default_rng(seed)) if scribbles else plane
    return painted


def painted_slice_indices(painted: np.ndarray, axis: int = -1) -> list[int]:
    """Indices of slices along ``axis`` that contain at least one painted voxel."""
    other = tuple(i for i in range(painted.ndim) if i != axis % painted.ndim)
    return [int(i) for i in np.flatnonzero(np.any(painted > 0, axis=other))]


def unpainted_mask(painted: np.ndarray, axis: int | None = -1) -> np.ndarray:
    """Boolean mask, True on every voxel of slices that contain no painted voxel (the scoring region); with
    ``axis=None`` (a 2D image painted in its tile), True outside the tile."""
    if axis is None:
        mask = np.ones(painted.shape, dtype=bool)
        mask[painted_tile(painted.shape)] = False
        return mask
    axis = axis % painted.ndim
    other = tuple(i for i in range(painted.ndim) if i != axis)
    keep = ~np.any(painted > 0, axis=other, keepdims=True)
    return np.broadcast_to(keep, painted.shape).copy()


def _slice_at(ndim: int, axis: int, index: int) -> tuple[slice | int, ...]:
    """Index tuple selecting slice ``index`` along ``axis``."""
    sl: list[slice | int] = [slice(None)] * ndim
    sl[axis % ndim] = index
    return tuple(sl)


def _scribble_plane(plane: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Scribbles for one slice (any ndim; erosion and squares act on all its axes)."""
    out = np.zeros(plane.shape, dtype=np.int64)
    disk = _disk(SCRIBBLE_EROSION, plane.ndim)
    half = SCRIBBLE_SQUARE // 2
    for value in np.unique(plane):
        if value < 1:
            continue
        region = plane == value
        eroded = ndimage.binary_erosion(region, structure=disk)
        pool = np.argwhere(eroded if eroded.any() else region)
        count = min(len(pool), max(1, round(len(pool) / SCRIBBLE_DENSITY)))
        centres = pool[rng.choice(len(pool), size=count, replace=False)]
        stamp = np.zeros(plane.shape, dtype=bool)
        for centre in centres:
            box = tuple(slice(max(c - half, 0), c + half + 1) for c in centre)
            stamp[box] = True
        out[stamp & region] = value
    return out


def _disk(radius: int, ndim: int) -> np.ndarray:
    """Euclidean ball structuring element of the given radius."""
    grid = np.indices((2 * radius + 1,) * ndim) - radius
    return (grid**2).sum(axis=0) <= radius**2
