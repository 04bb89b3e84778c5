"""Where to paint next: the unpainted slices along an axis that more paint would help most, with their scores.

One function serves the CLI (``contrastseg suggest``), napari's and Slicer's buttons, and the annotator benchmark.
Strategies (:data:`STRATEGIES`):

- ``uncertainty``: the slice's mean normalised entropy of the prediction (what ilastik-style tools show);
- ``distance``: the distance, in slices, to the nearest painted slice (coverage, whatever the model says);
- ``uncertainty-distance``: their product, each divided by its largest value over the candidates, so that an
  uncertain slice right next to a painted one does not win over an uncertain one far away;
- ``layout`` (default): the evenly spaced layout over where the structures are. The structures' extent runs from
  the first to the last slice that the painting gives a class other than background (1) or where the prediction
  has at least :data:`EXTENT_SHARE` of the largest slice's count of such voxels (stray voxels do not stretch it).
  With ``n`` of its slices painted, the pick is the one of the ``n + 1`` evenly spaced slices over the extent (the
  protocol's interior quantiles ``linspace(0, 1, n + 3)[1:-1]`` of the slice range, each rounded to the nearest
  slice) that lies farthest from the painted slices; the uncertainty breaks ties. Painted slices are kept, so the
  painting follows the even layout of its count only as far as they allow (one slice of 31 painted in the middle,
  then 4 picks: 5 slices within 2 of the even 5, where ``coverage``'s are off by up to 5). Where every such slice
  is painted: ``coverage``'s pick; where nothing marks an extent (no class but background painted or predicted):
  ``distance``.
- ``coverage``: the unpainted slice of the same extent farthest from the painted slices and from the slices just
  outside its two ends (counted as painted): the midpoint of the largest gap. Greedy midpoints are evenly spaced
  only when the count of gaps is a power of two (with 5 slices over 31 they leave gaps of 4 and 8 where the even
  layout has 5). The uncertainty breaks ties. Once all of the extent is painted, or where nothing marks an
  extent: ``distance``.

``k > 1`` picks greedily: each pick counts as painted for the distances of the next ones.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from .data import painted_slice_axis
from .errors import InputError

STRATEGIES = ("layout", "coverage", "uncertainty-distance", "uncertainty", "distance")
#: the strategies that need the prediction's labels (the structures' extent)
EXTENT_STRATEGIES = ("layout", "coverage")
DEFAULT_STRATEGY = STRATEGIES[0]
#: A slice belongs to the predicted extent with at least this share of the fullest slice's foreground voxels.
EXTENT_SHARE = 0.01


@dataclass(frozen=True)
class SliceScore:
    """A suggested slice: its ``index`` along ``axis``, the ``score`` it was chosen by, and the parts of it."""

    index: int
    axis: int
    score: float
    uncertainty: float
    distance: int

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("index", "axis", "score", "uncertainty", "distance")}


def suggest_slices(
    model,
    image: np.ndarray | None,
    labels: np.ndarray,
    k: int = 1,
    *,
    axis: int | None = None,
    strategy: str = DEFAULT_STRATEGY,
    uncertainty: np.ndarray | None = None,
    predicted: np.ndarray | None = None,
    channel_axis: int | None = None,
    device: str = "auto",
) -> list[SliceScore]:
    """The ``k`` best unpainted slices of ``labels`` (a 3D painting) along ``axis``, best first.

    Args:
        model: a :class:`~.model.TrainedModel` (its prediction of ``image`` is computed unless ``uncertainty`` and,
            for ``layout`` and ``coverage``, ``predicted`` are given; its slice axis is the default ``axis``).
        image: the image the painting belongs to (may be None when the prediction's maps are given).
        labels: ``S`` painting, 0 = unpainted.
        k: how many slices.
        axis: the slicing axis (default: the model's slice axis, else the painted axis).
        strategy: one of :data:`STRATEGIES`.
        uncertainty: ``S`` normalised entropy in [0, 1], e.g. from an earlier whole-image prediction.
        predicted: ``S`` predicted classes 1..K (1 = background) of that prediction.
        channel_axis, device: as for :meth:`~.model.TrainedModel.predict`.

    Returns:
        Up to ``k`` :class:`SliceScore` (fewer when fewer slices are unpainted).
    """
    labels = np.asarray(labels)
    if labels.ndim != 3:
        raise InputError("Slices can be suggested in 3D volumes only; on a 2D image paint where it is most uncertain.")
    if strategy not in STRATEGIES:
        raise InputError(f"Unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}.")
    if k < 1:
        raise InputError(f"k must be at least 1, got {k}.")
    if axis is None:
        info = getattr(model, "info", None)
        axis = info.slice_axis if info is not None and info.slice_axis is not None else painted_slice_axis(labels)
    axis %= 3
    if (strategy != "distance" and uncertainty is None) or (strategy in EXTENT_STRATEGIES and predicted is None):
        if image is None:
            raise InputError("Give the image (or its prediction's uncertainty and labels) to score slices.")
        prediction = model.predict(image, channel_axis, device=device, probabilities=False)
        uncertainty = prediction.uncertainty if uncertainty is None else uncertainty
        predicted = prediction.labels if predicted is None else predicted
    for name, volume in (("uncertainty map", uncertainty), ("prediction", predicted)):
        if volume is not None and volume.shape != labels.shape:
            raise InputError(f"The {name} {volume.shape} and the painting {labels.shape} differ in shape.")
    other = tuple(a for a in range(3) if a != axis)
    painted = (labels > 0).any(axis=other)
    means = np.zeros(labels.shape[axis])
    if uncertainty is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices (not predicted yet)
            means = np.nan_to_num(np.nanmean(uncertainty, axis=other), nan=0.0)
    extent = _foreground_extent(labels, predicted, other) if strategy in EXTENT_STRATEGIES else None
    picks: list[SliceScore] = []
    for _ in range(k):
        candidates = np.flatnonzero(~painted)
        if not candidates.size:
            break
        distance = _distance_to_painted(painted)
        gaps = distance
        if extent is not None:
            targets = _even_layout(painted, extent) if strategy == "layout" else np.zeros(0, int)
            inside = candidates[(candidates >= extent[0]) & (candidates <= extent[1])]
            if targets.size:
                candidates = targets
            elif inside.size:  # coverage's pick (and layout's where its layout is all painted)
                candidates, gaps = inside, _distance_to_painted(painted, extent)
        score = _score(strategy, means, gaps, candidates)
        best = int(candidates[np.argmax(score[candidates])])
        picks.append(SliceScore(best, axis, float(score[best]), float(means[best]), int(distance[best])))
        painted[best] = True
    return picks


def _foreground_extent(labels: np.ndarray, predicted: np.ndarray, other: tuple[int, int]) -> tuple[int, int] | None:
    """The first and last slice where the painting has a class other than background (1), or the prediction at
    least :data:`EXTENT_SHARE` of the fullest slice's count of them."""
    counts = (predicted > 1).sum(axis=other)
    present = np.flatnonzero((labels > 1).any(axis=other) | ((counts > 0) & (counts >= EXTENT_SHARE * counts.max())))
    return (int(present[0]), int(present[-1])) if present.size else None


def _even_layout(painted: np.ndarray, extent: tuple[int, int]) -> np.ndarray:
    """The unpainted ones of the ``n + 1`` evenly spaced slices over ``extent`` (interior quantiles ``linspace(0, 1,
    n + 3)[1:-1]`` of its slice range, rounded to the nearest slice), ``n`` the painted slices inside it."""
    first, last = extent
    n = int(painted[first : last + 1].sum())
    layout = np.unique(np.round(first + np.linspace(0, 1, n + 3)[1:-1] * (last - first)).astype(int))
    return layout[~painted[layout]]


def _distance_to_painted(painted: np.ndarray, extent: tuple[int, int] | None = None) -> np.ndarray:
    """Per slice: slices to the nearest painted one (the axis length where nothing is painted); with ``extent``,
    the slices just outside it count as painted."""
    index = np.arange(painted.size)
    marked = np.flatnonzero(painted)
    if extent is not None:
        marked = np.concatenate([marked, [extent[0] - 1, extent[1] + 1]])
    if not marked.size:
        return np.full(painted.size, painted.size)
    return np.abs(index[:, None] - marked[None]).min(1)


def _score(strategy: str, uncertainty: np.ndarray, distance: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    u = uncertainty / max(float(uncertainty[candidates].max()), 1e-12)
    d = distance / max(float(distance[candidates].max()), 1)
    if strategy == "uncertainty":
        return u + 1e-6 * d  # ties (e.g. all zero): the farther slice
    if strategy in ("distance", *EXTENT_STRATEGIES):
        return d + 1e-6 * u
    return u * d
