"""Time and peak memory of the SemiContrast local loss: dense N x N vs stride vs block vs streamed exact.

On a CPU each configuration runs forward + backward in its own subprocess, so the peak resident memory it reports
(``ru_maxrss`` minus the resident size after the inputs were built) belongs to that configuration alone; on
CUDA all run in this process and it is ``torch.cuda.max_memory_allocated`` over the inputs. Every pixel is
painted (worst case, as with the fully labelled slices of the reference), labels uniform over 3 classes
(1 = background), D = 128.
Configurations that would exceed the memory or time cap are skipped with an estimate scaled from the largest
run of the same mode (memory and time grow with the number of pairs).

    OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/local_contrast_cost.py [--quick]   # see docs/loss-cost.md
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import psutil
import torch

from napari_contrastseg.core.losses import local_contrastive_loss

DIM = 128
STRIDE, BLOCK = 4, 16
MODES = ("dense", "stride", "block", "exact")
PLOT = Path(__file__).resolve().parents[1] / "docs" / "images" / "local_contrast_cost.png"


def dense_loss(emb_a: torch.Tensor, emb_b: torch.Tensor, labels: torch.Tensor, tau: float = 0.1) -> torch.Tensor:
    """The naive loss holding N x N similarity matrices (what the reference computes)."""
    painted = labels > 0
    f = torch.cat([emb_a.movedim(1, -1)[painted], emb_b.movedim(1, -1)[painted]])
    y = labels[painted].repeat(2)
    eye = torch.eye(len(y), dtype=torch.bool, device=f.device)
    s = f @ f.T / tau
    log_prob = s - torch.logsumexp(s.masked_fill(eye, float("-inf")), dim=1, keepdim=True)
    pos = (y[:, None] == y[None, :]) & ~eye
    anchor = y != 1
    return (-(log_prob * pos).sum(1)[anchor] / pos.sum(1)[anchor]).mean()


def pairs(mode: str, size: int, batch: int) -> float:
    """Number of similarity pairs the mode evaluates (all pixels painted)."""
    n = 2 * batch * size * size
    if mode == "stride":
        return (n / STRIDE**2) ** 2
    if mode == "block":
        return (size / BLOCK) ** 2 * (2 * batch * BLOCK * BLOCK) ** 2
    return float(n) ** 2


def make_inputs(size: int, batch: int, device: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Two L2-normalised views ``(batch, DIM, size, size)`` built in place, and labels 1..3 everywhere."""
    gen = torch.Generator(device).manual_seed(0)
    embs = []
    for _ in range(2):
        e = torch.randn(batch, DIM, size, size, device=device, generator=gen)
        embs.append(e.div_(e.norm(dim=1, keepdim=True)).requires_grad_())
    return embs[0], embs[1], torch.randint(1, 4, (batch, size, size), device=device, generator=gen)


def step(mode: str, emb_a: torch.Tensor, emb_b: torch.Tensor, labels: torch.Tensor) -> None:
    if mode == "dense":
        loss = dense_loss(emb_a, emb_b, labels)
    else:
        loss = local_contrastive_loss(emb_a, emb_b, labels, mode=mode, stride=STRIDE, block=BLOCK)
    loss.backward()


def run_one(mode: str, size: int, batch: int) -> dict[str, float]:
    """Forward + backward of one configuration in this process; time (s) and peak memory (MB)."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    step(mode, *make_inputs(BLOCK, 1, device))  # warm-up (thread pools, kernels) on a tiny input
    inputs = make_inputs(size, batch, device)
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = psutil.Process().memory_info().rss
    times = []
    while not times or (sum(times) < 1.0 and len(times) < 3):
        start = time.perf_counter()
        step(mode, *inputs)
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    if device == "cuda":
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    return {"seconds": min(times), "peak_mb": peak / 2**20}


def measure(mode: str, size: int, batch: int) -> dict:
    """One configuration (on a CPU in a subprocess, for its own peak RSS); a run out of memory is reported."""
    if torch.cuda.is_available():  # the allocator's peak counter is per configuration already
        try:
            return run_one(mode, size, batch)
        except torch.OutOfMemoryError:
            return {"skipped": "failed: out of GPU memory"}
        finally:
            torch.cuda.empty_cache()
    out = subprocess.run(
        [sys.executable, __file__, "--one", mode, str(size), str(batch)], capture_output=True, text=True
    )
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["no output"])[-1]
        return {"skipped": f"failed: {last[:80]}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def sweep(configs: list[tuple[int, int]], max_gb: float, max_seconds: float) -> list[dict]:
    rows, last = [], {}
    for size, batch in configs:
        for mode in MODES:
            row = {"size": size, "batch": batch, "mode": mode, "n": 2 * batch * size * size}
            p = pairs(mode, size, batch)
            if mode in last:
                ref, ref_pairs = last[mode]
                est_gb = ref["peak_mb"] / 1024 * p / ref_pairs if mode == "dense" else 0.0
                est_s = ref["seconds"] * p / ref_pairs
            else:
                est_gb, est_s = 20 * p / 2**30 if mode == "dense" else 0.0, 0.0  # dense: ~5 float32 N x N
            if est_gb > max_gb:
                row["skipped"] = f"skipped (est. {est_gb:.1f} GB)"
            elif est_s > max_seconds:
                row["skipped"] = f"skipped (est. {est_s:.0f} s)"
            else:
                row.update(measure(mode, size, batch))
                if "skipped" not in row:
                    last[mode] = (row, p)
            print(row, flush=True)
            rows.append(row)
    return rows


def table(rows: list[dict]) -> str:
    lines = [
        "| image | batch | N (both views) | mode | time fwd+bwd (s) | peak memory (MB) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        mode = {"stride": f"stride {STRIDE}", "block": f"block {BLOCK}"}.get(r["mode"], r["mode"])
        cells = [r["skipped"], ""] if "skipped" in r else [f"{r['seconds']:.2f}", f"{r['peak_mb']:.0f}"]
        lines.append(f"| {r['size']}x{r['size']} | {r['batch']} | {r['n']:,} | {mode} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for mode in MODES:
        done = sorted((r["n"], r["seconds"], r["peak_mb"]) for r in rows if r["mode"] == mode and "skipped" not in r)
        if done:
            n, seconds, peak = zip(*done, strict=True)
            axes[0].loglog(n, seconds, "o-", label=mode)
            axes[1].loglog(n, peak, "o-", label=mode)
    for ax, name in zip(axes, ("time forward + backward (s)", "peak memory (MB)"), strict=True):
        ax.set_xlabel("painted pixels N, both views")
        ax.set_ylabel(name)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.suptitle(f"Local contrastive loss, D = {DIM}, stride {STRIDE}, block {BLOCK}")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="sizes up to 128 px and a 90 s cap per run")
    parser.add_argument("--max-gb", type=float, default=8.0, help="skip runs estimated above this memory")
    parser.add_argument("--max-seconds", type=float, default=150.0, help="skip runs estimated above this time")
    parser.add_argument("--plot", type=Path, default=PLOT, help="where the PNG goes")
    parser.add_argument("--one", nargs=3, metavar=("MODE", "SIZE", "BATCH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one[0], int(args.one[1]), int(args.one[2]))))
        return
    sizes = (32, 64, 128) if args.quick else (32, 64, 128, 256, 512)
    configs = [(s, 4) for s in sizes]
    configs.insert(2, (64, 8))  # N = 65,536
    if torch.cuda.is_available() and not args.quick:
        configs.insert(4, (128, 8))  # N = 262,144
    rows = sweep(configs, args.max_gb, 90.0 if args.quick else args.max_seconds)
    print(table(rows))
    plot(rows, args.plot)
    print(f"plot written to {args.plot}")


if __name__ == "__main__":
    main()
