"""Data-parallel training across processes (``torchrun``): what the trainer needs to keep ranks identical.

Every function is a no-op in a single process (no initialised process group), so the trainer calls them always.
The gradient all-reduce is the one :class:`torch.nn.parallel.DistributedDataParallel` performs, done explicitly
once per step: the methods run the network several times per step and also train heads outside it, which DDP's
per-forward hooks do not cover.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterable

import numpy as np
import torch
import torch.distributed as dist
from torch import nn


def is_distributed() -> bool:
    """Whether a process group with more than one rank is running."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def launched_by_torchrun() -> bool:
    """Whether this process was started by ``torchrun`` (or another launcher setting the env:// variables)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_from_environment(device: str) -> torch.device | None:
    """Join the process group described by ``torchrun``'s environment; return this rank's device.

    NCCL with one GPU per process (``LOCAL_RANK``) when CUDA is wanted and present, else gloo on the CPU. Returns
    None when not launched by torchrun.
    """
    if not launched_by_torchrun():
        return None
    use_cuda = device in ("auto", "cuda") and torch.cuda.is_available()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if use_cuda:
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo", timeout=datetime.timedelta(minutes=10))
    return torch.device("cuda", local) if use_cuda else torch.device("cpu")


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def broadcast_state(module: nn.Module) -> None:
    """Copy rank 0's parameters and buffers to every rank (same start even if initialisations differed)."""
    if is_distributed():
        for tensor in (*module.parameters(), *module.buffers()):
            dist.broadcast(tensor.data, src=0)


def average_gradients(parameters: Iterable[nn.Parameter]) -> None:
    """Replace each gradient by its mean over ranks (missing gradients count as 0)."""
    if not is_distributed():
        return
    params = [p for p in parameters if p.requires_grad]
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    mean_over_ranks([p.grad for p in params])


def average_buffers(module: nn.Module) -> None:
    """Mean over ranks of floating-point buffers (BatchNorm running statistics)."""
    mean_over_ranks([b for b in module.buffers() if b.is_floating_point()])


def mean_over_ranks(tensors: list[torch.Tensor]) -> None:
    """Overwrite each tensor with its mean over ranks, in one flat all-reduce (nothing to do on one process)."""
    if not tensors or not is_distributed():
        return
    flat = torch.cat([t.reshape(-1) for t in tensors])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for t in tensors:
        t.copy_(flat[offset : offset + t.numel()].view(t.shape))
        offset += t.numel()


def gather_rows(x: torch.Tensor) -> torch.Tensor:
    """``(N, ...)`` on each rank -> ``(world * N, ...)`` in rank order on every rank (equal N on all ranks)."""
    if not is_distributed():
        return x
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts)


def any_rank(flag: bool, device: torch.device) -> bool:
    """Whether ``flag`` is set on at least one rank (used so that a cancel stops every rank at the same step)."""
    if not is_distributed():
        return flag
    t = torch.tensor([float(flag)], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def from_rank0(value: float, device: torch.device) -> float:
    """Rank 0's ``value`` on every rank (e.g. the share of a time budget used, which each rank measures apart)."""
    if not is_distributed():
        return value
    t = torch.tensor([float(value)], device=device)
    dist.broadcast(t, src=0)
    return float(t.item())


def array_from_rank0(array: np.ndarray, device: torch.device) -> np.ndarray:
    """Rank 0's ``array`` on every rank (the same shape and dtype on all), e.g. pseudo-labels that each rank
    computed and that rounding on its device could have made differ."""
    if not is_distributed():
        return array
    tensor = torch.from_numpy(np.ascontiguousarray(array)).to(device)
    dist.broadcast(tensor, src=0)
    return tensor.cpu().numpy()
