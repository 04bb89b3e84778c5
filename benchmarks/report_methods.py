"""Tables (markdown) and plots (PNG) from the runs written by methods_real.py.

Usage: ``python benchmarks/report_methods.py RUNS.json [--baseline OTHER.json]``: plots are written next to RUNS.json;
``--baseline`` adds the rf-features runs of another file on the same datasets and paintings (e.g. CPU runs next to
GPU network runs; the random forest has no iteration budget and runs on the CPU either way).
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np


def report(runs: list[dict], folder: Path) -> None:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in runs:
        iterations = 0 if r["method"] == "rf-features" else r["iterations"]  # 0: no iteration budget
        norm = r.get("norm", "batch")  # runs before the option existed used BatchNorm
        method = r["method"] if norm == "batch" or r["method"] == "rf-features" else f"{r['method']} ({norm} norm)"
        groups[(r["dataset"], r["paint"], method, iterations)].append(r)
    columns = ["dataset", "painting", "method", "iterations", "seeds", "mean Dice (mean ± sd)", "HD95 mm", "train s",
               "predict s"]  # fmt: skip
    print("\n| " + " | ".join(columns) + " |\n" + "|---" * len(columns) + "|")
    for (dataset, paint, method, iterations), rs in sorted(groups.items()):
        d = np.array([r["mean_dice"] for r in rs])
        hd = np.array([r.get("mean_hd95", np.nan) for r in rs])
        t = np.mean([r["train_seconds"] for r in rs])
        p = np.mean([r["predict_seconds"] for r in rs])
        print(f"| {dataset} | {paint} | {method} | {iterations or '-'} | {len(rs)} | {d.mean():.3f} ± {d.std():.3f} | "
              f"{np.nanmean(hd):.1f} | {t:.0f} | {p:.1f} |")  # fmt: skip
    _per_class(groups)
    _plot(groups, folder)


def _per_class(groups) -> None:
    print("\n| dataset | painting | method | iterations | per-class Dice (mean over seeds, class values 2..K) |")
    print("|---|---|---|---|---|")
    for (dataset, paint, method, iterations), rs in sorted(groups.items()):
        keys = sorted(rs[0]["dice"], key=int)
        means = [np.nanmean([r["dice"][k] for r in rs]) for k in keys]
        print(f"| {dataset} | {paint} | {method} | {iterations or '-'} | {' '.join(f'{m:.2f}' for m in means)} |")


def _plot(groups, folder: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for dataset, paint in sorted({(k[0], k[1]) for k in groups}):
        fig, ax = plt.subplots(figsize=(6, 4))
        for (ds, pt, method, iterations), rs in sorted(groups.items()):
            if (ds, pt) != (dataset, paint):
                continue
            if method == "rf-features":
                d = np.mean([r["mean_dice"] for r in rs])
                ax.axhline(d, color="grey", ls="--", label=f"rf-features ({d:.3f})")
                continue
            n = min(len(r["curve"]) for r in rs)  # runs with fewer checkpoints: the points all runs share
            curves = np.array([r["curve"][-n:] for r in rs])  # (seeds, points, [seconds, iteration, dice])
            ax.errorbar(curves[:, :, 0].mean(0), curves[:, :, 2].mean(0), yerr=curves[:, :, 2].std(0),
                        marker="o", capsize=3, label=f"{method}, {iterations} it, {len(rs)} seed(s)")  # fmt: skip
        ax.set(xlabel="training time (s)", ylabel="mean Dice, never-painted slices", title=f"{dataset}, {paint}")
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = folder / f"dice-vs-time-{dataset}-{paint}.png".replace(":", "-")
        fig.savefig(path, dpi=110)
        print(f"\nplot: {path}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("runs", type=Path)
    parser.add_argument("--baseline", type=Path, help="a file whose rf-features runs are added")
    args = parser.parse_args()
    runs = json.loads(args.runs.read_text())
    tasks = {(r["dataset"], r["paint"]) for r in runs}
    extra = json.loads(args.baseline.read_text()) if args.baseline else []
    runs += [r for r in extra if r["method"] == "rf-features" and (r["dataset"], r["paint"]) in tasks]
    report(runs, args.runs.parent)
