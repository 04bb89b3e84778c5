"""Robust intensity normalisation, configured once and stored with the model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from .config import NormalizationConfig
from .data import as_channels_first, spatial_shape_of
from .errors import InputError

_MAX_SAMPLES = 2_000_000
#: Hounsfield units below which a CT voxel is air (or lung): left out of the ``ct`` percentiles.
AIR_HU = -500.0
#: An image is taken for CT when at least this share of its voxels lies below :data:`AIR_HU`.
CT_AIR_SHARE = 0.05
#: voxels (all channels) read at once while the percentiles of a lazily read image are estimated
_READ_VOXELS = 2**24

Range = tuple[float, float]


def normalize(image: np.ndarray, config: NormalizationConfig, ranges: Sequence[Range] | None = None) -> np.ndarray:
    """Map intensities of ``image`` ``(C, *S)`` to about [0, 1] per channel; returns float32 ``(C, *S)``.

    ``ranges`` (one ``(low, high)`` per channel, from :func:`intensity_ranges` of the whole image) lets a part of
    an image be normalised exactly as the whole would be; by default they are estimated on ``image`` itself.
    """
    ranges = intensity_ranges(image, 0, config) if ranges is None else ranges
    out = np.empty(image.shape, dtype=np.float32)
    for c, (low, high) in enumerate(ranges):
        scale = high - low if high > low else 1.0
        np.subtract(image[c], low, out=out[c], casting="unsafe")
        out[c] /= scale
    return out


def resolve_normalization(image, channel_axis: int | None, config: NormalizationConfig) -> NormalizationConfig:
    """``config`` with ``auto`` replaced by ``ct`` (the image looks like CT in Hounsfield units: at least
    :data:`CT_AIR_SHARE` of the voxels of its first channel below :data:`AIR_HU`, and its 99th percentile above 0)
    or ``percentile`` (anything else: MRI, microscopy, photographs); other modes unchanged."""
    if config.mode != "auto":
        return config
    values = _strided_samples(image, channel_axis)[0][0]
    is_ct = np.mean(values < AIR_HU) >= CT_AIR_SHARE and np.percentile(values, 99) > 0
    return replace(config, mode="ct" if is_ct else "percentile")


def intensity_ranges(image, channel_axis: int | None, config: NormalizationConfig) -> list[Range]:
    """The intensities mapped to 0 and 1, per channel, of any array-like ``image`` (NumPy, memmap, zarr, dask).

    ``ct`` takes the percentiles over the voxels at or above :data:`AIR_HU` (the body); ``auto`` is resolved
    first (:func:`resolve_normalization`). Percentiles use every ``step``-th voxel of each channel in C order,
    ``step = max(1, voxels // 2e6)``, so at most ~4 million samples; the image is read in slabs of about 16 M
    voxels along its first spatial axis, so a lazily stored image is never loaded whole and gives exactly the
    values the whole array in memory would.
    """
    if config.mode == "window":
        if config.window_min is None or config.window_max is None or config.window_max <= config.window_min:
            raise InputError("A fixed intensity window needs window_min < window_max (e.g. -1000 and 1000 for CT).")
        n_channels = 1 if channel_axis is None else image.shape[channel_axis]
        return [(float(config.window_min), float(config.window_max))] * n_channels
    if config.mode == "auto":
        config = resolve_normalization(image, channel_axis, config)
    if config.mode not in ("percentile", "ct"):
        raise InputError(f"Unknown normalisation {config.mode!r}; use auto, percentile, ct or window.")
    samples, lows, highs = _strided_samples(image, channel_axis)
    ranges = []
    for values, full_low, full_high in zip(samples, lows, highs, strict=True):
        if config.mode == "ct":
            body = values[values >= AIR_HU]
            values = body if body.size else values
        low, high = np.percentile(values, [config.low, config.high])
        if high <= low:  # mostly constant image: fall back to the full range
            low, high = full_low, full_high
        ranges.append((float(low), float(high)))
    return ranges


def _strided_samples(image, channel_axis: int | None) -> tuple[list[np.ndarray], list[float], list[float]]:
    """Per channel: the float32 values at flat indices ``0, step, 2 step, ...``, and the channel's min and max."""
    spatial = spatial_shape_of(image, channel_axis)
    axes = [a for a in range(len(image.shape)) if channel_axis is None or a != channel_axis % len(image.shape)]
    row = int(np.prod(spatial[1:], dtype=np.int64))
    size = row * spatial[0]
    step = max(1, size // _MAX_SAMPLES)
    n_channels = image.shape[channel_axis] if channel_axis is not None else 1
    rows = max(1, _READ_VOXELS // max(1, row * n_channels))
    samples: list[list[np.ndarray]] = [[] for _ in range(n_channels)]
    lows, highs = [np.inf] * n_channels, [-np.inf] * n_channels
    for start in range(0, spatial[0], rows):
        stop = min(start + rows, spatial[0])
        where = [slice(None)] * len(image.shape)
        where[axes[0]] = slice(start, stop)
        slab = as_channels_first(np.asarray(image[tuple(where)]), channel_axis)
        first = -(-start * row // step) * step
        picked = np.arange(first, stop * row, step) - start * row
        for c in range(n_channels):
            flat = slab[c].reshape(-1)
            low, high = float(flat.min()), float(flat.max())
            if not (np.isfinite(low) and np.isfinite(high)):
                raise InputError("The image contains NaN or infinite values; replace them (e.g. by 0) first.")
            samples[c].append(flat[picked])
            lows[c], highs[c] = min(lows[c], low), max(highs[c], high)
    return [np.concatenate(s) for s in samples], lows, highs
