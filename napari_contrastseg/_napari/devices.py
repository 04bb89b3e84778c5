"""Which devices can train, described in words, and how many CPU threads training may use."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class DeviceChoice:
    """One entry of the device menu: ``value`` goes to ``TrainConfig.device``; ``label`` is shown to the user."""

    value: str
    label: str


def cpu_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - macOS / Windows
        return os.cpu_count() or 1


def training_threads(cores: int | None = None) -> int:
    """Threads for the training worker: all cores but one, so the window keeps a core to itself."""
    cores = cpu_cores() if cores is None else cores
    return max(1, cores - 1)


def describe_cpu(threads: int, cores: int | None = None) -> str:
    """E.g. ``"CPU, 1 of 2 cores (1 left for the window)"``."""
    cores = cpu_cores() if cores is None else cores
    left = max(0, cores - threads)
    kept = f" ({left} left for the window)" if left else ""
    return f"CPU, {threads} of {cores} core{'s' if cores != 1 else ''}{kept}"


def device_choices(threads: int | None = None) -> list[DeviceChoice]:
    """Auto first (naming what it resolves to), then every CUDA GPU, Apple MPS, and the CPU."""
    import torch

    threads = training_threads() if threads is None else threads
    cpu = describe_cpu(threads)
    gpus = []
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            gpus.append(DeviceChoice(f"cuda:{i}", f"GPU {i}: {torch.cuda.get_device_name(i)}"))
    if torch.backends.mps.is_available():
        gpus.append(DeviceChoice("mps", "Apple GPU (MPS)"))
    auto = gpus[0].label if gpus else cpu
    hint = "" if gpus else " - no usable GPU found"
    return [DeviceChoice("auto", f"Auto: {auto}{hint}"), *gpus, DeviceChoice("cpu", cpu)]


def describe_choice(value: str, threads: int | None = None) -> str:
    """The words for a device value as the worker will use it (``auto`` resolved)."""
    choices = device_choices(threads)
    for choice in choices:
        if choice.value == value:
            return choice.label.removeprefix("Auto: ").split(" - ")[0]
    return value
