"""Augmentations of torch batches on the training device, drawn per crop from a seeded CPU generator.

:class:`SpatialAugment` moves pixels (labels follow, nearest-neighbour, through MONAI's ``Warp``);
:func:`intensity_augment` keeps pixels in place, so labels stay aligned across two views of the same crop.
"""

from __future__ import annotations

import math
import warnings

import torch
import torch.nn.functional as F
from monai.networks.layers import GaussianFilter

from .config import AugmentationConfig


def intensity_augment(
    x: torch.Tensor, generator: torch.Generator, strength: float = 1.0, probability: float = 0.5
) -> torch.Tensor:
    """Random brightness, contrast, gamma, Gaussian noise, Gaussian blur and simulated low resolution.

    Each change is applied to each image with ``probability``. SemiContrast's intensity set (brightness, gamma,
    noise) plus contrast, blur and resolution (nnU-Net's set). ``strength`` scales every range: 1 is the weak
    view, 2 the strong view that stands in for ACTION's missing AdvMorph augmentation.

    Args:
        x: ``(B, C, *S)`` normalised images (about [0, 1]).
        generator: CPU random source (seeded by the trainer).
        strength: range multiplier.
        probability: chance of each change, per image.

    Returns:
        A new tensor of the same shape.
    """
    b = x.shape[0]
    shape = (b,) + (1,) * (x.ndim - 1)
    spatial = tuple(range(1, x.ndim))

    def draw(low: float, high: float) -> tuple[torch.Tensor, torch.Tensor]:
        on = torch.rand(shape, generator=generator) < probability
        value = low + (high - low) * torch.rand(shape, generator=generator)
        return _like(on, x), _like(value, x)

    on, shift = draw(-0.1 * strength, 0.1 * strength)
    out = x + on * shift
    on, scale = draw(1 - 0.25 * strength, 1 + 0.25 * strength)
    mean = out.mean(dim=spatial, keepdim=True)
    out = torch.where(on, (out - mean) * scale + mean, out)
    on, gamma = draw(1 - 0.3 * strength, 1 + 0.3 * strength)
    lo, hi = out.amin(dim=spatial, keepdim=True), out.amax(dim=spatial, keepdim=True)
    unit = (out - lo) / (hi - lo).clamp_min(1e-6)
    out = torch.where(on, unit.pow(gamma) * (hi - lo) + lo, out)
    out = _blur(out, generator, strength, probability)
    out = _low_resolution(out, generator, strength, probability)
    on, sigma = draw(0.0, 0.05 * strength)
    noise = _like(torch.randn(x.shape, generator=generator), x)
    return out + noise * on * sigma


def _blur(x: torch.Tensor, generator: torch.Generator, strength: float, probability: float) -> torch.Tensor:
    """Gaussian blur (MONAI's separable filter) of a random subset of the batch, one sigma in [0.5, 1] x strength."""
    chosen = torch.rand(x.shape[0], generator=generator) < probability
    sigma = (0.5 + 0.5 * float(torch.rand((), generator=generator))) * strength
    if not bool(chosen.any()):
        return x
    index = _like(chosen.nonzero()[:, 0], x)
    blurred = GaussianFilter(x.ndim - 2, sigma).to(x.device)(x[index].float()).to(x.dtype)
    return x.index_copy(0, index, blurred)


def _low_resolution(x: torch.Tensor, generator: torch.Generator, strength: float, probability: float) -> torch.Tensor:
    """Simulated low resolution of a random subset: nearest down-sampling by up to 1 + strength / 2, linear back up."""
    chosen = torch.rand(x.shape[0], generator=generator) < probability
    factor = 1 + 0.5 * strength * float(torch.rand((), generator=generator))
    if not bool(chosen.any()) or factor < 1.05:
        return x
    index = _like(chosen.nonzero()[:, 0], x)
    small = [max(1, int(round(s / factor))) for s in x.shape[2:]]
    mode = "bilinear" if x.ndim == 4 else "trilinear"
    coarse = F.interpolate(x[index].float(), size=small, mode="nearest")
    return x.index_copy(0, index, F.interpolate(coarse, size=x.shape[2:], mode=mode).to(x.dtype))


class SpatialAugment:
    """Random rotation, scaling, elastic deformation and mirroring of crops, one draw per crop.

    2D crops rotate in their plane; 3D patches about their first axis. The displacement of every change is
    summed into one field and applied once (MONAI ``Warp``): images bilinearly with edge values outside, labels
    nearest-neighbour with 0 (unpainted) outside, so a label never blends into another.

    Args:
        config: ranges and probabilities (:class:`~.config.AugmentationConfig`).
        spatial_dims: 2 or 3.
        generator: CPU random source.
    """

    def __init__(self, config: AugmentationConfig, spatial_dims: int, generator: torch.Generator) -> None:
        from monai.networks.blocks import Warp

        self.config, self.dims, self.generator = config, spatial_dims, generator
        with warnings.catch_warnings():  # "using PyTorch native grid_sample": what is wanted here
            warnings.simplefilter("ignore")
            self.warp_image = Warp(mode="bilinear", padding_mode="border")
            self.warp_labels = Warp(mode="nearest", padding_mode="zeros")

    def __call__(
        self, images: torch.Tensor, labels: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``images`` ``(B, C, *P)`` and optional ``labels`` ``(B, *P)`` long, moved together."""
        c, g, b = self.config, self.generator, images.shape[0]
        if not c.enabled:
            return images, labels
        for axis in c.mirror_axes:  # axis of the crop's spatial dims
            flip = _like(torch.rand(b, generator=g) < 0.5, images).view(-1, *[1] * (images.ndim - 1))
            images = torch.where(flip, images.flip(axis + 2), images)
            if labels is not None:
                labels = torch.where(flip[:, 0], labels.flip(axis + 1), labels)
        ddf = self._displacement(images)
        if ddf is None:
            return images, labels
        moved = self.warp_image(images.float(), ddf).to(images.dtype)
        if labels is not None:
            labels = self.warp_labels(labels[:, None].float(), ddf)[:, 0].round().long()
        return moved, labels

    def _displacement(self, images: torch.Tensor) -> torch.Tensor | None:
        """``(B, dims, *P)`` voxel displacements (None when no crop is changed)."""
        c, g, b, d = self.config, self.generator, images.shape[0], self.dims
        p = c.probability
        rotate = (torch.rand(b, generator=g) < p) * (2 * torch.rand(b, generator=g) - 1) * math.radians(c.rotation)
        low, high = c.scale
        scaled = torch.rand(b, generator=g) < p
        scale = torch.where(scaled, low + (high - low) * torch.rand(b, generator=g), torch.ones(b))
        bend = (torch.rand(b, generator=g) < p).float() * c.elastic
        coarse = torch.randn((b, d, *[4] * d), generator=g) * bend.view(-1, *[1] * (d + 1))
        if not (rotate.any() or scaled.any() or bend.any()):
            return None
        size = images.shape[2:]
        axes = [torch.arange(n, device=images.device, dtype=torch.float32) - (n - 1) / 2 for n in size]
        grid = torch.stack(torch.meshgrid(*axes, indexing="ij"))  # (d, *P), centred coordinates
        cos, sin = (_like(f(rotate), grid).view(-1, 1, *[1] * d) for f in (torch.cos, torch.sin))
        inv = 1 / _like(scale, grid).view(-1, 1, *[1] * d)
        plane = grid[-2:][None]  # rotate the last two axes (the crop's plane)
        u = (cos[:, 0] * plane[:, 0] - sin[:, 0] * plane[:, 1]) * inv[:, 0]
        v = (sin[:, 0] * plane[:, 0] + cos[:, 0] * plane[:, 1]) * inv[:, 0]
        source = torch.cat([grid[:-2][None].expand(b, *grid[:-2].shape) * inv, u[:, None], v[:, None]], 1)
        mode = "bilinear" if d == 2 else "trilinear"
        elastic = F.interpolate(_like(coarse, grid), size=size, mode=mode, align_corners=True)
        return source - grid[None] + elastic


def _like(draw: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A CPU draw on ``x``'s device (floats in ``x``'s dtype); to CUDA through pinned memory, so nothing waits."""
    if x.device.type == "cuda":
        draw = draw.pin_memory().to(x.device, non_blocking=True)
    return draw.to(x.device, x.dtype if draw.is_floating_point() else draw.dtype)
