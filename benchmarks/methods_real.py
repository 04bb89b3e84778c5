"""Methods side by side on real volumes with few painted slices (protocol: shared/docs/benchmark-protocol.md).

Every network method gets the same iteration budget; scores count only voxels of never-painted slices; each run
also scores checkpoints so that Dice can be plotted against wall-clock training time.

Example (what docs/benchmarks.md reports):
    python benchmarks/methods_real.py --datasets colin27-deep --paint slices:3 --seeds 0,1,2 \
        --methods rf-features,supervised,semicontrast-stride,action-cpu --iterations 600 --out results.json
Writes a JSON of all runs, prints markdown tables and saves PNG plots next to the JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from datasets import load_dataset  # noqa: E402
from rf_baseline import rf_segment  # noqa: E402

from napari_contrastseg.core.config import NORMS, NetworkConfig, TrainConfig  # noqa: E402
from napari_contrastseg.core.data import SegmentationData  # noqa: E402
from napari_contrastseg.core.events import Checkpoint, Failed, Finished  # noqa: E402
from napari_contrastseg.core.metrics import dice_per_class, hd95_per_class  # noqa: E402
from napari_contrastseg.core.model import load_model  # noqa: E402
from napari_contrastseg.core.trainer import train  # noqa: E402
from napari_contrastseg.samples import load_sample  # noqa: E402
from napari_contrastseg.samples.protocol import paint_scribbles, paint_slices, unpainted_mask  # noqa: E402

BLOCK_DIVISION = {"local_mode": "block", "block": 16}
#: ACTION's anatomical contrast at the reference sizes (the prototype from up to 512 keys per class)
ACTION_REFERENCE_SIZES = {"representation_dim": 512, "anco_queries": 256, "anco_negatives": 512, "anco_keys": 512}

#: method label -> (registry method, options). Options that differ from the reference are named in the label.
NETWORK_METHODS = {
    "supervised": ("supervised", {}),
    "semicontrast-exact": ("semicontrast", {"local_mode": "exact"}),
    "semicontrast-stride": ("semicontrast", {"local_mode": "stride", "stride": 4}),
    "semicontrast-block": ("semicontrast", BLOCK_DIVISION),
    # the same with 75 % of the budget left for fine-tuning (stages 10 % / 15 % / 75 % instead of 25 / 35 / 40)
    "semicontrast-block-ft75": ("semicontrast", {**BLOCK_DIVISION, "global_fraction": 0.1, "local_fraction": 0.15}),
    "action": ("action", ACTION_REFERENCE_SIZES),
    "action-cpu": (
        "action",
        {**ACTION_REFERENCE_SIZES, "representation_dim": 128, "anco_queries": 64, "anco_negatives": 128},
    ),
    "action-cpu32": ("action", {}),  # the CPU defaults since 2026-12-03: 128-d, 32 queries, 32 keys, 256 negatives
}


def paint(truth: np.ndarray, spec: str, seed: int) -> np.ndarray:
    """``slices:N`` or ``scribbles:N`` as the protocol defines them."""
    kind, n = spec.split(":")
    return paint_slices(truth, int(n), axis=-1) if kind == "slices" else paint_scribbles(truth, int(n), -1, seed)


def score(pred: np.ndarray, truth: np.ndarray, mask: np.ndarray, spacing, with_hd95: bool) -> dict:
    classes = list(range(2, int(truth.max()) + 1))
    dice = dice_per_class(pred, truth, classes, mask)
    out = {"dice": {str(c): d for c, d in dice.items()}, "mean_dice": float(np.nanmean(list(dice.values())))}
    if with_hd95:
        hd = hd95_per_class(pred, truth, classes, mask, spacing)
        out["hd95"] = {str(c): h for c, h in hd.items()}
        out["mean_hd95"] = float(np.nanmean([h for h in hd.values() if np.isfinite(h)]))
    return out


def run_network(vol, painted, mask, label, seed, args, workdir: Path) -> dict:
    method, options = NETWORK_METHODS[label]
    config = TrainConfig(method=method, iterations=args.iterations, patch_size=args.patch, batch_size=args.batch,
                         seed=seed, device=args.device, method_options=options, network=NetworkConfig(norm=args.norm),
                         checkpoint_every=max(1, args.iterations // args.curve_points))  # fmt: skip
    data = SegmentationData(vol.image, painted, vol.class_names, vol.spacing)
    curve, start, paused = [], time.perf_counter(), 0.0
    for event in train(data, config, checkpoint_dir=workdir):
        if isinstance(event, Checkpoint) and event.iteration < args.iterations:
            t0 = time.perf_counter()  # scoring a checkpoint is not training time
            pred = load_model(event.path).predict(vol.image, device=args.device, probabilities=False).labels
            curve.append(
                [t0 - start - paused, event.iteration, score(pred, vol.ground_truth, mask, None, False)["mean_dice"]]
            )
            paused += time.perf_counter() - t0
        elif isinstance(event, Failed):
            raise RuntimeError(event.message)
        elif isinstance(event, Finished):
            model, seconds = event.model, event.seconds - paused
    t0 = time.perf_counter()
    pred = model.predict(vol.image, device=args.device, probabilities=False).labels
    predict_seconds = time.perf_counter() - t0
    result = score(pred, vol.ground_truth, mask, vol.spacing, True)
    curve.append([seconds, args.iterations, result["mean_dice"]])
    return {**result, "train_seconds": seconds, "predict_seconds": predict_seconds, "curve": curve}


def main() -> None:
    warnings.filterwarnings("ignore", module="monai")  # empty-class HD95 notes; NaN is reported as such
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="colin27-deep", help="names, or sample:NAME for a bundled crop")
    parser.add_argument("--paint", default="slices:3")
    parser.add_argument("--methods", default="rf-features,supervised,semicontrast-stride,action-cpu")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--iterations", type=int, default=600)
    parser.add_argument("--patch", type=int, default=64)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--norm", choices=NORMS, default="batch", help="the U-Net's normalisation layer")
    parser.add_argument("--curve-points", type=int, default=4)
    parser.add_argument("--out", type=Path, default=Path("benchmark-results/methods.json"))
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    runs = json.loads(args.out.read_text()) if args.out.exists() else []
    done = {(r["dataset"], r["paint"], r["method"], r.get("norm", "batch"), r["seed"]) for r in runs}
    for name in args.datasets.split(","):
        vol = load_sample(name.removeprefix("sample:")) if name.startswith("sample:") else load_dataset(name)
        for spec in args.paint.split(","):
            for seed in (int(s) for s in args.seeds.split(",")):
                painted = paint(vol.ground_truth, spec, seed)
                mask = unpainted_mask(painted, 2)
                for label in args.methods.split(","):
                    if (name, spec, label, args.norm, seed) in done:
                        continue
                    print(f"{name} {spec} seed {seed}: {label} ...", flush=True)
                    if label == "rf-features":
                        start = time.perf_counter()
                        pred = rf_segment(vol.image, painted, seed=seed)
                        seconds = time.perf_counter() - start
                        result = score(pred, vol.ground_truth, mask, vol.spacing, True)
                        result.update(train_seconds=seconds, predict_seconds=0.0, curve=[])
                    else:
                        result = run_network(vol, painted, mask, label, seed, args, args.out.parent / "checkpoints")
                    runs.append({"dataset": name, "paint": spec, "method": label, "seed": seed,
                                 "iterations": args.iterations, "norm": args.norm, **result})  # fmt: skip
                    args.out.write_text(json.dumps(runs, indent=1))
                    print(f"  mean Dice {result['mean_dice']:.3f} in {result['train_seconds']:.0f} s", flush=True)
    from report_methods import report

    report(runs, args.out.parent)


if __name__ == "__main__":
    main()
