"""Training throughput and whole-volume inference time on the full Colin27 volume (181 x 217 x 181).

Usage: python benchmarks/core_speed.py [--device auto] [--iterations 60] [--norm group]
Prints markdown tables; the volume is fetched from the Debian package mricron-data (benchmarks/datasets.py).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from datasets import load_dataset  # noqa: E402

from napari_contrastseg.core.config import NORMS, NetworkConfig, TrainConfig  # noqa: E402
from napari_contrastseg.core.data import SegmentationData  # noqa: E402
from napari_contrastseg.core.device import describe_device, select_device  # noqa: E402
from napari_contrastseg.core.events import Finished, Started, Step  # noqa: E402
from napari_contrastseg.core.trainer import train  # noqa: E402
from napari_contrastseg.samples.protocol import paint_slices  # noqa: E402

CASES = [  # (label, method, patch, batch, dims, options)
    ("supervised 2D", "supervised", 64, 4, "2d", {}),
    ("supervised 2D", "supervised", 128, 4, "2d", {}),
    ("supervised 2D", "supervised", 256, 8, "2d", {}),
    ("supervised 3D", "supervised", 48, 2, "3d", {}),
    ("semicontrast 2D (global stage)", "semicontrast", 64, 4, "2d", {"global_fraction": 1.0}),
    ("semicontrast 2D (local, stride 4)", "semicontrast", 64, 4, "2d",
     {"global_fraction": 0.0, "local_fraction": 1.0, "local_mode": "stride"}),
    ("action 2D (stage 3, AnCo)", "action", 64, 4, "2d", {"global_fraction": 0.0, "local_fraction": 0.0}),
]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--iterations", type=int, default=40)
    parser.add_argument("--tiles", default="64,128,256")
    parser.add_argument("--overlaps", default="0.25", help="comma-separated tile overlaps to time")
    parser.add_argument("--inference-only", action="store_true", help="time prediction with an untrained network")
    parser.add_argument("--norm", choices=NORMS, default="batch", help="the U-Net's normalisation layer")
    args = parser.parse_args()
    network = NetworkConfig(norm=args.norm)
    device = select_device(args.device)
    vol = load_dataset("colin27-deep")
    painted = paint_slices(vol.ground_truth, 3, axis=-1)
    data = SegmentationData(vol.image, painted, vol.class_names, vol.spacing)
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"device {describe_device(device)}; volume {vol.image.shape}\n")  # fmt: skip
    model = None if not args.inference_only else _untrained(data, args.device, network)
    cases = [] if args.inference_only else CASES
    if cases:
        print("| case | crop | batch | iterations/s | crops/s |\n|---|---|---|---|---|")
    for label, method, patch, batch, dims, options in cases:
        config = TrainConfig(method=method, iterations=args.iterations, patch_size=patch, batch_size=batch, dims=dims,
                             device=args.device, method_options=options, network=network)  # fmt: skip
        rate = 0.0
        for event in train(data, config):
            if isinstance(event, Step) and event.iteration == 5:
                start = time.perf_counter()
            elif isinstance(event, Step) and event.iteration == args.iterations:
                rate = (args.iterations - 5) / (time.perf_counter() - start)
            elif isinstance(event, Started):
                crop = "x".join(map(str, event.patch_size))
            elif isinstance(event, Finished) and label == "supervised 2D" and patch == 64:
                model = event.model
        print(f"| {label} | {crop} | {batch} | {rate:.2f} | {rate * batch:.1f} |", flush=True)
    print(f"\n| inference (2D model, 64 px crops, {args.norm} norm) | tile | overlap | seconds | voxels/s |")
    print("|---|---|---|---|---|")
    for tile in (int(t) for t in args.tiles.split(",")):
        for overlap in (float(o) for o in args.overlaps.split(",")):
            model.predict(vol.image[:, :, :8], tile_size=tile, device=args.device)  # warm-up
            start = time.perf_counter()
            model.predict(vol.image, tile_size=tile, overlap=overlap, device=args.device, probabilities=False)
            seconds = time.perf_counter() - start
            print(f"| 181x217x181 slice-wise | {tile} | {overlap} | {seconds:.1f} | {vol.image.size / seconds:.3g} |")


def _untrained(data: SegmentationData, device: str, network: NetworkConfig):
    """A model of the default shape after one step: prediction speed does not depend on the weights."""
    config = TrainConfig(iterations=1, patch_size=64, device=device, network=network)
    return next(e.model for e in train(data, config) if isinstance(e, Finished))


if __name__ == "__main__":
    main()
