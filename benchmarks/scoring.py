"""The protocol's painting and scoring (shared/docs/benchmark-protocol.md), shared by the benchmark scripts."""

from __future__ import annotations

import numpy as np

from napari_contrastseg.core.metrics import dice_per_class, hd95_per_class
from napari_contrastseg.samples.protocol import (
    paint_scribbles,
    paint_slices,
    paint_tile,
    painted_slice_indices,
    painted_tile,
)


def paint(truth: np.ndarray, spec: str, seed: int, axis: int | None = -1) -> np.ndarray:
    """``slices:N`` or ``scribbles:N`` along ``axis``, as the protocol defines them; ``axis=None``: a 2D image,
    whose painting is its top-left tile, whole (``slices:1``) or scribbled (``scribbles:N``, whatever ``N``)."""
    kind, n = spec.split(":")
    if kind not in ("slices", "scribbles"):
        raise ValueError(f"painting must be slices:N or scribbles:N, not {spec!r}")
    if axis is None:
        if kind == "slices" and int(n) != 1:
            raise ValueError(f"a 2D image is painted in one tile: use slices:1, not {spec!r}")
        return paint_tile(truth, kind == "scribbles", seed)
    return paint_slices(truth, int(n), axis) if kind == "slices" else paint_scribbles(truth, int(n), axis, seed)


def score(pred: np.ndarray, truth: np.ndarray, mask: np.ndarray, spacing, with_hd95: bool) -> dict:
    """Per foreground class: Dice over the ``mask`` voxels (and HD95); the mean over classes present there.

    A class with no true voxel in ``mask`` has no Dice (NaN, left out of the mean); its predicted voxels there are
    reported as ``false_positive_voxels`` instead, next to ``true_voxels`` and ``predicted_voxels`` of every class.
    """
    classes = list(range(2, int(truth.max()) + 1))
    dice = dice_per_class(pred, truth, classes, mask)
    present = [d for d in dice.values() if np.isfinite(d)]
    out = {
        "dice": {str(c): d for c, d in dice.items()},
        "mean_dice": float(np.mean(present)) if present else float("nan"),
        "true_voxels": {str(c): int(((truth == c) & mask).sum()) for c in classes},
        "predicted_voxels": {str(c): int(((pred == c) & mask).sum()) for c in classes},
    }
    out["false_positive_voxels"] = {c: n for c, n in out["predicted_voxels"].items() if not out["true_voxels"][c]}
    if with_hd95:
        hd = hd95_per_class(pred, truth, classes, mask, spacing)
        out["hd95"] = {str(c): h for c, h in hd.items()}
        finite = [h for h in hd.values() if np.isfinite(h)]
        out["mean_hd95"] = float(np.mean(finite)) if finite else float("nan")
    return out


def painted_slice_volumes(pred: np.ndarray, painted: np.ndarray, axis: int | None) -> dict[str, list[int]]:
    """Per class: ``[predicted, painted]`` voxels on the painted slices (a 2D image: in its painted tile; for
    whole-slice paintings: how far the predicted volume of each class is from the painting, e.g. a rare class
    flooded or missed)."""
    if axis is None:
        tile = painted_tile(painted.shape)
        p, t = pred[tile], painted[tile]
    else:
        index = painted_slice_indices(painted, axis)
        p, t = np.take(pred, index, axis=axis), np.take(painted, index, axis=axis)
    return {str(c): [int((p == c).sum()), int((t == c).sum())] for c in range(2, int(painted.max()) + 1)}
