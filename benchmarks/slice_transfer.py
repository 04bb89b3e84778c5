"""How one run's accuracy carries from the painted slices to the others: a diagnosis, not a selection tool.

Trains the network (the defaults, changed by ``--set`` as in suite.py) or the forest on one task's painting (seed 0)
and prints the Dice on never-painted slices, the Dice on the painted voxels themselves (the fit), predicted against
true voxels per class, and the Dice of every ``--every``-th slice along the slice axis (how it falls off with the
distance from the painting). It reads scored voxels, so it may explain a result but never choose a default
(docs/results/defaults-cv/RULE.md).

Example (docs/benchmarks.md):
    python benchmarks/slice_transfer.py icbm-tissue slices:1 --set time_budget=240 --set holdout.earliest=1.0
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from datasets import load_volume  # noqa: E402
from scoring import paint, score  # noqa: E402
from suite import run_forest, run_network, with_settings  # noqa: E402

from napari_contrastseg.core.config import TrainConfig  # noqa: E402
from napari_contrastseg.core.metrics import dice_per_class  # noqa: E402
from napari_contrastseg.samples.protocol import painted_slice_indices, unpainted_mask  # noqa: E402


def main() -> None:
    warnings.filterwarnings("ignore", module="monai")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset")
    parser.add_argument("paint", help="slices:N or scribbles:N")
    parser.add_argument("--method", default="default", choices=("default", "rf-features"))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="TrainConfig change (JSON)")
    parser.add_argument("--every", type=int, default=8, help="print the Dice of every N-th slice")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    vol = load_volume(args.dataset)
    axis = vol.slice_axis
    painted = paint(vol.ground_truth, args.paint, 0, axis)
    if args.method == "rf-features":
        result = run_forest(vol, painted, 0)
    else:
        result = run_network(vol, painted, with_settings(TrainConfig(device=args.device), args.set))
    pred = result["prediction"]
    classes = list(range(2, int(vol.ground_truth.max()) + 1))
    unpainted = score(pred, vol.ground_truth, unpainted_mask(painted, axis), vol.spacing, False)
    fit = dice_per_class(pred, painted, classes, painted > 0)
    print(f"{args.dataset} {args.paint} {args.method} {' '.join(args.set)}: {result['train_seconds']:.0f} s, "
          f"{result.get('iterations', '-')} steps, stop: {result.get('stop_reason', '-')}")  # fmt: skip
    print(f"  never-painted slices: mean Dice {unpainted['mean_dice']:.3f}; painted voxels (fit): "
          f"{np.nanmean(list(fit.values())):.3f}; estimate {(result.get('estimate') or {}).get('mean')}")  # fmt: skip
    print(f"  predicted / true voxels per class: {unpainted['predicted_voxels']} / {unpainted['true_voxels']}")
    print(f"  painted slices: {painted_slice_indices(painted, axis)}; Dice per slice:")
    for z in range(0, vol.ground_truth.shape[axis], args.every):
        truth, guess = np.take(vol.ground_truth, z, axis), np.take(pred, z, axis)
        if (truth > 1).any():
            dice = dice_per_class(guess, truth, classes)
            print(f"    {z:4d}: {np.nanmean(list(dice.values())):.3f}")


if __name__ == "__main__":
    main()
