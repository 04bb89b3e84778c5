"""The development suite: every task and painting, the random forest against the network at its defaults.

Tasks (benchmarks/datasets.py): colin27-deep, icbm-tissue, colin27-small, stardist-nuclei3d and three pyradiomics
lesions; paintings slices:1, slices:3, scribbles:3 along each task's slice axis. A network run trains exactly as
``contrastseg train IMAGE LABELS`` does with no options (TrainConfig() defaults: its time budget, held-out stop
rule and augmentation), unless ``--set`` changes a field; scores count only never-painted slices.

Example (what docs/benchmarks.md reports):
    python benchmarks/suite.py --methods rf-features,default --seeds 0,1,2 --out docs/results/suite/default.json
    python benchmarks/suite.py --methods default --label long --set time_budget=600 --seeds 0 --out ...
    python benchmarks/suite.py --methods default --label smooth-paired --paired-flat --paint slices:1 --seeds 0 ...
    python benchmarks/suite.py --methods semicontrast,action --pretrain --paint slices:1,scribbles:3 --seeds 0 ...
Runs already in the output file are skipped, so an interrupted run resumes. Prints tables, writes a plot.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from dataclasses import fields, replace
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from datasets import SUITE, Volume, load_dataset  # noqa: E402
from rf_baseline import rf_segment  # noqa: E402
from scoring import paint, painted_slice_volumes, score  # noqa: E402

from napari_contrastseg.core.config import TrainConfig  # noqa: E402
from napari_contrastseg.core.data import SegmentationData  # noqa: E402
from napari_contrastseg.core.events import Estimate, Failed, Finished  # noqa: E402
from napari_contrastseg.core.model import TrainedModel  # noqa: E402
from napari_contrastseg.core.trainer import train, train_model  # noqa: E402
from napari_contrastseg.samples.protocol import unpainted_mask  # noqa: E402

PAINTINGS = "slices:1,slices:3,scribbles:3"
#: method label -> the engine's method; "default" is what a user gets with no options
METHODS = {"default": "supervised", "supervised": "supervised", "semicontrast": "semicontrast", "action": "action"}


def pause_point() -> None:
    """Wait while the file named by ``$CONTRASTSEG_BENCH_PAUSE`` exists (so that other work on the machine does
    not share the cores with a timed run); called before each run."""
    flag = os.environ.get("CONTRASTSEG_BENCH_PAUSE")
    while flag and Path(flag).exists():
        time.sleep(5)


def stored_runs(path: Path) -> tuple[list[dict], set[tuple[str, str, str, int]]]:
    """The runs already in ``path`` (none if it does not exist; its folder is created) and their (task, painting,
    method, seed) keys, so that a rerun goes on where the last one stopped."""
    path.parent.mkdir(parents=True, exist_ok=True)
    runs = json.loads(path.read_text()) if path.exists() else []
    return runs, {(r["dataset"], r["paint"], r["method"], r["seed"]) for r in runs}


def with_settings(config: TrainConfig, settings: list[str]) -> TrainConfig:
    """``config`` with ``key=value`` changes (JSON values; dotted keys reach nested configs, e.g. holdout.fraction)."""
    for item in settings:
        key, _, text = item.partition("=")
        value = json.loads(text)
        config = _set(config, key.split("."), value)
    return config


def _set(obj, path: list[str], value):
    names = {f.name for f in fields(obj)}
    if path[0] not in names:
        raise SystemExit(f"unknown setting {path[0]!r} of {type(obj).__name__}; known: {sorted(names)}")
    inner = getattr(obj, path[0])
    if len(path) > 1:
        value = _set(inner, path[1:], value)
    elif isinstance(inner, tuple):
        value = tuple(value)
    return replace(obj, **{path[0]: value})


def run_network(vol: Volume, painted: np.ndarray, config: TrainConfig, predict=None,
                initial_model: TrainedModel | None = None) -> dict:  # fmt: skip
    """Train on ``painted`` (from ``initial_model``'s weights when given) and predict (the whole volume, or what
    ``predict(model)`` returns); what the run did (scores are added by the caller)."""
    data = SegmentationData(vol.image, painted, vol.class_names, vol.spacing)
    estimates: list[dict] = []
    for event in train(data, config, initial_model=initial_model):
        if isinstance(event, Estimate):
            estimates.append({"iteration": event.iteration, "seconds": event.seconds, "mean": event.mean})
        elif isinstance(event, Failed):
            raise RuntimeError(event.message)
        elif isinstance(event, Finished):
            finished = event
    start = time.perf_counter()
    model = finished.model
    pred = (
        model.predict(vol.image, device=config.device, probabilities=False).labels
        if predict is None
        else predict(model)
    )
    estimate = finished.estimate
    return {
        "prediction": pred,
        "train_seconds": finished.seconds,
        "predict_seconds": time.perf_counter() - start,
        "iterations": finished.iteration,
        "stop_reason": finished.stop_reason,
        "estimate": None if estimate is None else {"dice": estimate.dice, "mean": estimate.mean},
        "estimates": estimates,
        "forest": model.info.training.get("forest"),  # forest labels: the gate's held-out Dice and decision
        "forest_blend": model.info.training.get("forest_blend"),  # the forest's weight and seconds
        "growth": model.info.training.get("growth"),  # grown pseudo-labels: growths and voxels labelled
    }


def pretrain(vol: Volume, config: TrainConfig) -> TrainedModel:
    """``config``'s method pre-trained on ``vol``'s image alone (its label-free stage, ``pretrain=True``, for the
    config's budget) along the task's slice axis, as napari's and Slicer's Pre-train runs while the user paints."""
    data = SegmentationData(vol.image, np.zeros(vol.image.shape, np.uint8), vol.class_names, vol.spacing)
    return train_model(data, replace(config, pretrain=True, slice_axis=vol.slice_axis))


def slice_by_slice(model: TrainedModel, forest: bool = True) -> TrainedModel:
    """The same weights predicting each slice on its own (no smoothing through the plane) and, unless ``forest``,
    without the model's forest."""
    network = replace(model.info.network, through_plane=False)
    if forest:
        return TrainedModel(model.network, replace(model.info, network=network), model.forest)
    return TrainedModel(model.network, replace(model.info, network=network, forest_weight=0.0))


def with_and_without_smoothing(model: TrainedModel, image: np.ndarray, device: str) -> list[np.ndarray]:
    """The labels as ``model`` predicts ``image``, and as the same weights and forest predict it without smoothing
    through the plane (a paired comparison)."""
    return [m.predict(image, device=device, probabilities=False).labels for m in (model, slice_by_slice(model))]


def run_forest(vol: Volume, painted: np.ndarray, seed: int) -> dict:
    start = time.perf_counter()
    pred = rf_segment(vol.image, painted, axis=vol.slice_axis, seed=seed)
    return {"prediction": pred, "train_seconds": time.perf_counter() - start, "predict_seconds": 0.0}


def main() -> None:
    warnings.filterwarnings("ignore", module="monai")  # empty-class HD95 notes; NaN is reported as such
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default=",".join(SUITE))
    parser.add_argument("--paint", default=PAINTINGS)
    parser.add_argument("--methods", default="rf-features,default", help=f"rf-features or {', '.join(METHODS)}")
    parser.add_argument("--label", help="name of the network runs in the results (default: the method)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="TrainConfig change (JSON)")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--paired-flat",
        action="store_true",
        help="also score each network run's model without smoothing through the plane (LABEL+flat)",
    )
    parser.add_argument(
        "--pretrain",
        action="store_true",
        help="pre-train each network method on the unpainted image first (once per task and seed, the run's "
        "settings, pretrain=true), as while the user paints, and start every painting's run from it (LABEL+pretrain)",
    )
    parser.add_argument("--out", type=Path, default=Path("benchmark-results/suite.json"))
    args = parser.parse_args()
    runs, done = stored_runs(args.out)
    for name in args.datasets.split(","):
        vol = load_dataset(name)
        pretrained: dict[tuple[str, int], tuple[TrainedModel, float]] = {}  # (method, seed): model, seconds
        for spec in args.paint.split(","):
            for seed in (int(s) for s in args.seeds.split(",")):
                painted = paint(vol.ground_truth, spec, seed, vol.slice_axis)
                mask = unpainted_mask(painted, vol.slice_axis)
                for method in args.methods.split(","):
                    label = "rf-features" if method == "rf-features" else args.label or method
                    label += "+pretrain" if args.pretrain and method != "rf-features" and not args.label else ""
                    if (name, spec, label, seed) in done:
                        continue
                    pause_point()
                    print(f"{name} {spec} seed {seed}: {label} ...", flush=True)
                    if method == "rf-features":
                        result = run_forest(vol, painted, seed)
                    else:
                        config = TrainConfig(method=METHODS[method], seed=seed, device=args.device)
                        config = with_settings(config, args.set)
                        if args.pretrain and (method, seed) not in pretrained:
                            start = time.perf_counter()
                            pretrained[method, seed] = pretrain(vol, config), time.perf_counter() - start
                        initial, pretrain_seconds = pretrained.get((method, seed), (None, 0.0))
                        both = partial(with_and_without_smoothing, image=vol.image, device=args.device)
                        result = run_network(vol, painted, config, both if args.paired_flat else None, initial)
                        result["settings"] = args.set
                        result["pretrain_seconds"] = pretrain_seconds
                    pred = result.pop("prediction")
                    paired = [pred] if isinstance(pred, np.ndarray) else pred  # with --paired-flat: and unsmoothed
                    names = (label, label + "+flat")[: len(paired)]
                    for named, labels in reversed(list(zip(names, paired, strict=True))):
                        scored = {**result, **score(labels, vol.ground_truth, mask, vol.spacing, True)}
                        scored["painted_slice_volumes"] = painted_slice_volumes(labels, painted, vol.slice_axis)
                        runs.append({"dataset": name, "paint": spec, "method": named, "seed": seed, **scored})
                    result = scored  # the model's own (appended last: a rerun skips only when it is there)
                    args.out.write_text(json.dumps(runs, indent=1))
                    shown = result.get("estimate") or {}
                    print(f"  mean Dice {result['mean_dice']:.3f} (estimate {shown.get('mean', float('nan')):.3f})"
                          f" in {result['train_seconds']:.0f} s", flush=True)  # fmt: skip
    from report_suite import report

    report(runs, args.out.with_suffix(".png"))


if __name__ == "__main__":
    main()
