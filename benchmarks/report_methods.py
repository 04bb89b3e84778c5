"""Tables (markdown) and plots (PNG) from the runs written by methods_real.py."""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np


def report(runs: list[dict], folder: Path) -> None:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in runs:
        groups[(r["dataset"], r["paint"], r["method"])].append(r)
    print("\n| dataset | painting | method | seeds | mean Dice (mean ± sd) | HD95 mm | train s | predict s |")
    print("|---|---|---|---|---|---|---|---|")
    for (dataset, paint, method), rs in sorted(groups.items()):
        d = np.array([r["mean_dice"] for r in rs])
        hd = np.array([r.get("mean_hd95", np.nan) for r in rs])
        t = np.mean([r["train_seconds"] for r in rs])
        p = np.mean([r["predict_seconds"] for r in rs])
        print(f"| {dataset} | {paint} | {method} | {len(rs)} | {d.mean():.3f} ± {d.std():.3f} | "
              f"{np.nanmean(hd):.1f} | {t:.0f} | {p:.1f} |")  # fmt: skip
    _per_class(groups)
    _plot(groups, folder)


def _per_class(groups) -> None:
    print("\n| dataset | painting | method | per-class Dice (mean over seeds, class values 2..K) |\n|---|---|---|---|")
    for (dataset, paint, method), rs in sorted(groups.items()):
        keys = sorted(rs[0]["dice"], key=int)
        means = [np.nanmean([r["dice"][k] for r in rs]) for k in keys]
        print(f"| {dataset} | {paint} | {method} | {' '.join(f'{m:.2f}' for m in means)} |")


def _plot(groups, folder: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for dataset, paint in sorted({(k[0], k[1]) for k in groups}):
        fig, ax = plt.subplots(figsize=(6, 4))
        for (ds, pt, method), rs in sorted(groups.items()):
            if (ds, pt) != (dataset, paint):
                continue
            if method == "rf-features":
                d = np.mean([r["mean_dice"] for r in rs])
                ax.axhline(d, color="grey", ls="--", label=f"rf-features ({d:.3f})")
                continue
            curves = np.array([r["curve"] for r in rs])  # (seeds, points, [seconds, iteration, dice])
            ax.errorbar(curves[:, :, 0].mean(0), curves[:, :, 2].mean(0), yerr=curves[:, :, 2].std(0),
                        marker="o", capsize=3, label=method)  # fmt: skip
        ax.set(xlabel="training time (s)", ylabel="mean Dice, never-painted slices", title=f"{dataset}, {paint}")
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = folder / f"dice-vs-time-{dataset}-{paint}.png".replace(":", "-")
        fig.savefig(path, dpi=110)
        print(f"\nplot: {path}")


if __name__ == "__main__":
    results = Path(sys.argv[1])
    report(json.loads(results.read_text()), results.parent)
