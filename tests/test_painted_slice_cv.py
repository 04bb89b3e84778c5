"""Leave-one-painted-slice-out folds: each trains on the other painted slices and scores only the held-out one."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

from napari_contrastseg.samples.protocol import paint_slices, painted_slice_indices

_path = Path(__file__).resolve().parents[1] / "benchmarks" / "painted_slice_cv.py"
_spec = importlib.util.spec_from_file_location("painted_slice_cv", _path)
painted_slice_cv = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = painted_slice_cv
_spec.loader.exec_module(painted_slice_cv)


def test_each_fold_holds_out_one_painted_slice_and_scores_only_it() -> None:
    truth = np.random.default_rng(0).integers(1, 4, (10, 12, 20)).astype(np.uint8)
    painted = paint_slices(truth, 3, axis=-1)
    indices = painted_slice_indices(painted, -1)
    folds = painted_slice_cv.folds(painted)
    assert [index for index, _, _ in folds] == indices and len(indices) == 3
    for index, rest, mask in folds:
        others = [i for i in indices if i != index]
        assert not rest[..., index].any()
        assert np.array_equal(rest[..., others], painted[..., others])
        assert mask[..., index].all() and mask.sum() == mask[..., index].size  # the held-out slice, nothing else
