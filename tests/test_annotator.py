"""The simulated annotator's reuse of earlier evenly spaced runs (``benchmarks/annotator.py --baselines``)."""

from __future__ import annotations

import pytest
from benchmark_scripts import load

annotator = load("annotator")


def _point(dataset, seed, strategy, k, dice):
    return {"dataset": dataset, "seed": seed, "strategy": strategy, "round": k, "painted": k + 1,
            "train_seconds": 60.0, "mean_dice": dice, "slice": None}  # fmt: skip


def test_baselines_are_the_tasks_evenly_spaced_runs_and_a_missing_one_stops_the_run():
    points = [_point("a", 0, "even", k, 0.1 * k) for k in (1, 2)] + [_point("a", 0, "even-10", 0, 0.9)]
    points += [_point("a", 1, "even", 1, 0.5), _point("a", 0, "tool:coverage", 1, 0.7), _point("b", 0, "even", 1, 0)]
    found = annotator.reused_baseline(points, "a", 0, rounds=2)
    assert sorted(found) == [("even", 1), ("even", 2), ("even-10", 0)]
    assert found[("even", 2)]["mean_dice"] == pytest.approx(0.2)
    with pytest.raises(SystemExit, match="even round 3 of a seed 0"):
        annotator.reused_baseline(points, "a", 0, rounds=3)
    with pytest.raises(SystemExit, match="even round 2, even-10 round 0 of a seed 1"):
        annotator.reused_baseline(points, "a", 1, rounds=2)
