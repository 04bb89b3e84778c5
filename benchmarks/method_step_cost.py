"""What one training step costs with each method at its defaults, per stage, against a supervised step.

Trains on the bundled colin27-deep sample with the default network and crops, ``--iterations`` steps per method
(no held-out share, so every step is timed alike), and times every step on the host (the CPU waits for each).

Example (what docs/benchmarks.md reports):
    python benchmarks/method_step_cost.py --iterations 200 --out docs/results/method-step-cost.json
    python benchmarks/method_step_cost.py --methods supervised,action --option representation_dim=512 ...
Prints a table of milliseconds per step (each stage, and the mean over the schedule) and the ratio to supervised.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from napari_contrastseg.core.config import HoldoutConfig, TrainConfig
from napari_contrastseg.core.data import SegmentationData
from napari_contrastseg.core.events import Step
from napari_contrastseg.core.methods import METHODS, create_method
from napari_contrastseg.core.network import UNet
from napari_contrastseg.core.trainer import train
from napari_contrastseg.samples import load_sample


def stages_of(method: str):
    """``stage(iteration, iterations)``: the stage a step of ``method`` falls in (its defaults' fractions)."""
    probe = create_method(method, UNet(2, 3, 2, TrainConfig().network), 2)
    return lambda iteration, iterations: probe.position((iteration - 1) / iterations)[0]


def _option(text: str) -> tuple[str, object]:
    key, _, value = text.partition("=")
    return key, json.loads(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", default="supervised,semicontrast,action")
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="seed-method option, JSON value: anco_queries=64")  # fmt: skip
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    sample = load_sample("colin27-deep")
    data = SegmentationData(sample.image, sample.painted, sample.class_names, sample.spacing)
    rows = []
    for method in args.methods.split(","):
        options = {} if method == "supervised" else dict(_option(o) for o in args.option)
        config = TrainConfig(method=method, iterations=args.iterations, time_budget=None, device=args.device,
                             method_options=options,
                             holdout=HoldoutConfig(fraction=0.0))  # fmt: skip
        times, last, stage_of = [], None, stages_of(method)
        for event in train(data, config):
            if isinstance(event, Step):
                float(event.losses["total"])  # wait for the step (a GPU would queue it otherwise)
                now = time.perf_counter()
                if last is not None:
                    times.append((stage_of(event.iteration, args.iterations), now - last))
                last = now
        stages = sorted({s for s, _ in times})
        per_stage = {s: 1000 * float(np.median([t for k, t in times if k == s])) for s in stages}
        mean = 1000 * float(np.mean([t for _, t in times]))
        rows.append({"method": method, "ms_per_stage": per_stage, "ms_mean": mean, "device": args.device,
                     "threads": torch.get_num_threads(), "iterations": args.iterations})  # fmt: skip
    base = next(r["ms_mean"] for r in rows if r["method"] == "supervised")
    print("\n| method | ms per step, each stage (median) | mean over the schedule | x supervised (mean, worst stage) |")
    print("|---|---|---|---|")
    for r in rows:
        stages = " / ".join(f"{v:.0f}" for v in r["ms_per_stage"].values())
        worst = max(r["ms_per_stage"].values()) / base
        print(f"| {r['method']} | {stages} | {r['ms_mean']:.0f} | {r['ms_mean'] / base:.1f}, {worst:.1f} |")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(rows, indent=1))
    print(f"\nmethods known: {sorted(METHODS)}")


if __name__ == "__main__":
    main()
