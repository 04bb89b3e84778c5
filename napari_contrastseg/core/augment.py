"""Intensity augmentations on torch batches. They keep pixels in place, so labels stay aligned across views."""

from __future__ import annotations

import torch


def intensity_augment(x: torch.Tensor, generator: torch.Generator, strength: float = 1.0) -> torch.Tensor:
    """Random brightness, contrast, gamma and Gaussian noise, each applied per image with probability 0.5.

    SemiContrast's intensity set (brightness, gamma, noise) plus contrast. ``strength`` scales every range:
    1 is the weak view, 2 the strong view that stands in for ACTION's missing AdvMorph augmentation.

    Args:
        x: ``(B, C, *S)`` normalised images (about [0, 1]).
        generator: CPU random source (seeded by the trainer through the method).
        strength: range multiplier.

    Returns:
        A new tensor of the same shape.
    """
    b = x.shape[0]
    shape = (b,) + (1,) * (x.ndim - 1)

    def draw(low: float, high: float) -> torch.Tensor:
        on = torch.rand(shape, generator=generator) < 0.5
        value = low + (high - low) * torch.rand(shape, generator=generator)
        return on, value

    on, shift = draw(-0.1 * strength, 0.1 * strength)
    out = x + _like(on * shift, x)
    on, scale = draw(1 - 0.25 * strength, 1 + 0.25 * strength)
    mean = out.mean(dim=tuple(range(1, x.ndim)), keepdim=True)
    out = torch.where(_like(on, x), (out - mean) * _like(scale, x) + mean, out)
    on, gamma = draw(1 - 0.3 * strength, 1 + 0.3 * strength)
    lo = out.amin(dim=tuple(range(1, x.ndim)), keepdim=True)
    hi = out.amax(dim=tuple(range(1, x.ndim)), keepdim=True)
    unit = (out - lo) / (hi - lo).clamp_min(1e-6)
    out = torch.where(_like(on, x), unit.pow(_like(gamma, x)) * (hi - lo) + lo, out)
    on, sigma = draw(0.0, 0.05 * strength)
    noise = _like(torch.randn(x.shape, generator=generator), x)
    return out + noise * _like(on * sigma, x)


def _like(draw: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A CPU draw on ``x``'s device (floats in ``x``'s dtype); to CUDA through pinned memory, so nothing waits."""
    if x.device.type == "cuda":
        draw = draw.pin_memory().to(x.device, non_blocking=True)
    return draw.to(x.device, x.dtype if draw.is_floating_point() else draw.dtype)
