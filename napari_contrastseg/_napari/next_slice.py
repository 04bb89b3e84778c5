"""Where to paint next: the unpainted slice on which the model is least certain (pure NumPy)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SliceSuggestion:
    index: int
    mean_uncertainty: float
    unpainted_slices: int


def painted_slices(labels: np.ndarray, axis: int) -> np.ndarray:
    """Boolean per slice along ``axis``: True where any voxel is painted."""
    other = tuple(a for a in range(labels.ndim) if a != axis)
    return np.asarray(labels > 0).any(axis=other)


def suggest_slice(uncertainty: np.ndarray, labels: np.ndarray, axis: int) -> SliceSuggestion | None:
    """The unpainted slice along ``axis`` with the highest mean uncertainty, or None if every slice is painted.

    NaN voxels (not predicted yet) are ignored; slices with no value at all are skipped.
    """
    if uncertainty.shape != labels.shape:
        raise ValueError(f"uncertainty {uncertainty.shape} and labels {labels.shape} differ in shape")
    other = tuple(a for a in range(labels.ndim) if a != axis)
    candidates = ~painted_slices(labels, axis)
    if not candidates.any():
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices
        scores = np.nanmean(uncertainty, axis=other)
    scores = np.where(candidates & np.isfinite(scores), scores, -np.inf)
    index = int(np.argmax(scores))
    if not np.isfinite(scores[index]):
        return None
    return SliceSuggestion(index, float(scores[index]), int(candidates.sum()))
