"""Leave-one-painted-slice-out: compare network options on a dataset using only the labels of its painted slices.

For a dataset without a separate development task (icbm-tissue), options must not be chosen on the scored voxels.
This script paints the protocol slices, then for each painted slice k trains on the other painted slices and
scores slice k alone, which a user could do with their own painting. Scores never touch a never-painted voxel.

Example (what docs/benchmarks.md reports):
    python benchmarks/painted_slice_cv.py --dataset icbm-tissue --paint slices:3 --norms batch,group \
        --iterations 2000 --out results.json
Prints a markdown table (mean ± sd over the held-out slices) and writes every fold to the JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from datasets import load_dataset  # noqa: E402
from methods_real import paint, run_network, score  # noqa: E402
from rf_baseline import rf_segment  # noqa: E402

from napari_contrastseg.samples.protocol import painted_slice_indices  # noqa: E402


def folds(painted: np.ndarray) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """``(slice index, painting without that slice, mask of that slice)`` for every painted axial slice."""
    out = []
    for index in painted_slice_indices(painted, -1):
        rest = painted.copy()
        rest[..., index] = 0
        mask = np.zeros(painted.shape, bool)
        mask[..., index] = True
        out.append((index, rest, mask))
    return out


def main() -> None:
    warnings.filterwarnings("ignore", module="monai")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="icbm-tissue")
    parser.add_argument("--paint", default="slices:3")
    parser.add_argument("--methods", default="rf-features,supervised")
    parser.add_argument("--norms", default="batch,group", help="the U-Net's normalisation layers to compare")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--patch", type=int, default=64)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", type=Path, default=Path("benchmark-results/painted-slice-cv.json"))
    args = parser.parse_args()
    args.curve_points = 1  # no intermediate checkpoints
    vol = load_dataset(args.dataset)
    runs = []
    for index, painted, mask in folds(paint(vol.ground_truth, args.paint, args.seed)):
        for label in args.methods.split(","):
            for norm in ["-"] if label == "rf-features" else args.norms.split(","):
                start = time.perf_counter()
                if label == "rf-features":
                    result = score(rf_segment(vol.image, painted, seed=args.seed), vol.ground_truth, mask, None, False)
                else:
                    args.norm = norm
                    with tempfile.TemporaryDirectory() as work:
                        result = run_network(vol, painted, mask, label, args.seed, args, Path(work))
                runs.append({"method": label, "norm": norm, "held_out_slice": index, "iterations": args.iterations,
                             "seconds": time.perf_counter() - start, **result})  # fmt: skip
                print(f"slice {index}: {label} ({norm}) mean Dice {result['mean_dice']:.3f}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(runs, indent=1))
    print("\n| method | norm | per held-out slice | mean ± sd |\n|---|---|---|---|")
    for label, norm in dict.fromkeys((r["method"], r["norm"]) for r in runs):
        d = [r["mean_dice"] for r in runs if (r["method"], r["norm"]) == (label, norm)]
        print(f"| {label} | {norm} | {' '.join(f'{x:.3f}' for x in d)} | {np.mean(d):.3f} ± {np.std(d):.3f} |")


if __name__ == "__main__":
    main()
