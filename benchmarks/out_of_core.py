"""Out-of-core prediction speed and peak memory: a zarr volume much larger than a block, predicted to zarr.

Usage: python benchmarks/out_of_core.py [--shape 1024,1024,512] [--device auto] [--uncertainty] [--threads N]

The volume is mirrored copies of the real Colin27 T1 (181 x 217 x 181, benchmarks/datasets.py) tiled to ``--shape``
(smooth across the seams: each copy is the mirror image of its neighbour), stored as uint16 in 128^3 chunks; it is
written chunk by chunk once into ``$CONTRASTSEG_DATA/out-of-core`` and reused. The model has the default 2D shape
(16-32-64-128 U-Net, 13 classes, 64 px crops, slice axis 2) after one training step on the bundled colin27 sample:
speed does not depend on the weights. Prediction runs as the user would run it, ``contrastseg predict MODEL
volume.zarr -o prediction.zarr`` in a child process, whose peak resident memory (ru_maxrss) is reported, along with
the peak of the RSS sampled every 0.2 s. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch
import zarr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from datasets import cache_dir, load_dataset  # noqa: E402

from napari_contrastseg.core.config import NormalizationConfig, TrainConfig  # noqa: E402
from napari_contrastseg.core.data import SegmentationData  # noqa: E402
from napari_contrastseg.core.normalization import intensity_ranges  # noqa: E402
from napari_contrastseg.core.trainer import train_model  # noqa: E402
from napari_contrastseg.samples import load_sample  # noqa: E402

CHUNK = 128


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shape", default="1024,1024,512", help="volume shape, e.g. 256,256,128 for a quick run")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--block", type=int, help="slices per slab (default: the engine's, about 16 M voxels)")
    parser.add_argument("--uncertainty", action="store_true", help="also write the uncertainty (float16)")
    parser.add_argument("--keep", action="store_true", help="keep the prediction store")
    parser.add_argument("--threads", type=int, help="torch CPU threads of the prediction (OMP_NUM_THREADS)")
    args = parser.parse_args()
    shape = tuple(int(s) for s in args.shape.split(","))
    folder = cache_dir() / "out-of-core"
    folder.mkdir(exist_ok=True)
    volume = folder / f"colin27-mirrored-{'x'.join(map(str, shape))}.zarr"
    seconds = write_volume(volume, shape)
    if seconds:
        print(f"wrote {volume} in {seconds:.0f} s", flush=True)
    model = folder / "default-2d.safetensors"
    sample = load_sample("colin27-deep")
    data = SegmentationData(sample.image, sample.painted, sample.class_names)
    train_model(data, TrainConfig(iterations=1, patch_size=64, device="cpu")).save(model)
    start = time.perf_counter()
    intensity_ranges(zarr.open_array(str(volume), mode="r"), None, NormalizationConfig())
    percentile_seconds = time.perf_counter() - start  # the pass the prediction makes first, timed alone
    out = folder / "prediction.zarr"
    command = [sys.executable, "-m", "napari_contrastseg", "predict", str(model), str(volume), "-o", str(out)]
    command += ["--device", args.device]
    command += ["--uncertainty"] * args.uncertainty + (["--block", str(args.block)] if args.block else [])
    print("$ " + " ".join(command), flush=True)
    env = {**os.environ, **({"OMP_NUM_THREADS": str(args.threads)} if args.threads else {})}
    wall, sampled_peak = run_measured(command, env)
    child_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    labels = zarr.open_group(str(out), mode="r")["labels"]
    assert labels.shape == shape, labels.shape
    classes = np.unique(np.asarray(labels[:, :, shape[2] // 2])).tolist()
    n = int(np.prod(shape))
    threads = args.threads or torch.get_num_threads()
    print(f"\nmachine: {platform.processor() or platform.machine()}, torch {torch.__version__}, {threads} "
          f"thread(s) for the prediction; classes predicted on the middle slice: {classes}\n")  # fmt: skip
    print("| volume | voxels | outputs | wall s | of which percentile pass s | voxels/s | peak RSS (ru_maxrss) | "
          "peak RSS (sampled) |\n|---|---|---|---|---|---|---|---|")  # fmt: skip
    outputs = "labels + uncertainty" if args.uncertainty else "labels"
    peaks = f"{child_peak / 2**30:.2f} GiB | {sampled_peak / 2**30:.2f} GiB"
    print(f"| {'x'.join(map(str, shape))} uint16, zarr {CHUNK}^3 chunks | {n:.3g} | {outputs} | {wall:.0f} | "
          f"{percentile_seconds:.1f} | {n / wall:.3g} | {peaks} |")  # fmt: skip
    if not args.keep:
        shutil.rmtree(out)


def write_volume(path: Path, shape: tuple[int, ...]) -> float:
    """Write the mirrored Colin27 volume chunk by chunk (skipped if complete); returns the seconds it took."""
    if path.exists() and zarr.open_array(str(path), mode="r").attrs.get("complete"):
        return 0.0
    start = time.perf_counter()
    colin = np.round(load_dataset("colin27-deep").image).astype(np.uint16)
    array = zarr.create_array(str(path), shape=shape, chunks=(CHUNK,) * 3, dtype=np.uint16, overwrite=True)
    for x in range(0, shape[0], CHUNK):
        for y in range(0, shape[1], CHUNK):
            for z in range(0, shape[2], CHUNK):
                where = [np.arange(a, min(a + CHUNK, n)) for a, n in zip((x, y, z), shape, strict=True)]
                index = [_mirror(i, colin.shape[d]) for d, i in enumerate(where)]
                array[x : x + CHUNK, y : y + CHUNK, z : z + CHUNK] = colin[np.ix_(*index)]
    array.attrs.update({"complete": True, "spacing": [1.0, 1.0, 1.0], "source": "Colin27 ch2, mirrored tiles"})
    return time.perf_counter() - start


def _mirror(index: np.ndarray, n: int) -> np.ndarray:
    """Indices into an axis of length ``n`` that run back and forth: 0..n-1, n-1..0, 0..n-1, ..."""
    folded = index % (2 * n)
    return np.where(folded < n, folded, 2 * n - 1 - folded)


def run_measured(command: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Run ``command``; return its wall time and the peak of its RSS sampled every 0.2 s (bytes)."""
    start = time.perf_counter()
    child = subprocess.Popen(command, env=env)
    peak = [0]

    def sample() -> None:
        status = Path(f"/proc/{child.pid}/status")
        while child.poll() is None:
            try:
                for line in status.read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        peak[0] = max(peak[0], int(line.split()[1]) * 1024)
            except OSError:
                break
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    if child.wait() != 0:
        raise SystemExit(f"prediction failed with exit status {child.returncode}")
    wall = time.perf_counter() - start
    sampler.join()
    return wall, peak[0]


if __name__ == "__main__":
    main()
