"""The suite report's method selection: labels merged into one method, a rerun replacing the run it repeats."""

from __future__ import annotations

from benchmark_scripts import load
from pytest import approx

report_suite = load("report_suite")


def _run(method: str, seed: int, dice: float, paint: str = "slices:1") -> dict:
    return {"dataset": "task", "paint": paint, "method": method, "seed": seed, "mean_dice": dice}


def test_a_later_label_replaces_the_run_of_the_same_cell_and_seed_only() -> None:
    runs = [_run("rf-features", 0, 0.5), _run("smooth", 0, 0.6), _run("smooth", 1, 0.7), _run("rerun", 1, 0.2),
            _run("other", 0, 0.9)]  # fmt: skip
    chosen = report_suite.select(runs, "rf-features,default=smooth+rerun")
    by = {(r["method"], r["seed"]): r["mean_dice"] for r in chosen}
    assert by == {("rf-features", 0): 0.5, ("default", 0): 0.6, ("default", 1): 0.2}
    assert [r for r in runs if r["method"] == "rerun"][0]["method"] == "rerun"  # the input is not renamed


def test_paintings_are_kept_apart() -> None:
    runs = [_run("smooth", 0, 0.6), _run("rerun", 0, 0.2, paint="scribbles:3")]
    chosen = report_suite.select(runs, "default=smooth+rerun")
    assert sorted((r["paint"], r["mean_dice"]) for r in chosen) == [("scribbles:3", 0.2), ("slices:1", 0.6)]


def test_seeds_keep_only_their_runs_of_every_label() -> None:
    runs = [_run("rf-features", 0, 0.5), _run("rf-features", 2, 0.4), _run("smooth", 2, 0.3), _run("smooth", 1, 0.7)]
    chosen = report_suite.select(runs, seeds="0,1")
    assert sorted((r["method"], r["seed"]) for r in chosen) == [("rf-features", 0), ("smooth", 1)]


def test_a_label_without_a_name_is_taken_whole() -> None:
    runs = [_run("semicontrast+pretrain", 0, 0.6), _run("semicontrast", 0, 0.1), _run("pretrain", 0, 0.2)]
    chosen = report_suite.select(runs, "semicontrast+pretrain")
    assert [(r["method"], r["mean_dice"]) for r in chosen] == [("semicontrast+pretrain", 0.6)]


def test_group_means_count_only_cells_defined_for_every_method() -> None:
    runs = [_run("a", 0, 0.2), _run("b", 0, 0.4), _run("a", 1, 0.4), _run("b", 1, 0.6),
            _run("a", 0, 0.9, paint="scribbles:3"), _run("b", 0, float("nan"), paint="scribbles:3")]  # fmt: skip
    by_paint = report_suite.defined_means(runs, ["a", "b"], lambda r: r["paint"])
    assert {k: dict(v) for k, v in by_paint.items()} == {"slices:1": {"a": [approx(0.3)], "b": [approx(0.5)]}}
    by_seed = report_suite.defined_means(runs, ["a", "b"], lambda r: r["seed"])
    assert {k: dict(v) for k, v in by_seed.items()} == {0: {"a": [0.2], "b": [0.4]}, 1: {"a": [0.4], "b": [0.6]}}
