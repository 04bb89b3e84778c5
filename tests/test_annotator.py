"""The simulated annotator's reuse of earlier evenly spaced runs (``benchmarks/annotator.py --baselines``)."""

from __future__ import annotations

import json

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


report_annotator = load("report_annotator")


def _walk(dataset, seed, strategy, dice):
    return [_point(dataset, seed, strategy, k, d) | {"painted": k + 1} for k, d in enumerate(dice)]


def test_report_compares_shared_pairs_counts_unreached_both_ways_and_names_worse_tasks(tmp_path, capsys):
    points = []
    for seed in (0, 1):
        points += [_point("deep", seed, "even-10", 0, 0.5) | {"painted": 10}, _point("nuclei", seed, "even-10", 0, 1)]
        points += _walk("deep", seed, "tool:layout", [0.2, 0.3, 0.46, 0.5, 0.5])  # 90 % of 0.5 from 3 slices on
        points += _walk("deep", seed, "even", [0.2, 0.3, 0.3, 0.3, 0.3])[1:]  # never
        points += _walk("nuclei", seed, "tool:layout", [0.5, 0.6, 0.7, 0.8, 0.95])  # 5 slices
        points += _walk("nuclei", seed, "even", [0.5, 0.6, 0.7, 0.9, 0.9])[1:]  # 4 slices
    (tmp_path / "a.json").write_text(json.dumps(points))
    (tmp_path / "b.json").write_text(json.dumps(points[:2] + [_point("deep", 0, "tool:coverage", 0, 0.2)]))
    merged = report_annotator.merged([tmp_path / "a.json", tmp_path / "b.json"])
    assert len(merged) == len(points) + 1  # b's even-10 runs were read from a already
    report_annotator.report(merged)
    out = capsys.readouterr().out
    worse = "tasks worse than even spacing, mean over their seeds: nuclei (5.00 against 4.00)"
    assert f"tool:layout / even = 0.53 over 4 task-seed pairs (target: at most 0.70); {worse}" in out  # unreached: 11
    assert f"tool:layout / even = 0.80 over 4 task-seed pairs (target: at most 0.70); {worse}" in out  # unreached: 6
    assert "tool:coverage / even = 1.00 over 1 task-seed pairs" in out  # only the pair it was run on
    walk = [p for p in points if (p["dataset"], p["seed"], p["strategy"]) == ("nuclei", 1, "tool:layout")]
    (tmp_path / "c.json").write_text(json.dumps(walk))  # a walk of the same task and seed in another file
    with pytest.raises(ValueError, match="tool:layout of nuclei seed 1"):
        report_annotator.merged([tmp_path / "a.json", tmp_path / "c.json"])
