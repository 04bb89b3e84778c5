"""Which accuracy estimate tracks the held-out painted slice: Spearman's rank correlation over painted-slice CV folds.

Reads the folds of ``painted_slice_cv.py --forest-blend W --label STEM.seedN``: the truth of each fold is the Dice
of the blended prediction on the painted slice that fold held out (with the weight the run chose,
``STEM.seedN+chosen``, where there is one; else ``STEM.seedN+blend``); the estimates come from
the training run of the same fold (``STEM.seedN``): the network's held-out estimate (``network``, what the trainer
reported before) and the returned model's figures of ``core/estimate.py`` (``held-out-blend``, ``agreement`` and
``min``, per class the lower of the two). Nothing here reads a scored voxel of the suite
(docs/results/defaults-cv/RULE.md, addendum 10). The runs were made at commit ``40c5b12``; none of the three
candidates won, and ``core/estimate.py`` was removed afterwards (its held-out blend lives on in
``core/blend_weight.py``), so this script now reads the stored runs.

    python benchmarks/report_estimate_cv.py docs/results/defaults-cv/cv.json estimate-check
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

CANDIDATES = {"network": None, "held-out-blend": "held_out_mean", "agreement": "agreement_mean", "min": "min_mean"}


def fold_estimates(runs: list[dict], stem: str) -> list[dict]:
    """One row per fold: ``seed``, ``task``, ``truth`` and each candidate's estimate (NaN where undefined)."""
    pattern = re.compile(rf"^{re.escape(stem)}\.seed(\d+)(\+blend|\+chosen)?$")
    truth, rows = {}, {}
    for r in runs:
        match = pattern.match(r["label"])
        if not match:
            continue
        key = (int(match.group(1)), r["dataset"], r["held_out_slice"])
        if match.group(2):
            if match.group(2) == "+chosen" or key not in truth:
                truth[key] = r["mean_dice"]
            continue
        found = r.get("returned_estimate") or {}
        row = {"seed": key[0], "task": key[1]}
        for name, field in CANDIDATES.items():
            value = (r.get("estimate") or {}).get("mean") if field is None else found.get(field)
            row[name] = float("nan") if value is None else float(value)
        rows[key] = row
    return [{**row, "truth": truth[key]} for key, row in rows.items() if key in truth and np.isfinite(truth[key])]


def correlations(rows: list[dict]) -> dict[str, float]:
    """Spearman's rho of each candidate against the truth over ``rows`` (folds where it is defined)."""
    out = {}
    for name in CANDIDATES:
        pairs = [(r[name], r["truth"]) for r in rows if np.isfinite(r[name])]
        out[name] = float(spearmanr(*zip(*pairs, strict=True)).statistic) if len(pairs) > 2 else float("nan")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path)
    parser.add_argument("stem")
    args = parser.parse_args()
    rows = fold_estimates(json.loads(args.results.read_text()), args.stem)
    seeds = sorted({r["seed"] for r in rows})
    names = list(CANDIDATES)
    print("| folds | " + " | ".join(names) + " |\n|---|" + "---|" * len(names))
    for label, subset in [(f"seed {s}", [r for r in rows if r["seed"] == s]) for s in seeds] + [("all", rows)]:
        rho = correlations(subset)
        print(f"| {label} ({len(subset)}) | " + " | ".join(f"{rho[n]:.2f}" for n in names) + " |")
    print("\nMean estimate - truth: " + ", ".join(
        f"{n} {np.nanmean([r[n] - r['truth'] for r in rows]):+.3f}" for n in names))  # fmt: skip
    print("\n| task | truth | " + " | ".join(names) + " |\n|---|---|" + "---|" * len(names))
    for task in sorted({r["task"] for r in rows}):
        mine = [r for r in rows if r["task"] == task]
        cells = [f"{np.nanmean([r[n] for r in mine]):.3f}" for n in ("truth", *names)]
        print(f"| {task} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
