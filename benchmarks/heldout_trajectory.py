"""How fast a default run learns, read on the painting alone: the held-out estimate's trajectory, no scored voxel.

Paints a suite task as the protocol says, trains as ``contrastseg train`` does (``TrainConfig()`` with ``--set``
changes, the same syntax as suite.py) and prints, per setting, the first estimate at or above ``--level``, the best
and the last estimate of the run (the estimate after the first step, the rule's yardstick, is left out). Nothing is
predicted or scored.

Example (what docs/benchmarks.md reports):
    python benchmarks/heldout_trajectory.py --dataset colin27-deep --paint slices:5 \
        --setting default= --setting lr-1e-2=learning_rate=0.01 --setting batch-8=batch_size=8
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from datasets import load_volume  # noqa: E402
from scoring import paint  # noqa: E402
from suite import with_settings  # noqa: E402

from napari_contrastseg.core.config import TrainConfig  # noqa: E402
from napari_contrastseg.core.data import SegmentationData  # noqa: E402
from napari_contrastseg.core.events import Estimate, Finished  # noqa: E402
from napari_contrastseg.core.trainer import train  # noqa: E402


def trajectory(dataset: str, spec: str, config: TrainConfig) -> tuple[list[tuple[int, float, float]], str]:
    """``[(iteration, seconds, mean held-out Dice)]`` of one run on the protocol painting, and its stop reason."""
    vol = load_volume(dataset)
    painted = paint(vol.ground_truth, spec, 0, vol.slice_axis)
    points, reason = [], ""
    for event in train(SegmentationData(vol.image, painted, vol.class_names, vol.spacing), config):
        if isinstance(event, Estimate):
            points.append((event.iteration, round(event.seconds, 1), round(event.mean, 3)))
        elif isinstance(event, Finished):
            reason = event.stop_reason
    return points, reason


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="colin27-deep")
    parser.add_argument("--paint", default="slices:5")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--level", type=float, default=0.1)
    parser.add_argument("--setting", action="append", default=[], metavar="LABEL=KEY=VALUE",
                        help="a label and its TrainConfig change ('LABEL=' for the defaults); repeatable")  # fmt: skip
    parser.add_argument("--out", help="append each run's trajectory as a JSON line to this file")
    args = parser.parse_args()
    print("| setting | first estimate >= level (iteration, s) | best | last (iteration, s, estimate) | stop |")
    print("|---|---|---|---|---|")
    for item in args.setting or ["default="]:
        label, _, change = item.partition("=")
        config = with_settings(TrainConfig(seed=args.seed, device="cpu"), [change] if change else [])
        points, reason = trajectory(args.dataset, args.paint, config)
        later = points[1:] or points
        reached = next(((i, s) for i, s, m in later if m >= args.level), None)
        print(f"| {label} | {reached or 'not reached'} | {max(m for *_, m in later):.3f} | {points[-1]} | {reason} |")
        if args.out:
            run = {"setting": label, "change": change, "dataset": args.dataset, "paint": args.paint,
                   "seed": args.seed, "estimates": points}  # fmt: skip
            with open(args.out, "a") as file:
                file.write(json.dumps(run) + "\n")


if __name__ == "__main__":
    main()
