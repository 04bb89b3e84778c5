"""Training speed and peak memory for the large-crop cases of issue 6 (meant for a GPU; runs on any device).

Usage: python benchmarks/gpu_speed.py [--device auto] [--iterations 50] [--compile] [--cases TEXT] [--scale 1.0]
Cases: each method on 2D 256x256 crops batch 8 and 3D 96^3 patches batch 2 of the full Colin27 volume, its axial
slices padded by reflection to 256x256 (for
SemiContrast its local-contrast stage with the paper's stride-4 loss, for ACTION its last stage: the most costly
stage of each; the exact local loss over a 256x256x8 batch, about 10^6 pixels, is timed on its own, see below);
mixed precision (bf16 where supported) on CUDA. Peak memory is ``torch.cuda.max_memory_allocated`` on CUDA and the
process's peak resident memory elsewhere. On CUDA, ``syncs/step`` counts the operations that made the host wait
for the GPU (``torch.cuda.set_sync_debug_mode``) over 10 steps after a warm-up of 5; speed is timed after them.
``--scale 0.25`` shrinks the crops for a quick CPU check. The exact local contrastive loss alone at N = 65,536 and
262,144 is measured by ``benchmarks/local_contrast_cost.py``.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from datasets import load_dataset  # noqa: E402

from napari_contrastseg.core.config import TrainConfig  # noqa: E402
from napari_contrastseg.core.data import SegmentationData  # noqa: E402
from napari_contrastseg.core.device import describe_device, select_device  # noqa: E402
from napari_contrastseg.core.events import Failed, Started, Step  # noqa: E402
from napari_contrastseg.core.trainer import train  # noqa: E402
from napari_contrastseg.samples.protocol import paint_slices  # noqa: E402

LOCAL_STAGE = {"global_fraction": 0.0, "local_fraction": 1.0, "local_mode": "stride"}
LAST_STAGE = {"global_fraction": 0.0, "local_fraction": 0.0}
CASES = [  # (label, method, crop, batch, dims, options)
    ("supervised 2D", "supervised", 256, 8, "2d", {}),
    ("supervised 3D", "supervised", 96, 2, "3d", {}),
    ("semicontrast 2D local stage, stride 4", "semicontrast", 256, 8, "2d", LOCAL_STAGE),
    ("semicontrast 3D local stage, stride 4", "semicontrast", 96, 2, "3d", LOCAL_STAGE),
    ("action 2D stage 3", "action", 256, 8, "2d", LAST_STAGE),
    ("action 3D stage 3", "action", 96, 2, "3d", LAST_STAGE),
]
WARM_UP, SYNC_STEPS = 5, 10
PLANE = 256  # Colin27's axial slices (181x217) are padded by reflection to this size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--iterations", type=int, default=50, help=f"at least {WARM_UP + SYNC_STEPS + 5}")
    parser.add_argument("--compile", action="store_true", help="torch.compile the network")
    parser.add_argument("--cases", default="", help="run only cases whose label contains this text")
    parser.add_argument("--scale", type=float, default=1.0, help="crop size factor (multiples of 16 kept)")
    args = parser.parse_args()
    device = select_device(args.device)
    vol = load_dataset("colin27-deep")
    grow = [(0, max(0, PLANE - n)) for n in vol.image.shape[:2]] + [(0, 0)]  # in-plane to 256x256 for 2D crops
    image = np.pad(vol.image, grow, mode="reflect")
    painted = np.pad(paint_slices(vol.ground_truth, 3, axis=-1), grow)  # padding is unpainted
    data = SegmentationData(image, painted, vol.class_names, vol.spacing)
    print(f"device {describe_device(device)}, torch {torch.__version__}, compile {args.compile}\n")
    print("| case | crop | batch | iterations/s | crops/s | peak memory GiB | syncs/step |")
    print("|---|---|---|---|---|---|---|")
    where: dict[str, Counter] = {}
    for label, method, crop, batch, dims, options in (c for c in CASES if args.cases in c[0]):
        size = max(16, int(crop * args.scale) // 16 * 16)
        config = TrainConfig(method=method, iterations=args.iterations, patch_size=size, batch_size=batch, dims=dims,
                             device=args.device, compile=args.compile, method_options=options)  # fmt: skip
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        shape, speed, syncs, sites = _run_case(data, config, device)
        print(f"| {label} | {shape} | {batch} | {speed} | {_peak_gib(device):.2f} | {syncs} |", flush=True)
        where[label] = sites
    for label, sites in where.items():
        if sites:
            print(f"\nwhere the host waited, {label} (per step):")
            for (path, line), n in sites.most_common(12):
                print(f"  {n / SYNC_STEPS:g} x {Path(path).name}:{line}")


def _run_case(data: SegmentationData, config: TrainConfig, device: torch.device) -> tuple[str, str, str, Counter]:
    """(patch shape, "it/s | crops/s" or the failure, syncs per step, (file, line) of each sync) of one run."""
    cuda, n = device.type == "cuda", config.iterations
    count_from, time_from = WARM_UP, WARM_UP + SYNC_STEPS if cuda else WARM_UP
    start, rate, shape, failure, syncs, sites = None, 0.0, "", "", "n/a", Counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for event in train(data, config):
            if isinstance(event, Started):
                shape = "x".join(map(str, event.patch_size))
            elif isinstance(event, Step) and cuda and event.iteration == count_from:
                caught.clear()
                torch.cuda.set_sync_debug_mode("warn")  # the code run until the next events is counted
            elif isinstance(event, Step) and cuda and event.iteration == count_from + SYNC_STEPS:
                torch.cuda.set_sync_debug_mode("default")
                sites = Counter((w.filename, w.lineno) for w in caught if "called a synchronizing" in str(w.message))
                syncs = f"{sum(sites.values()) / SYNC_STEPS:g}"
            if isinstance(event, Step) and event.iteration == time_from:
                if cuda:
                    torch.cuda.synchronize(device)
                start = time.perf_counter()
            elif isinstance(event, Step) and event.iteration == n and start is not None:
                if cuda:
                    torch.cuda.synchronize(device)
                rate = (n - time_from) / (time.perf_counter() - start)
            elif isinstance(event, Failed):
                failure = f"failed: {event.message}"
    return shape, failure or f"{rate:.2f} | {rate * config.batch_size:.1f}", syncs, sites


def _peak_gib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


if __name__ == "__main__":
    main()
