"""A simulated annotator: paints where the tool says, round after round, and we watch the Dice and the clock.

Per task of the suite: start from the protocol's 1 painted slice, train at the default budget, then repeat: ask for
the next slice (``suggest_slices``, the function behind ``contrastseg suggest`` and napari's and Slicer's buttons),
paint it whole from the ground truth, Continue from the current weights for the default budget (``tool:NAME`` per
suggestion strategy NAME, ``--suggest``). Compared with: ``random`` (a random unpainted slice, Continue the same
way) and ``even`` (the protocol's N evenly spaced slices, trained from scratch). In each round of the first tool
strategy two more runs on the same painting measure Continue against training from scratch: ``scratch`` (a new
model, the full budget) and ``continue-half`` (Continue for half the budget). Dice counts the slices never painted
so far; the reference is the Dice of 10 evenly spaced slices.

Example (what docs/benchmarks.md reports):
    python benchmarks/annotator.py --rounds 4 --seeds 0 --out docs/results/annotator/annotator.json
Runs already in the file are skipped; prints tables and writes plots next to the JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from datasets import SUITE, load_volume  # noqa: E402
from scoring import paint, score  # noqa: E402
from suite import pause_point  # noqa: E402

from napari_contrastseg.core.config import TrainConfig  # noqa: E402
from napari_contrastseg.core.data import SegmentationData  # noqa: E402
from napari_contrastseg.core.events import Finished  # noqa: E402
from napari_contrastseg.core.suggest import DEFAULT_STRATEGY, STRATEGIES, suggest_slices  # noqa: E402
from napari_contrastseg.core.trainer import train  # noqa: E402
from napari_contrastseg.samples.protocol import painted_slice_indices, unpainted_mask  # noqa: E402

REFERENCE_SLICES = 10


def fit(vol, painted, config, initial=None):
    """Train (from ``initial`` if given); returns (model, seconds, Dice on never-painted slices, prediction)."""
    finished = next(e for e in train(SegmentationData(vol.image, painted, vol.class_names, vol.spacing), config,
                                     initial_model=initial) if isinstance(e, Finished))  # fmt: skip
    prediction = finished.model.predict(vol.image, probabilities=False)
    mask = unpainted_mask(painted, vol.slice_axis)
    dice = score(prediction.labels, vol.ground_truth, mask, None, False)["mean_dice"]
    return finished.model, finished.seconds, dice, prediction


def with_slice(vol, painted, index):
    """``painted`` with slice ``index`` (along the task's axis) painted whole from the ground truth."""
    out = painted.copy()
    where = [slice(None)] * 3
    where[vol.slice_axis] = index
    out[tuple(where)] = vol.ground_truth[tuple(where)]
    return out


def next_slice(strategy: str, vol, painted, prediction, rng) -> int:
    """The slice a walker paints next: ``tool:NAME`` asks ``suggest_slices`` with strategy NAME, ``random`` draws."""
    if strategy == "random":
        return int(rng.choice(sorted(set(range(painted.shape[vol.slice_axis])) -
                                     set(painted_slice_indices(painted, vol.slice_axis)))))  # fmt: skip
    picks = suggest_slices(None, None, painted, 1, axis=vol.slice_axis, strategy=strategy.removeprefix("tool:"),
                           uncertainty=prediction.uncertainty, predicted=prediction.labels)  # fmt: skip
    return picks[0].index


def run_task(vol, seed: int, rounds: int, record, walkers: list[str], continue_check: bool, baseline=None) -> None:
    """Every strategy on one task; ``record(strategy, round, painted slices, seconds, dice, slice)`` stores a point.

    ``walkers``: the strategies that add one slice a round and Continue (``tool:NAME``, ``random``); with
    ``continue_check`` the first of them also measures Continue for half the budget against a new model.
    ``baseline``: this task's ``even`` and ``even-10`` points from an earlier file, recorded instead of trained."""
    config = TrainConfig(seed=seed, device="cpu")

    def evenly_spaced(strategy: str, k: int, count: int) -> None:
        if baseline is not None:
            p = baseline[(strategy, k)]
            record(strategy, k, p["painted"], p["train_seconds"], p["mean_dice"], reused=True)
            return
        even = paint(vol.ground_truth, f"slices:{count}", seed, vol.slice_axis)
        pause_point()
        _, seconds, dice, _ = fit(vol, even, config)
        record(strategy, k, len(painted_slice_indices(even, vol.slice_axis)), seconds, dice)

    half = replace(config, time_budget=config.time_budget / 2)
    rng = np.random.default_rng(seed)
    start = paint(vol.ground_truth, "slices:1", seed, vol.slice_axis)
    pause_point()
    model, seconds, dice, prediction = fit(vol, start, config)
    for strategy in walkers:
        record(strategy, 0, 1, seconds, dice)
    state = {strategy: (start, model, prediction) for strategy in walkers}
    for k in range(1, rounds + 1):
        for strategy in walkers:
            painted, model, prediction = state[strategy]
            index = next_slice(strategy, vol, painted, prediction, rng)
            painted = with_slice(vol, painted, index)
            pause_point()
            if continue_check and strategy == walkers[0]:  # Continue against from scratch, on the same painting
                _, s_scratch, d_scratch, _ = fit(vol, painted, config)
                record("scratch", k, k + 1, s_scratch, d_scratch)
                _, s_half, d_half, _ = fit(vol, painted, half, initial=model)
                record("continue-half", k, k + 1, s_half, d_half)
            new_model, seconds, dice, new_prediction = fit(vol, painted, config, initial=model)
            record(strategy, k, k + 1, seconds, dice, index)
            state[strategy] = (painted, new_model, new_prediction)
        evenly_spaced("even", k, k + 1)
    evenly_spaced(f"even-{REFERENCE_SLICES}", 0, REFERENCE_SLICES)


def reused_baseline(points: list[dict], name: str, seed: int, rounds: int) -> dict[tuple[str, int], dict]:
    """``(strategy, round)`` -> point of task ``name``'s evenly spaced runs with ``seed`` in an earlier file."""
    found = {(p["strategy"], p["round"]): p for p in points
             if (p["dataset"], p["seed"]) == (name, seed) and p["strategy"].startswith("even")}  # fmt: skip
    wanted = [("even", k) for k in range(1, rounds + 1)] + [(f"even-{REFERENCE_SLICES}", 0)]
    missing = [f"{s} round {k}" for s, k in wanted if (s, k) not in found]
    if missing:
        raise SystemExit(f"--baselines holds no {', '.join(missing)} of {name} seed {seed}")
    return found


def main() -> None:
    warnings.filterwarnings("ignore", module="monai")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default=",".join(SUITE))
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seeds", default="0")
    parser.add_argument(
        "--suggest",
        default=DEFAULT_STRATEGY,
        help=f"suggestion strategies to walk, comma-separated ({', '.join(STRATEGIES)})",
    )
    parser.add_argument("--no-random", action="store_true", help="leave out the random walker")
    parser.add_argument("--no-continue-check", action="store_true",
                        help="leave out Continue (half budget) against from scratch")  # fmt: skip
    parser.add_argument("--baselines", type=Path,
                        help="take the evenly spaced runs (even, even-10) of each task and seed from this earlier "
                             "file (same engine) instead of training them; they are marked reused")  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path("benchmark-results/annotator.json"))
    args = parser.parse_args()
    baselines = json.loads(args.baselines.read_text()) if args.baselines else None
    tasks = [(name, int(seed)) for name in args.datasets.split(",") for seed in args.seeds.split(",")]
    reused = {task: reused_baseline(baselines, *task, args.rounds) for task in tasks} if baselines else {}
    walkers = [f"tool:{name}" for name in args.suggest.split(",")] + ([] if args.no_random else ["random"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    points = json.loads(args.out.read_text()) if args.out.exists() else []
    done = {(p["dataset"], p["seed"]) for p in points if p["strategy"] == "even-10"}
    for name in args.datasets.split(","):
        vol = load_volume(name)
        for seed in (int(s) for s in args.seeds.split(",")):
            if (name, seed) in done:
                continue
            task = [p for p in points if (p["dataset"], p["seed"]) != (name, seed)]  # a half-done task restarts

            def record(strategy, k, painted, seconds, dice, index=None, reused=False, name=name, seed=seed, task=task):
                task.append({"dataset": name, "seed": seed, "strategy": strategy, "round": k, "painted": painted,
                             "train_seconds": seconds, "mean_dice": dice, "slice": index}
                            | ({"reused_from": str(args.baselines)} if reused else {}))  # fmt: skip
                args.out.write_text(json.dumps(task, indent=1))
                print(f"{name} seed {seed} {strategy} round {k}: {painted} slices, Dice {dice:.3f} in {seconds:.0f} s",
                      flush=True)  # fmt: skip

            run_task(vol, seed, args.rounds, record, walkers, not args.no_continue_check, reused.get((name, seed)))
            points = task
    from report_annotator import report

    report(points, args.out.with_suffix(""))


if __name__ == "__main__":
    main()
