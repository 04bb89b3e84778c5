"""One rank of a data-parallel training run on the bundled colin27-deep crop (launched by benchmarks/ddp.py, tests).

Usage: python -m torch.distributed.run --standalone --nproc-per-node N benchmarks/ddp_worker.py --out DIR [...]
Each rank writes ``rank<R>.safetensors`` (its final weights and buffers); rank 0 also writes ``run.json``
(iterations/s over the run after a warm-up of 2 steps, world size, batch per rank, mean Dice on the never-painted
slices) and ``initial.safetensors``
(the weights the run started from).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from napari_contrastseg.cli.train import filter_scales
from napari_contrastseg.core import distributed
from napari_contrastseg.core.config import NetworkConfig, TrainConfig
from napari_contrastseg.core.data import SegmentationData
from napari_contrastseg.core.events import Failed, Finished, Step
from napari_contrastseg.core.metrics import dice_per_class
from napari_contrastseg.core.network import UNet
from napari_contrastseg.core.trainer import train
from napari_contrastseg.samples import load_sample
from napari_contrastseg.samples.protocol import unpainted_mask


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--method", default="supervised")
    parser.add_argument("--iterations", type=int, default=6)
    parser.add_argument("--batch", type=int, default=2, help="crops per rank and step")
    parser.add_argument("--patch", type=int, default=32)
    parser.add_argument("--features", default="8,16,32")
    parser.add_argument("--norm", default="batch")
    parser.add_argument("--filters", type=filter_scales, help="filter-bank scales, or none (default: the engine's)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per rank")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=JSON")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    distributed.init_from_environment("cpu")
    sample = load_sample("colin27-deep")
    data = SegmentationData(sample.image, sample.painted, sample.class_names, sample.spacing)
    config = TrainConfig(
        method=args.method,
        iterations=args.iterations,
        batch_size=args.batch,
        patch_size=args.patch,
        device="cpu",
        network=NetworkConfig(
            tuple(int(f) for f in args.features.split(",")),
            norm=args.norm,
            filters=NetworkConfig.filters if args.filters is None else args.filters,
        ),
        method_options={k: json.loads(v) for k, v in (o.split("=", 1) for o in args.option)},
    )
    start = None
    for event in train(data, config):
        if isinstance(event, Step) and event.iteration == 2:
            start = time.perf_counter()
        elif isinstance(event, Failed):
            raise SystemExit(f"rank {distributed.rank()}: {event.message}")
        elif isinstance(event, Finished):
            model = event.model
    seconds = time.perf_counter() - start
    args.out.mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous() for k, v in model.network.state_dict().items()}
    save_file(state, str(args.out / f"rank{distributed.rank()}.safetensors"))
    if distributed.rank() == 0:
        torch.manual_seed(config.seed)  # the trainer's initialisation, for the size of the weights' change
        initial = UNet(2, 1, len(data.names), config.network).state_dict()
        save_file({k: v.contiguous() for k, v in initial.items()}, str(args.out / "initial.safetensors"))
        run = {"world_size": distributed.world_size(), "batch_per_rank": args.batch, "seconds": seconds,
               "iterations_per_s": (args.iterations - 2) / seconds, "dice": _dice(model, sample)}  # fmt: skip
        (args.out / "run.json").write_text(json.dumps(run))
    distributed.shutdown()


def _dice(model, sample) -> float:
    """Mean foreground Dice on the never-painted slices of the sample."""
    labels = model.predict(sample.image, probabilities=False).labels
    classes = list(range(2, len(sample.class_names) + 1))
    mask = unpainted_mask(sample.painted, sample.painted_axis)
    return float(np.nanmean(list(dice_per_class(labels, sample.ground_truth, classes, mask).values())))


if __name__ == "__main__":
    main()
