"""Paired painted-slice CV: a candidate scored from the same trained networks as its baseline, over seeds.

``painted_slice_cv.py --forest-blend W --label STEM.seedN`` stores, per fold, the network alone (``STEM.seedN``),
the forest alone (``STEM.seedN+forest``), their blend (``STEM.seedN+blend``) and, where the run chose the blend's
weight, the blend with that weight (``STEM.seedN+chosen``); with ``--smooth``, the blend smoothed through the
plane (``STEM.seedN+smooth``). This prints, per task, each variant's mean over the
folds and seeds and the paired difference candidate - baseline (``--candidate``, ``--against``; blend - network
unless told), then per seed the CV scores (mean over tasks) and the difference ``d_N``, and the rule's figures:
mean of ``d_N``, its standard error over the seeds, and the lowest per-task mean difference
(docs/results/defaults-cv/RULE.md, addenda 8, 9 and 11); and the forest's seconds per fold.

    python benchmarks/report_paired_cv.py docs/results/defaults-cv/cv.json blend-check blend-balanced
    python benchmarks/report_paired_cv.py docs/results/defaults-cv/cv.json chosen-weight \\
        --against blend --candidate chosen
    python benchmarks/report_paired_cv.py docs/results/defaults-cv/cv.json growth \\
        --baseline-stem growth-base --against smooth --candidate smooth
"""

from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from pathlib import Path

import numpy as np

VARIANTS = ("network", "forest", "blend", "chosen", "smooth")


def paired(runs: list[dict], stem: str) -> dict[tuple[str, int], dict[str, float]]:
    """``(task, seed) -> {variant: mean Dice over the folds}`` for the runs labelled ``STEM.seedN[+variant]``
    (a task whose folds are not all done yet is left out)."""
    pattern = re.compile(rf"^{re.escape(stem)}\.seed(\d+)(\+forest|\+blend|\+chosen|\+smooth)?$")
    folds = defaultdict(list)
    for r in runs:
        match = pattern.match(r["label"])
        if match and np.isfinite(r["mean_dice"]):
            variant = (match.group(2) or "+network")[1:]
            folds[(r["dataset"], int(match.group(1)), variant)].append(r["mean_dice"])
    complete = defaultdict(int)  # folds per task: a seed still running has fewer on its last task
    for (task, _, _), values in folds.items():
        complete[task] = max(complete[task], len(values))
    out: dict[tuple[str, int], dict[str, float]] = defaultdict(dict)
    for (task, seed, variant), values in folds.items():
        if len(values) == complete[task]:
            out[(task, seed)][variant] = float(np.mean(values))
    return dict(out)


def report(runs: list[dict], stem: str, baseline: str = "network", candidate: str = "blend",
           baseline_stem: str | None = None) -> dict[str, float]:  # fmt: skip
    """Print the tables for ``stem``; return the rule's figures for ``candidate`` against ``baseline``. With
    ``baseline_stem``, the baseline is that stem's ``baseline`` variant with the same seed (column ``baseline``):
    other trained networks, so not paired within a fold (addendum 13)."""
    cells = paired(runs, stem)
    if baseline_stem is not None:
        for key, values in paired(runs, baseline_stem).items():
            if key in cells and baseline in values:
                cells[key]["baseline"] = values[baseline]
        baseline = "baseline"
    tasks = sorted({t for t, _ in cells})
    variants = [v for v in (*VARIANTS, "baseline") if any(v in c for c in cells.values()) or v in (baseline, candidate)]
    pair = (baseline, candidate)
    seeds = sorted({s for _, s in cells if all(v in cells.get((t, s), {}) for t in tasks for v in pair)})
    head = f"| {' | '.join(variants)} | {candidate} - {baseline} |\n|---|" + "---|" * (len(variants) + 1)
    print(f"\n{stem}: seeds {seeds}\n\n| task {head}")
    by_task = {}
    for t in tasks:
        means = {v: np.mean([cells[(t, s)].get(v, np.nan) for s in seeds]) for v in variants}
        by_task[t] = means[candidate] - means[baseline]
        print(f"| {t} | " + " | ".join(f"{means[v]:.3f}" for v in variants) + f" | {by_task[t]:+.3f} |")
    print(f"\n| seed {head}")
    d = []
    for s in seeds:
        score = {v: np.mean([cells[(t, s)].get(v, np.nan) for t in tasks]) for v in variants}
        d.append(score[candidate] - score[baseline])
        print(f"| {s} | " + " | ".join(f"{score[v]:.3f}" for v in variants) + f" | {d[-1]:+.3f} |")
    mean = float(np.mean(d)) if d else float("nan")
    se = float(np.std(d, ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan")
    worst = min(by_task.values()) if by_task else float("nan")
    print(f"\nmean d {mean:+.3f}, standard error {se:.3f}, mean - 2 SE {mean - 2 * se:+.3f}, "
          f"lowest task difference {worst:+.3f} ({len(seeds)} seeds)")  # fmt: skip
    pattern = re.compile(rf"^{re.escape(stem)}\.seed\d+\+forest$")
    seconds = [r["forest_seconds"] for r in runs if pattern.match(r["label"]) and "forest_seconds" in r]
    if seconds:
        print(f"forest fit and prediction of the held-out slice: {min(seconds):.1f}-{max(seconds):.1f} s per fold "
              f"(median {np.median(seconds):.1f})")  # fmt: skip
    return {"mean": mean, "se": se, "worst_task": worst, "seeds": len(seeds), "d": d}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path)
    parser.add_argument("stems", nargs="+")
    parser.add_argument("--against", default="network", choices=VARIANTS, help="the baseline variant")
    parser.add_argument("--candidate", default="blend", choices=VARIANTS)
    parser.add_argument("--baseline-stem", help="take the baseline variant from this stem's runs of the same seed")
    args = parser.parse_args()
    runs = json.loads(args.results.read_text())
    for stem in args.stems:
        report(runs, stem, args.against, args.candidate, args.baseline_stem)


if __name__ == "__main__":
    main()
