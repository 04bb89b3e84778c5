"""Device choice (CUDA > MPS > CPU unless the user says otherwise) and its description in words."""

from __future__ import annotations

import gc

import torch

from .errors import InputError


def select_device(requested: str = "auto") -> torch.device:
    """``"auto"`` picks CUDA, then Apple MPS, then CPU; ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"`` force one."""
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(requested)
    except RuntimeError as err:
        raise InputError(f"Unknown device {requested!r}; use auto, cpu, cuda, cuda:N or mps.") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError("CUDA was requested but no CUDA GPU is usable here (or this PyTorch is a CPU build).")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise InputError("MPS was requested but Apple's Metal backend is not available here.")
    return device


def describe_device(device: torch.device) -> str:
    """E.g. ``"cuda:0 (NVIDIA H100 80GB HBM3)"``, ``"mps (Apple GPU)"``, ``"cpu (2 threads)"``."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    if device.type == "mps":
        return "mps (Apple GPU)"
    threads = torch.get_num_threads()
    return f"cpu ({threads} thread{'s' if threads != 1 else ''})"


def release_memory(device: torch.device) -> None:
    """Return cached accelerator memory to the system once training or prediction is over."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps":
        torch.mps.empty_cache()


def autocast(device: torch.device, enabled: bool) -> torch.autocast:
    """Mixed precision on CUDA (bfloat16 where supported, else float16); a no-op elsewhere."""
    use = enabled and device.type == "cuda"
    dtype = torch.bfloat16 if use and torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype, enabled=use)
