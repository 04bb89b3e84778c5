"""Robust intensity normalisation, configured once and stored with the model."""

from __future__ import annotations

import numpy as np

from .config import NormalizationConfig
from .errors import InputError

_MAX_SAMPLES = 2_000_000


def normalize(image: np.ndarray, config: NormalizationConfig) -> np.ndarray:
    """Map intensities of ``image`` ``(C, *S)`` to about [0, 1] per channel; returns float32 ``(C, *S)``.

    Percentiles are estimated on at most ~2 million evenly strided voxels per channel so that large volumes
    stay cheap.
    """
    out = np.empty(image.shape, dtype=np.float32)
    for c, channel in enumerate(image):
        low, high = intensity_range(channel, config)
        scale = high - low if high > low else 1.0
        np.subtract(channel, low, out=out[c], casting="unsafe")
        out[c] /= scale
    return out


def intensity_range(channel: np.ndarray, config: NormalizationConfig) -> tuple[float, float]:
    """The intensities mapped to 0 and 1 for one channel."""
    if config.mode == "window":
        if config.window_min is None or config.window_max is None or config.window_max <= config.window_min:
            raise InputError("A fixed intensity window needs window_min < window_max (e.g. -1000 and 1000 for CT).")
        return float(config.window_min), float(config.window_max)
    if config.mode != "percentile":
        raise InputError(f"Unknown normalisation {config.mode!r}; use 'percentile' or 'window'.")
    flat = channel.reshape(-1)
    step = max(1, flat.size // _MAX_SAMPLES)
    low, high = np.percentile(flat[::step], [config.low, config.high])
    if high <= low:  # mostly constant image: fall back to the full range
        low, high = float(flat.min()), float(flat.max())
    return float(low), float(high)
