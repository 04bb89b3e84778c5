"""Leave-one-painted-slice-out folds: each trains on the other painted slices and scores only the held-out one."""

from __future__ import annotations

import numpy as np
import pytest
from benchmark_scripts import load

from napari_contrastseg.samples.protocol import paint_slices, painted_slice_indices

painted_slice_cv = load("painted_slice_cv", register_as="painted_slice_cv")


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


def test_estimates_are_ranked_against_the_blend_on_the_held_out_slice() -> None:
    report = load("report_estimate_cv")
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


def test_saved_probabilities_are_combined_smoothed_and_scored_per_fold(tmp_path) -> None:
    report = load("report_blend_cv")
    sure = np.zeros((3, 2, 4, 4), np.float16)
    sure[:, 0, :, :2], sure[:, 1, :, 2:] = 1, 1  # left half class 1, right half class 2, on all three slices
    unsure = np.full((3, 2, 4, 4), 0.5, np.float16)
    unsure[1, 1] = 0.55  # the held-out slice leans to class 2 everywhere, its neighbours do not lean at all
    truth = np.where(np.arange(4) < 2, 1, 2).repeat(4).reshape(4, 4).T.astype(np.uint8)
    assert np.array_equal(report.combined("confidence", sure, unsure), truth)  # the sure learner wins
    assert np.array_equal(report.combined("forest", sure, unsure), np.full((4, 4), 2))  # smoothed, still leaning
    np.savez_compressed(tmp_path / "t.s.seed3.7.npz", network=sure, forest=unsure)
    np.save(tmp_path / "t.s.seed3.7.truth.npy", truth)
    (row,) = report.fold_scores(tmp_path, "s")
    assert row["task"] == "t" and row["seed"] == 3 and row["network"] == 1.0 and row["forest"] == pytest.approx(2 / 3)
    assert row["sure network"] == 1.0 and row["sure forest"] == np.float32(np.float16(0.55))


def test_a_candidate_is_compared_with_another_stems_runs_of_the_same_seed() -> None:
    report = load("report_paired_cv")
    runs = []
    for stem, offset in (("growth", 0.05), ("growth-base", 0.0)):
        for seed in (0, 1):
            for task, dice in (("a", 0.5), ("b", 0.7)):
                for _ in range(3):  # folds
                    value = dice + offset * (1 if task == "a" else -0.2) + 0.01 * seed
                    runs.append({"label": f"{stem}.seed{seed}+smooth", "dataset": task, "mean_dice": value})
                    runs.append({"label": f"{stem}.seed{seed}", "dataset": task, "mean_dice": 0.0})
    figures = report.report(runs, "growth", "smooth", "smooth", baseline_stem="growth-base")
    assert figures["seeds"] == 2 and figures["d"] == pytest.approx([0.02, 0.02])  # (0.05 - 0.01) / 2 tasks
    assert figures["worst_task"] == pytest.approx(-0.01)
    paired_alone = report.report(runs, "growth", "smooth", "smooth")
    assert paired_alone["d"] == pytest.approx([0.0, 0.0])  # without it: the stem's own variant against itself
