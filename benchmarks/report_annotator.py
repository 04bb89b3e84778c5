"""Tables and plots of the simulated annotator (annotator.py): Dice against painted slices and against time.

Usage: ``python benchmarks/report_annotator.py RUNS.json [MORE.json ...]`` (files merged; plots next to the first,
named after it).
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

TARGET_SHARE = 0.9
#: What records written before ``tool:NAME`` existed called the tool's walk (its strategy then).
OLD_TOOL = "tool:uncertainty-distance"


def slices_to_reach(points: list[dict], target: float) -> float:
    """The fewest painted slices whose Dice reaches ``target`` (inf when none does)."""
    hits = [p["painted"] for p in points if np.isfinite(p["mean_dice"]) and p["mean_dice"] >= target]
    return float(min(hits)) if hits else float("inf")


def curve(by: dict, task: str, strategy: str) -> list[dict]:
    """A strategy's points in round order; ``even`` starts from the protocol's 1 slice, the walkers' round 0."""
    points = by[(task, strategy)]
    if strategy == "even":
        first = next(p for (t, s), ps in by.items() if t == task and s.startswith("tool") for p in ps)
        points = [p for p in by[(task, first["strategy"])] if p["round"] == 0] + points
    return sorted(points, key=lambda p: p["round"])


def walkers(by: dict) -> list[str]:
    """The strategies compared: each ``tool:NAME``, then ``even`` and ``random`` (those present)."""
    present = {s for _, s in by}
    return sorted(s for s in present if s.startswith("tool:")) + [s for s in ("even", "random") if s in present]


def report(points: list[dict], plots: Path | None = None) -> None:
    """Print the tables; with ``plots`` (a path prefix) write ``PREFIX-dice-vs-slices.png`` and ``-time.png``."""
    by = defaultdict(list)
    for p in points:
        p = {**p, "strategy": OLD_TOOL if p["strategy"] == "tool" else p["strategy"]}
        by[(f"{p['dataset']}, seed {p['seed']}", p["strategy"])].append(p)
    tasks = sorted({task for task, strategy in by if strategy == "even-10"})
    strategies = walkers(by)
    print(f"\n| task | 10 even slices | 90 % of it | slices needed: {' / '.join(strategies)} | "
          + " | ".join(f"Dice per round: {s}" for s in strategies) + " |")  # fmt: skip
    print("|---|---|---|---|" + "---|" * len(strategies))
    needed = defaultdict(dict)  # strategy -> task -> slices needed
    for task in tasks:
        reference = by[(task, "even-10")][0]["mean_dice"]
        target = TARGET_SHARE * reference
        counts = {s: slices_to_reach(curve(by, task, s), target) if by[(task, s)] else np.nan for s in strategies}
        for s, n in counts.items():
            if not np.isnan(n):  # a strategy not run on this task counts neither way
                needed[s][task] = n
        curves = " | ".join(" ".join(f"{p['mean_dice']:.2f}" for p in curve(by, task, s)) for s in strategies)
        shown = " / ".join("not run" if np.isnan(n) else "-" if np.isinf(n) else f"{n:.0f}" for n in counts.values())
        print(f"| {task} | {reference:.3f} | {target:.3f} | {shown} | {curves} |")
    most = max((p["painted"] for p in points), default=0) + 1  # the report's convention: the reference's count + 1
    tried = max((p["painted"] for p in points if p["strategy"] != "even-10"), default=0) + 1  # one more than tried
    for count in dict.fromkeys((most, tried)):
        counted = {s: {t: n if np.isfinite(n) else count for t, n in v.items()} for s, v in needed.items()}
        means = ", ".join(f"{s} {np.mean(list(v.values())):.2f}" for s, v in counted.items())
        print(
            f"\nMean slices needed to reach 90 % of the 10-even-slice Dice (not reached: counted as {count}): {means}"
        )
        for s in strategies:
            if s.startswith("tool:") and "even" in counted:
                _against_even(s, counted[s], counted["even"])
    _mean_curves(by, tasks, strategies)
    _picks(by, tasks, strategies)
    _continue_against_scratch(by, tasks)
    if plots is not None:
        _plot(by, tasks, strategies, plots)


def _against_even(strategy: str, needed: dict[str, float], even: dict[str, float]) -> None:
    """``strategy``'s mean slices needed over the task-seed pairs it shares with even spacing, as a ratio of even's
    (the target: at most 0.70), and the tasks whose mean over their seeds is worse than even's (the target: none)."""
    shared = sorted(set(needed) & set(even))
    if not shared:
        return
    ratio = np.mean([needed[t] for t in shared]) / np.mean([even[t] for t in shared])
    by_task = defaultdict(list)
    for t in shared:
        by_task[t.split(", seed ")[0]].append((needed[t], even[t]))
    means = {task: np.mean(v, axis=0) for task, v in sorted(by_task.items())}  # (strategy, even) per task
    worse = [f"{task} ({a:.2f} against {b:.2f})" for task, (a, b) in means.items() if a > b]
    print(
        f"{strategy} / even = {ratio:.2f} over {len(shared)} task-seed pairs (target: at most 0.70); tasks worse "
        f"than even spacing, mean over their seeds: {', '.join(worse) if worse else 'none'}"
    )


def merged(files: list[Path]) -> list[dict]:
    """The points of several annotator files. An evenly spaced run already read (same task, seed, count) is
    skipped: the runs a file reused from another (``annotator.py --baselines``). Any other strategy's runs of one
    task and seed must come from one file (a walk is one session's), else ``ValueError``."""
    seen, owner, points = set(), {}, []
    for path in files:
        for p in json.loads(path.read_text()):
            if p["strategy"].startswith("even"):
                key = (p["dataset"], p["seed"], p["strategy"], p["round"])
                if key in seen:
                    continue
                seen.add(key)
            elif (first := owner.setdefault((p["dataset"], p["seed"], p["strategy"]), path)) != path:
                raise ValueError(f"{p['strategy']} of {p['dataset']} seed {p['seed']} is in {first} and {path}")
            points.append(p)
    return points


def _mean_curves(by, tasks, strategies) -> None:
    """Per strategy: the mean Dice over task-seed pairs at each number of painted slices."""
    print("\nMean Dice by painted slices, over the task-seed pairs:")
    for s in strategies:
        dice = defaultdict(list)
        for task in tasks:
            for p in curve(by, task, s) if by[(task, s)] else []:
                dice[p["painted"]].append(p["mean_dice"])
        print(f"{s}: " + ", ".join(f"{n}: {np.mean(v):.3f} ({len(v)})" for n, v in sorted(dice.items())))


def _picks(by, tasks, strategies) -> None:
    """The slices each walker painted, in order (records that kept them)."""
    for task in tasks:
        for s in strategies:
            picked = [p.get("slice") for p in curve(by, task, s) if p.get("slice") is not None]
            if picked and s != "even":
                print(f"{task} {s}: slices {', '.join(map(str, picked))}")


def _continue_against_scratch(by, tasks) -> None:
    """Per round of the tool's strategy: Continue for half the budget against a new model for the whole budget."""
    rows = []
    for task in tasks:
        scratch = {p["round"]: p for p in by[(task, "scratch")]}
        for p in by[(task, "continue-half")]:
            s = scratch.get(p["round"])
            if s and np.isfinite(s["mean_dice"]) and np.isfinite(p["mean_dice"]):
                rows.append((task, p["round"], p["mean_dice"], p["train_seconds"], s["mean_dice"], s["train_seconds"]))
    if not rows:
        return
    print(
        "\n| task | round | Continue, half budget: Dice (s) | from scratch, full budget: Dice (s) |\n|---|---|---|---|"
    )
    for task, k, d_half, s_half, d_full, s_full in rows:
        print(f"| {task} | {k} | {d_half:.3f} ({s_half:.0f}) | {d_full:.3f} ({s_full:.0f}) |")
    reached = sum(d_half >= d_full for _, _, d_half, _, d_full, _ in rows)
    print(f"Continue reached the from-scratch Dice in half the time in {reached} of {len(rows)} rounds.")


def _plot(by, tasks, strategies, prefix: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for x_key, name in (("painted", "slices"), ("time", "time")):
        fig, axes = plt.subplots(1, len(tasks), figsize=(3.2 * len(tasks), 3.2), squeeze=False)
        for ax, task in zip(axes[0], tasks, strict=True):
            for strategy in strategies:
                points = curve(by, task, strategy)
                if not points:
                    continue
                spent = [p["train_seconds"] for p in points]  # "even" trains anew each round; the others continue
                seconds = spent if strategy == "even" else np.cumsum(spent)
                xs = [p["painted"] for p in points] if x_key == "painted" else seconds
                ax.plot(xs, [p["mean_dice"] for p in points], marker="o", label=strategy)
            ax.axhline(by[(task, "even-10")][0]["mean_dice"], color="grey", ls="--", lw=1)
            ax.set(title=task, xlabel="painted slices" if x_key == "painted" else "training time (s, cumulative)")
        axes[0][0].set_ylabel("Dice, never-painted slices")
        axes[0][0].legend(fontsize=7)
        fig.tight_layout()
        path = prefix.parent / f"{prefix.name}-dice-vs-{name}.png"
        fig.savefig(path, dpi=100)
        print(f"plot: {path}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("runs", type=Path, nargs="+", help="annotator files, merged; plots named after the first")
    args = parser.parse_args()
    report(merged(args.runs), args.runs[0].with_suffix(""))
