"""Training speed and peak memory for the large-crop cases of issue 6 (meant for a GPU; runs on any device).

Usage: python benchmarks/gpu_speed.py [--device auto] [--iterations 50] [--compile] [--scale 1.0]
Cases: supervised 2D 256x256 crops batch 8 and 3D 96^3 patches batch 2 on the full Colin27 volume, and ACTION's
stage 3 in 2D; mixed precision (bf16 where supported) on CUDA. Peak memory is ``torch.cuda.max_memory_allocated``
on CUDA and the process's peak resident memory elsewhere. ``--scale 0.25`` shrinks the crops for a quick CPU check.
The exact local contrastive loss at N = 65,536 and 262,144 is measured by ``benchmarks/local_contrast_cost.py``.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from datasets import load_dataset  # noqa: E402

from napari_contrastseg.core.config import TrainConfig  # noqa: E402
from napari_contrastseg.core.data import SegmentationData  # noqa: E402
from napari_contrastseg.core.device import describe_device, select_device  # noqa: E402
from napari_contrastseg.core.events import Failed, Started, Step  # noqa: E402
from napari_contrastseg.core.trainer import train  # noqa: E402
from napari_contrastseg.samples.protocol import paint_slices  # noqa: E402

CASES = [  # (label, method, crop, batch, dims, options)
    ("supervised 2D", "supervised", 256, 8, "2d", {}),
    ("supervised 3D", "supervised", 96, 2, "3d", {}),
    ("action 2D stage 3", "action", 256, 8, "2d", {"global_fraction": 0.0, "local_fraction": 0.0}),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--compile", action="store_true", help="torch.compile the network")
    parser.add_argument("--scale", type=float, default=1.0, help="crop size factor (multiples of 16 kept)")
    args = parser.parse_args()
    device = select_device(args.device)
    vol = load_dataset("colin27-deep")
    data = SegmentationData(vol.image, paint_slices(vol.ground_truth, 3, axis=-1), vol.class_names, vol.spacing)
    print(f"device {describe_device(device)}, torch {torch.__version__}, compile {args.compile}\n")
    print("| case | crop | batch | iterations/s | crops/s | peak memory GiB |\n|---|---|---|---|---|---|")
    for label, method, crop, batch, dims, options in CASES:
        size = max(16, int(crop * args.scale) // 16 * 16)
        config = TrainConfig(method=method, iterations=args.iterations, patch_size=size, batch_size=batch, dims=dims,
                             device=args.device, compile=args.compile, method_options=options)  # fmt: skip
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        start, rate, shape, failure = None, 0.0, "", ""
        for event in train(data, config):
            if isinstance(event, Started):
                shape = "x".join(map(str, event.patch_size))
            elif isinstance(event, Step) and event.iteration == min(5, args.iterations - 1):
                start = time.perf_counter()
            elif isinstance(event, Step) and event.iteration == args.iterations and start is not None:
                rate = (args.iterations - min(5, args.iterations - 1)) / (time.perf_counter() - start)
            elif isinstance(event, Failed):
                failure = f"failed: {event.message}"
        speed = failure or f"{rate:.2f} | {rate * batch:.1f}"
        print(f"| {label} | {shape} | {batch} | {speed} | {_peak_gib(device):.2f} |", flush=True)


def _peak_gib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


if __name__ == "__main__":
    main()
