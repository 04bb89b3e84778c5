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


def _report_estimate_cv():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "report_estimate_cv.py"
    spec = importlib.util.spec_from_file_location("report_estimate_cv", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_estimates_are_ranked_against_the_blend_on_the_held_out_slice() -> None:
    report = _report_estimate_cv()
    runs = []
    for fold, truth in enumerate([0.2, 0.5, 0.9, 0.7]):
        runs.append({"label": "e.seed0+blend", "dataset": "t", "held_out_slice": fold, "mean_dice": truth})
        runs.append({"label": "e.seed0+forest", "dataset": "t", "held_out_slice": fold, "mean_dice": 0.0})
        runs.append(
            {
                "label": "e.seed0",
                "dataset": "t",
                "held_out_slice": fold,
                "mean_dice": 0.0,
                "estimate": {"mean": 1 - truth},  # ranks backwards
                "returned_estimate": {"held_out_mean": truth, "agreement_mean": None, "min_mean": truth / 2},
            }
        )
    rows = report.fold_estimates(runs, "e")
    assert [r["truth"] for r in rows] == [0.2, 0.5, 0.9, 0.7]
    rho = report.correlations(rows)
    assert rho["network"] == -1 and rho["held-out-blend"] == 1 and rho["min"] == 1
    assert np.isnan(rho["agreement"])  # undefined in every fold
