"""Data-parallel training, 1 vs N processes: throughput and equivalence (same global batch, same crops).

Usage: python benchmarks/ddp.py [--processes 2] [--iterations 200] [--batch 4] [--norms batch,instance]
Each configuration runs ``benchmarks/ddp_worker.py`` under ``torch.distributed.run`` (gloo on the CPU): the
1-process run with N torch threads, each of the N ranks with one, so both use N cores. The 1-process run uses
``processes x batch`` crops per step, the N-process run ``batch`` per rank, drawn from the same shared draw, so both
see the same crops. Prints a markdown table: iterations/s, crops/s,
mean Dice on the never-painted slices of the bundled colin27 crop, and the weights' difference between the two
runs relative to how far the 1-process run moved them from the initial weights.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from safetensors.torch import load_file

WORKER = Path(__file__).resolve().parent / "ddp_worker.py"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--batch", type=int, default=4, help="crops per rank and step in the N-process run")
    parser.add_argument("--norms", default="batch,instance")
    parser.add_argument("--method", default="supervised")
    args = parser.parse_args()
    n = args.processes
    print("| norm | processes | crops per rank | iterations/s | crops/s | mean Dice | weight difference |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for norm in args.norms.split(","):
            runs = {}
            for world, batch in ((1, n * args.batch), (n, args.batch)):
                out = Path(tmp) / f"{norm}-{world}"
                launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(world)]
                cmd = [*launch, str(WORKER), "--out", str(out), "--iterations", str(args.iterations),
                       "--batch", str(batch), "--patch", "64", "--features", "16,32,64,128", "--norm", norm,
                       "--method", args.method, "--threads", str(n // world)]  # fmt: skip
                subprocess.run(cmd, check=True, capture_output=True)
                runs[world] = (json.loads((out / "run.json").read_text()), out)
            one, many = runs[1][1], runs[n][1]
            relative = _relative_difference(one, many)
            for world, (run, _) in runs.items():
                diff = f"{relative:.2f}" if world == n else "reference"
                print(f"| {norm} | {world} | {run['batch_per_rank']} | {run['iterations_per_s']:.2f} | "
                      f"{run['iterations_per_s'] * run['batch_per_rank'] * world:.1f} | {run['dice']:.3f} | {diff} |",
                      flush=True)  # fmt: skip


def _relative_difference(one: Path, many: Path) -> float:
    """``|w_N - w_1| / |w_1 - w_0|`` over the floating-point weights (running statistics excluded)."""
    w1, wn, w0 = (
        load_file(p) for p in (one / "rank0.safetensors", many / "rank0.safetensors", one / "initial.safetensors")
    )
    keys = [k for k, v in w1.items() if v.is_floating_point() and "running" not in k]
    difference = sum(float(((wn[k] - w1[k]) ** 2).sum()) for k in keys) ** 0.5
    return difference / sum(float(((w1[k] - w0[k]) ** 2).sum()) for k in keys) ** 0.5


if __name__ == "__main__":
    main()
