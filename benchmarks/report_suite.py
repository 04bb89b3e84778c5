"""Tables (markdown) and a plot from the runs of suite.py: every task and painting, each method against the forest.

Usage: ``python benchmarks/report_suite.py RUNS.json [MORE.json ...] [--methods SPEC] [--seeds S] [--plot PATH]``.
``--methods rf-features,default=smooth-default+yardstick-default`` reports only those methods; ``NAME=A+B`` reports
the runs labelled A and B as one method NAME, a run of B replacing A's run of the same task, painting and seed;
a label without ``=`` is taken whole (``semicontrast+pretrain``, the suite's ``--pretrain`` runs).
``--seeds 0,1`` reports only those seeds' runs.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

FOREST = "rf-features"


def _mean_sd(values: list[float]) -> str:
    v = np.array([x for x in values if np.isfinite(x)])
    return "-" if not v.size else f"{v.mean():.3f} ± {v.std():.3f}"


def cells(runs: list[dict]) -> dict[tuple[str, str], dict[str, list[dict]]]:
    """(dataset, painting) -> method -> runs."""
    out: dict = defaultdict(lambda: defaultdict(list))
    for r in runs:
        out[(r["dataset"], r["paint"])][r["method"]].append(r)
    return out


def select(runs: list[dict], spec: str | None = None, seeds: str | None = None) -> list[dict]:
    """The runs of the methods in ``spec`` (comma-separated ``LABEL``, taken as it is, ``+`` included, or
    ``NAME=LABEL+LABEL...``; None: every label), renamed to NAME, and of the comma-separated ``seeds`` (None: every
    seed). For the same dataset, painting and seed a later label's run replaces an earlier one's."""
    kept = {int(s) for s in seeds.split(",")} if seeds else {r["seed"] for r in runs}
    chosen: dict[tuple, dict] = {}
    for entry in (spec or ",".join(dict.fromkeys(r["method"] for r in runs))).split(","):
        name, _, labels = entry.partition("=")
        for label in labels.split("+") if labels else [name]:
            for r in runs:
                if r["method"] == label and r["seed"] in kept:
                    chosen[(name, r["dataset"], r["paint"], r["seed"])] = {**r, "method": name}
    return list(chosen.values())


def report(runs: list[dict], plot: Path | None = None) -> None:
    table = cells(runs)
    methods = sorted({r["method"] for r in runs}, key=lambda m: (m != FOREST, m))
    print("\n| task | painting | " + " | ".join(methods) + " | train s (" + ", ".join(methods) + ") |")
    print("|---|---|" + "---|" * len(methods) + "---|")
    means: dict[str, list[float]] = defaultdict(list)
    flooded = []
    for (dataset, paint), by_method in sorted(table.items()):
        row, secs = [], []
        for m in methods:
            rs = by_method.get(m, [])
            row.append(_mean_sd([r["mean_dice"] for r in rs]) if rs else "")
            secs.append(f"{np.mean([r['train_seconds'] for r in rs]):.0f}" if rs else "")
            dice = [r["mean_dice"] for r in rs if np.isfinite(r["mean_dice"])]
            if dice and all(np.isfinite(r["mean_dice"]) for r in by_method.get(FOREST, rs)):
                means[m].append(float(np.mean(dice)))
            flooded += [(dataset, paint, m, r["seed"], r["false_positive_voxels"]) for r in rs
                        if r.get("false_positive_voxels")]  # fmt: skip
        print(f"| {dataset} | {paint} | " + " | ".join(row) + f" | {', '.join(secs)} |")
    print("\nMean over the tasks and paintings with a defined Dice for every method (" +
          f"{min(len(v) for v in means.values()) if means else 0} cells):")  # fmt: skip
    for m in methods:
        print(f"- {m}: {np.mean(means[m]):.3f}" if means[m] else f"- {m}: -")
    for name, key in (("painting", lambda r: r["paint"]), ("seed", lambda r: r["seed"])):
        groups = defined_means(runs, methods, key)
        print(f"\nBy {name}: mean Dice over the tasks (and paintings) with a defined Dice for every method")
        print(f"| {name} | cells | " + " | ".join(methods) + " |\n|---|---|" + "---|" * len(methods))
        for group, by_method in sorted(groups.items()):
            values = [by_method[m] for m in methods]
            print(f"| {group} | {len(values[0])} | " + " | ".join(f"{np.mean(v):.3f}" for v in values) + " |")
    _estimate_correlation(runs)
    if flooded:
        print("\nNever-painted slices without any true voxel of a class: voxels predicted as that class there")
        print("| task | painting | method | seed | predicted voxels (class: count) |\n|---|---|---|---|---|")
        for dataset, paint, m, seed, fp in flooded:
            print(f"| {dataset} | {paint} | {m} | {seed} | {', '.join(f'{c}: {n}' for c, n in fp.items())} |")
    _balance(runs)
    if plot is not None:
        _plot(table, methods, plot)


def defined_means(runs: list[dict], methods: list[str], key) -> dict:
    """``{key(run): {method: [Dice of each cell]}}``: per group of runs, the cells (task, painting) where every
    method has runs and all their Dice are defined, each cell's Dice averaged over its seeds."""
    by_cell: dict[tuple, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in runs:
        by_cell[(key(r), r["dataset"], r["paint"])][r["method"]].append(r["mean_dice"])
    groups: dict = defaultdict(lambda: defaultdict(list))
    for (group, *_), by_method in by_cell.items():
        if all(by_method.get(m) and np.isfinite(by_method[m]).all() for m in methods):
            for m in methods:
                groups[group][m].append(float(np.mean(by_method[m])))
    return groups


def _foreground_estimate(run: dict) -> float:
    """The held-out estimate's mean over foreground classes (the first class is the background), like the score."""
    if not run.get("estimate"):
        return float("nan")
    values = np.array(list(run["estimate"]["dice"].values())[1:], dtype=float)
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")


def _estimate_correlation(runs: list[dict]) -> None:
    """Per network method, for each painting and over all: Spearman's rank correlation of the held-out estimate
    (foreground mean) with the true Dice over the runs that have both, their mean gap, and the runs the held-out
    rule stopped before the budget."""
    from scipy.stats import spearmanr

    for method in sorted({r["method"] for r in runs if r.get("estimate")}):
        own = [r for r in runs if r["method"] == method and r.get("estimate")]
        early = sum(r.get("stop_reason") == "no longer improving" for r in own)
        print(f"\nHeld-out estimate against true Dice, {method} "
              f"({early} of {len(own)} runs stopped by the held-out rule)")  # fmt: skip
        print("| painting | runs | Spearman | estimate - true (mean) |\n|---|---|---|---|")
        for paint in [*sorted({r["paint"] for r in own}), "all"]:
            pairs = [(_foreground_estimate(r), r["mean_dice"]) for r in own if paint in ("all", r["paint"])]
            pairs = [(e, d) for e, d in pairs if np.isfinite(e) and np.isfinite(d)]
            if len(pairs) >= 3:
                rho = spearmanr(*zip(*pairs, strict=True)).statistic
                print(f"| {paint} | {len(pairs)} | {rho:.2f} | {np.mean([e - d for e, d in pairs]):+.2f} |")


def _balance(runs: list[dict]) -> None:
    """Whole-slice paintings: predicted / painted volume of each class on the painted slices."""
    ratios = defaultdict(list)
    for r in runs:
        if r["paint"].startswith("slices") and r.get("painted_slice_volumes"):
            for p, t in r["painted_slice_volumes"].values():
                if t:
                    ratios[(r["dataset"], r["method"])].append(p / t)
    if ratios:
        print("\nPredicted / painted volume per class on the painted slices (whole-slice paintings): min, max")
        print("| task | method | min | max | share within ±20 % |\n|---|---|---|---|---|")
        for (dataset, m), v in sorted(ratios.items()):
            v = np.array(v)
            print(f"| {dataset} | {m} | {v.min():.2f} | {v.max():.2f} | {np.mean(np.abs(v - 1) <= 0.2):.2f} |")


def _plot(table, methods: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = sorted(table)
    fig, ax = plt.subplots(figsize=(max(8, 0.55 * len(keys)), 4.5))
    width = 0.8 / len(methods)
    for k, m in enumerate(methods):
        dice = [[r["mean_dice"] for r in table[key].get(m, []) if np.isfinite(r["mean_dice"])] for key in keys]
        means = [np.mean(d) if d else np.nan for d in dice]
        sds = [np.std(d) if d else np.nan for d in dice]
        ax.bar(np.arange(len(keys)) + k * width, means, width, yerr=sds, capsize=2, label=m)
    ax.set_xticks(np.arange(len(keys)) + 0.4 - width / 2)
    ax.set_xticklabels([f"{d}\n{p}" for d, p in keys], rotation=60, ha="right", fontsize=7)
    ax.set(ylabel="mean Dice, never-painted slices", ylim=(0, 1))
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"\nplot: {path}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument("--methods", help="methods to report, LABEL or NAME=LABEL+LABEL (default: every label)")
    parser.add_argument("--seeds", help="seeds to report, comma-separated (default: every seed)")
    parser.add_argument("--plot", type=Path)
    args = parser.parse_args()
    runs = [r for p in args.runs for r in json.loads(p.read_text())]
    report(select(runs, args.methods, args.seeds), args.plot)
