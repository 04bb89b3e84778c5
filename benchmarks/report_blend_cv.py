"""Ways of combining the network and the forest, scored on the painted-slice CV's saved probabilities.

``painted_slice_cv.py --forest-blend 0.5 --dump DIR --label STEM.seedN`` saves, for every fold, the network's and
the forest's class probabilities of the held-out painted slice and of its two neighbours, ``(3, K, *s)`` each, and
the slice's painting. Every combination here is computed from those same probabilities (a paired comparison: the
same networks, the same forests), smoothed through the plane as the default predicts volumes (RULE.md addendum
12), and scored on the held-out slice's painting as ``painted_slice_cv.py`` scores it. This prints, per task and
combination, the mean Dice over the folds and seeds; per seed the CV score (mean over tasks) and its difference
from ``--against``; the mean of those differences, their standard error and the lowest task's difference (the
figures of RULE.md's rules); and how sure each learner is (mean of each pixel's largest probability).

    python benchmarks/painted_slice_cv.py --forest-blend 0.5 --smooth --dump /tmp/dumps --forest-seed training \
        --label blend-dump.seed0 --set seed=0 --out docs/results/defaults-cv/cv.json
    python benchmarks/report_blend_cv.py /tmp/dumps blend-dump --seeds 0 --candidate confidence \\
        --json docs/results/defaults-cv/blend-combinations.json
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scoring import score  # noqa: E402

EPS = 1e-6


def _entropy(p: np.ndarray) -> np.ndarray:
    """Per pixel entropy of ``p`` ``(K, *s)``, divided by log K (0: sure, 1: uniform)."""
    return -(p * np.log(np.clip(p, EPS, 1))).sum(0) / np.log(p.shape[0])


def _normalise(p: np.ndarray) -> np.ndarray:
    return p / np.clip(p.sum(0, keepdims=True), EPS, None)


def mean(network: np.ndarray, forest: np.ndarray, weight: float = 0.5) -> np.ndarray:
    """``(1 - weight) * network + weight * forest`` (the default's blend, weight 0.5)."""
    return (1 - weight) * network + weight * forest


def confidence(network: np.ndarray, forest: np.ndarray) -> np.ndarray:
    """Each pixel weighs each learner by how sure it is there, ``1 - entropy``: a learner that hesitates between
    classes gives way to one that does not, pixel by pixel."""
    sure_n, sure_f = 1 - _entropy(network), 1 - _entropy(forest)
    w = (sure_f + EPS) / (sure_n + sure_f + 2 * EPS)
    return (1 - w) * network + w * forest


def tempered(network: np.ndarray, forest: np.ndarray, temperature: float = 2.0) -> np.ndarray:
    """The network's probabilities softened, ``p ** (1 / T)`` renormalised, then averaged with the forest's."""
    return mean(_normalise(network ** (1 / temperature)), forest)


def geometric(network: np.ndarray, forest: np.ndarray) -> np.ndarray:
    """Normalised geometric mean of the two."""
    return _normalise(np.sqrt(np.clip(network, EPS, 1) * np.clip(forest, EPS, 1)))


def surest(network: np.ndarray, forest: np.ndarray) -> np.ndarray:
    """Per pixel, the probabilities of the learner with the lower entropy."""
    return np.where(_entropy(network) <= _entropy(forest), network, forest)


COMBINATIONS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "network": lambda n, f: n,
    "forest": lambda n, f: f,
    "mean": mean,
    "mean-0.25": lambda n, f: mean(n, f, 0.25),
    "mean-0.75": lambda n, f: mean(n, f, 0.75),
    "confidence": confidence,
    "tempered": tempered,
    "geometric": geometric,
    "surest": surest,
}


def combined(name: str, network: np.ndarray, forest: np.ndarray) -> np.ndarray:
    """The held-out slice's classes (1-based) from ``(3, K, *s)`` probabilities of it and its neighbours: each
    slice combined, then ``(p[z-1] + 2 p[z] + p[z+1]) / 4``."""
    p = [COMBINATIONS[name](n.astype(np.float32), f.astype(np.float32)) for n, f in zip(network, forest, strict=True)]
    return ((p[0] + 2 * p[1] + p[2]) / 4).argmax(0).astype(np.uint8) + 1


def fold_scores(folder: Path, stem: str) -> list[dict]:
    """One row per saved fold: task, seed, each combination's Dice and each learner's mean largest probability."""
    pattern = re.compile(rf"^(.+)\.{re.escape(stem)}\.seed(\d+)\.(\d+)\.npz$")
    rows = []
    for path in sorted(folder.glob("*.npz")):
        match = pattern.match(path.name)
        if not match:
            continue
        saved = np.load(path)
        truth = np.load(path.with_suffix(".truth.npy"))
        row = {"task": match.group(1), "seed": int(match.group(2))}
        for name in COMBINATIONS:
            row[name] = score(combined(name, saved["network"], saved["forest"]), truth, truth > 0, None, False)[
                "mean_dice"
            ]
        row["sure network"] = float(saved["network"][1].astype(np.float32).max(0).mean())
        row["sure forest"] = float(saved["forest"][1].astype(np.float32).max(0).mean())
        rows.append(row)
    return rows


def report(rows: list[dict], seeds: list[int], against: str, candidate: str) -> dict[str, float]:
    """Print the tables; return the rule's figures for ``candidate`` against ``against``."""
    rows = [r for r in rows if r["seed"] in seeds]
    columns = [*COMBINATIONS, "sure network", "sure forest"]
    cells = defaultdict(list)
    for r in rows:
        for c in columns:
            if np.isfinite(r[c]):
                cells[(r["task"], r["seed"], c)].append(r[c])
    tasks = sorted({r["task"] for r in rows})
    print(
        f"\nseeds {seeds}, {len(rows)} folds\n\n| task | " + " | ".join(columns) + " |\n|---|" + "---|" * len(columns)
    )
    by_task = {}
    for t in tasks:
        means = {c: np.mean([np.mean(cells[(t, s, c)]) for s in seeds if cells[(t, s, c)]]) for c in columns}
        by_task[t] = means[candidate] - means[against]
        print(f"| {t} | " + " | ".join(f"{means[c]:.3f}" for c in columns) + " |")
    print(
        f"\n| seed | {' | '.join(COMBINATIONS)} | {candidate} - {against} |\n|---|" + "---|" * (len(COMBINATIONS) + 1)
    )
    d = []
    for s in seeds:
        cv = {c: np.mean([np.mean(cells[(t, s, c)]) for t in tasks]) for c in COMBINATIONS}
        d.append(cv[candidate] - cv[against])
        print(f"| {s} | " + " | ".join(f"{cv[c]:.3f}" for c in COMBINATIONS) + f" | {d[-1]:+.3f} |")
    mean_d = float(np.mean(d))
    se = float(np.std(d, ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan")
    worst = min(by_task.values())
    print(f"\n{candidate} - {against}: mean d {mean_d:+.3f}, standard error {se:.3f}, "
          f"mean - 2 SE {mean_d - 2 * se:+.3f}, lowest task difference {worst:+.3f} ({len(seeds)} seeds)")  # fmt: skip
    return {"mean": mean_d, "se": se, "worst_task": worst}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    parser.add_argument("stem")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--against", default="mean", choices=list(COMBINATIONS))
    parser.add_argument("--candidate", default="confidence", choices=list(COMBINATIONS))
    parser.add_argument("--json", type=Path, help="also write every fold's scores there (the saved arrays are large)")
    args = parser.parse_args()
    rows = fold_scores(args.folder, args.stem)
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=1))
    report(rows, [int(s) for s in args.seeds.split(",")], args.against, args.candidate)


if __name__ == "__main__":
    main()
