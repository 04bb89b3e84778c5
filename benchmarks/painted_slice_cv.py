"""Leave-one-painted-slice-out: compare training settings using only the painting, never a scored voxel.

For each task of the suite, paint the protocol slices (or scribbles), then for each painted slice k train on the
other painted slices and score slice k's own painting (all of it for whole slices, only the strokes for scribbles),
as a user could with their own painting. Network runs train as the defaults do (TrainConfig()), changed by
``--set`` (the same syntax as suite.py); the rule that picks among settings is written before the runs
(docs/benchmarks.md, "How the defaults were chosen").

Example (what docs/benchmarks.md reports):
    python benchmarks/painted_slice_cv.py --label context-0 --set network.context=0 \
        --out docs/results/defaults-cv/cv.json
Appends every fold to the JSON (runs already there are skipped) and prints the table of every label in it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections import defaultdict
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from datasets import SUITE, load_volume  # noqa: E402
from scoring import paint, score  # noqa: E402
from suite import METHODS, pause_point, run_forest, run_network, slice_by_slice, with_settings  # noqa: E402

from napari_contrastseg.core.config import ForestConfig, TrainConfig  # noqa: E402
from napari_contrastseg.core.data import as_channels_first  # noqa: E402
from napari_contrastseg.core.forest import PixelForest, slices_first  # noqa: E402
from napari_contrastseg.core.normalization import normalize  # noqa: E402
from napari_contrastseg.samples.protocol import painted_slice_indices  # noqa: E402

#: Slices on each side of the held-out one that are predicted with it (neighbours as input channels).
SLAB = 2


def folds(painted: np.ndarray, axis: int = -1) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """``(slice index, painting without that slice, mask of that slice)`` for every painted slice along ``axis``."""
    out = []
    for index in painted_slice_indices(painted, axis):
        rest = painted.copy()
        np.moveaxis(rest, axis, 0)[index] = 0
        mask = np.zeros(painted.shape, bool)
        np.moveaxis(mask, axis, 0)[index] = True
        out.append((index, rest, mask))
    return out


def held_out_score(pred_slab: np.ndarray, painted: np.ndarray, index: int, axis: int) -> dict:
    """Dice of the held-out slice's painted voxels (``pred_slab``: the slice's prediction, same shape)."""
    truth = np.take(painted, index, axis=axis)
    return score(pred_slab, truth, truth > 0, None, False)


def _slab(volume: np.ndarray, index: int, axis: int) -> tuple[np.ndarray, int]:
    """The slices ``index ± SLAB`` along ``axis`` and where ``index`` lies in them."""
    lo, hi = max(0, index - SLAB), min(volume.shape[axis], index + SLAB + 1)
    return np.take(volume, range(lo, hi), axis=axis), index - lo


def forest_blend(model, vol, rest: np.ndarray, index: int, slab: np.ndarray, at: int, weight: float,
                 forest_config: ForestConfig, seed: int, smooth: bool = False, dump: Path | None = None):  # fmt: skip
    """The held-out slice as the network predicts it alone, as a forest (:class:`PixelForest` with
    ``forest_config``, on the network's filter scales, fitted on the fold's whole painting) predicts it, as the
    average ``(1 - weight) * network + weight * forest`` of their probabilities, as that average with the weight
    the run chose (the model's) and, with ``smooth``, as the first average smoothed through the plane (RULE.md
    addendum 12: ``(p[z-1] + 2 p[z] + p[z+1]) / 4``, edge slices repeated); and the forest's seconds (fit and
    prediction of the held-out slice). All come from the same trained network (a paired comparison). ``dump``:
    also save the network's and the forest's probabilities of the slices ``index - 1, index, index + 1`` (edges
    repeated) there, ``(3, K, *s)`` each as float16, for :mod:`report_blend_cv`."""
    alone = slice_by_slice(model, forest=False)
    near = np.clip(np.arange(at - 1, at + 2), 0, slab.shape[vol.slice_axis] - 1)  # at-1, at, at+1 in the slab
    networks = np.take(alone.predict(slab, probabilities=True).probabilities, near, axis=vol.slice_axis + 1)
    networks = np.moveaxis(networks, vol.slice_axis + 1, 0)  # (3, K, *s)
    network = networks[1]
    start = time.perf_counter()
    image = normalize(as_channels_first(vol.image, None), model.info.normalization)
    stack = slices_first(image, rest, np.zeros_like(rest), vol.slice_axis)
    forest, _ = PixelForest.fit([stack], tuple(model.info.network.filters), forest_config, seed)
    trees = forest.probabilities(stack[0][:, index], network.shape[0])
    seconds = time.perf_counter() - start
    chosen = model.info.forest_weight or weight  # 0: the run had no forest of its own
    blends = [(1 - w) * network + w * trees for w in (weight, chosen)]
    if smooth or dump is not None:  # the neighbours: the volume's slices at-1 and at+1 (edges repeated)
        beside = [index + near[i] - at for i in (0, 2)]
        before, after = (forest.probabilities(stack[0][:, z], network.shape[0]) for z in beside)
        if dump is not None:
            forests = np.stack([before, trees, after]).astype(np.float16)
            np.savez_compressed(dump, network=networks.astype(np.float16), forest=forests)
        if smooth:
            before, after = ((1 - weight) * networks[i] + weight * f for i, f in ((0, before), (2, after)))
            blends.append((before + 2 * blends[0] + after) / 4)
    return [p.argmax(axis=0).astype(np.uint8) + 1 for p in (network, trees, *blends)], seconds


def main() -> None:
    warnings.filterwarnings("ignore", module="monai")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default=",".join(SUITE))
    parser.add_argument("--paint", default="slices:3")
    parser.add_argument("--method", default="default", help=f"rf-features or {', '.join(METHODS)}")
    parser.add_argument("--label", default="default")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="TrainConfig change (JSON)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--forest-blend", type=float, metavar="WEIGHT",
                        help="also score, from the same network, a forest alone (LABEL+forest; its settings: the run's "
                        "forest.*) and the average of their probabilities with this weight on the forest "
                        "(LABEL+blend)")  # fmt: skip
    parser.add_argument(
        "--smooth",
        action="store_true",
        help="with --forest-blend, also score that blend smoothed through the plane (LABEL+smooth)",
    )
    parser.add_argument("--dump", type=Path, metavar="DIR",
                        help="with --forest-blend, save each fold's network and forest probabilities of the held-out "
                        "slice and its neighbours, and its painting, in DIR (for report_blend_cv.py)")  # fmt: skip
    parser.add_argument(
        "--forest-seed",
        choices=("paint", "training"),
        default="paint",
        help="seed the blend's forest with the painting's seed (as before) or the training seed",
    )
    parser.add_argument("--out", type=Path, default=Path("benchmark-results/painted-slice-cv.json"))
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    runs = json.loads(args.out.read_text()) if args.out.exists() else []
    done = {(r["dataset"], r["paint"], r["label"], r["seed"], r["held_out_slice"]) for r in runs}
    for name in args.datasets.split(","):
        vol = load_volume(name)
        axis = vol.slice_axis
        painted = paint(vol.ground_truth, args.paint, args.seed, axis)
        for index, rest, _ in folds(painted, axis):
            if (name, args.paint, args.label, args.seed, index) in done:
                continue
            pause_point()
            slab, at = _slab(vol.image, index, axis)
            if args.method == "rf-features":
                result = run_forest(vol, rest, args.seed)
                pred = np.take(result.pop("prediction"), index, axis=axis)
            else:
                config = with_settings(TrainConfig(method=METHODS[args.method], seed=args.seed, device=args.device),
                                       args.set)  # fmt: skip
                if args.forest_blend is None:
                    result = run_network(vol, rest, config, lambda m, s=slab: m.predict(s, probabilities=False).labels)
                    pred = np.take(result.pop("prediction"), at, axis=axis)
                else:
                    dump = None
                    if args.dump is not None:
                        args.dump.mkdir(parents=True, exist_ok=True)
                        dump = args.dump / f"{name}.{args.label}.{index}.npz"
                        np.save(dump.with_suffix(".truth.npy"), np.take(painted, index, axis=axis))
                    forest_seed = args.seed if args.forest_seed == "paint" else config.seed
                    blend = partial(forest_blend, vol=vol, rest=rest, index=index, slab=slab, at=at,
                                    weight=args.forest_blend, forest_config=config.forest, seed=forest_seed,
                                    smooth=args.smooth, dump=dump)  # fmt: skip
                    result = run_network(vol, rest, config, blend)
                    (pred, *paired), forest_seconds = result.pop("prediction")
                    chosen = (result.get("forest_blend") or {}).get("weight") or args.forest_blend  # as blended
                    suffixes = ("+forest", "+blend", "+chosen", "+smooth")[: len(paired)]
                    for suffix, other in zip(suffixes, paired, strict=True):
                        runs.append({"dataset": name, "paint": args.paint, "label": args.label + suffix,
                                     "settings": args.set, "seed": args.seed, "held_out_slice": index,
                                     "forest_weight": chosen if suffix == "+chosen" else args.forest_blend,
                                     "forest_seconds": forest_seconds,
                                     "train_seconds": result["train_seconds"],
                                     **held_out_score(other, painted, index, axis)})  # fmt: skip
            result.update(held_out_score(pred, painted, index, axis))
            runs.append({"dataset": name, "paint": args.paint, "label": args.label, "settings": args.set,
                         "seed": args.seed, "held_out_slice": index, **result})  # fmt: skip
            args.out.write_text(json.dumps(runs, indent=1))
            print(f"{name} slice {index}: {args.label} Dice {result['mean_dice']:.3f} "
                  f"in {result['train_seconds']:.0f} s", flush=True)  # fmt: skip
    table(runs)


def table(runs: list[dict]) -> dict[str, float]:
    """Print per task and label the mean over folds; return each label's mean over tasks (the CV score)."""
    by = defaultdict(list)
    for r in runs:
        if np.isfinite(r["mean_dice"]):
            by[(r["dataset"], r["paint"], r["label"])].append(r["mean_dice"])
    labels = sorted({k[2] for k in by})
    tasks = sorted({(k[0], k[1]) for k in by})
    print("\n| task | painting | " + " | ".join(labels) + " |\n|---|---|" + "---|" * len(labels))
    for dataset, spec in tasks:
        row = [f"{np.mean(by[(dataset, spec, lab)]):.3f}" if by.get((dataset, spec, lab)) else "" for lab in labels]
        print(f"| {dataset} | {spec} | " + " | ".join(row) + " |")
    scores = {}
    for lab in labels:
        per_task = [np.mean(by[(d, p, lab)]) for d, p in tasks if by.get((d, p, lab))]
        complete = len(per_task) == len(tasks)
        scores[lab] = float(np.mean(per_task)) if complete else float("nan")
    print("| **mean over tasks** | | " + " | ".join(f"**{scores[lab]:.3f}**" for lab in labels) + " |")
    return scores


if __name__ == "__main__":
    main()
