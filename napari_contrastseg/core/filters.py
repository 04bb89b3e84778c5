"""A fixed multiscale filter bank (the pixel features of ilastik and convpaint) as the network's first layer."""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import nn

from .errors import InputError


class FilterBank(nn.Module):
    """The input channels, then at each ``sigma`` (pixels) the Gaussian-smoothed intensity, the gradient magnitude
    and the Hessian eigenvalues (ascending) of every channel, with scale-normalised derivatives (``sigma`` times
    the first, ``sigma**2`` times the second) so that every scale gives features of a similar size.

    Nothing is learnt: the kernels are rebuilt from ``sigmas`` (a model file stores the sigmas, not the kernels).
    Borders repeat the edge pixels, so a crop or tile is filtered on its own: prediction tiles the size of the
    training crops (the default) see features like those trained on. Always computed in float32 (under mixed
    precision too: the eigenvalues underflow in half precision).

    Args:
        spatial_dims: D, 2 or 3.
        in_channels: C.
        sigmas: Gaussian scales in pixels, e.g. ``(1, 2, 4, 8)``.

    ``forward``: ``(B, C, *S)`` -> ``(B, C * (1 + len(sigmas) * (2 + D)), *S)``, feature-major: the input, then
    for each sigma the smoothed channels, their gradient magnitudes and each eigenvalue of their Hessians.
    """

    def __init__(self, spatial_dims: int, in_channels: int, sigmas: tuple[float, ...]) -> None:
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, not {spatial_dims}")
        if not sigmas or not all(0 < s < math.inf for s in sigmas):
            raise InputError(f"Filter-bank scales must be positive and finite, got {tuple(sigmas)}.")
        self.spatial_dims, self.channels = spatial_dims, in_channels
        self.sigmas = tuple(float(s) for s in sigmas)
        self.out_channels = in_channels * (1 + len(self.sigmas) * (2 + spatial_dims))
        # per axis: which earlier output each new one filters (index buffers, so that no step copies from the host)
        prefixes: list[tuple[int, ...]] = [()]
        self.orders: list[list[int]] = []
        for axis in range(spatial_dims):
            pairs = [(p, o) for p in prefixes for o in range(3 - sum(p))]
            source = torch.tensor([prefixes.index(p) for p, _ in pairs])
            self.register_buffer(f"source_{axis}", source, persistent=False)
            self.orders.append([o for _, o in pairs])
            prefixes = [(*p, o) for p, o in pairs]
        self.derivative_orders = prefixes  # order along each axis of every derivative, sum at most 2
        for i, sigma in enumerate(self.sigmas):
            kernels = gaussian_kernels(sigma)
            for axis, orders in enumerate(self.orders):
                shape = [1] * spatial_dims
                shape[axis] = kernels.shape[1]
                weight = kernels[orders].repeat_interleave(in_channels, 0).reshape(-1, 1, *shape)
                self.register_buffer(f"weight_{i}_{axis}", weight, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):
            return self._features(x.float())

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        d = self.spatial_dims
        unit = [tuple(int(a == axis) for a in range(d)) for axis in range(d)]
        features = [x]
        for i in range(len(self.sigmas)):
            m = self.derivatives(x, i)
            hessian = {
                (a, b): m[tuple(int(a == axis) + int(b == axis) for axis in range(d))]
                for a, b in itertools.combinations_with_replacement(range(d), 2)
            }
            features.append(m[(0,) * d])
            features.append(torch.sqrt(sum(m[u] * m[u] for u in unit) + 1e-12))
            features.extend(symmetric_eigenvalues(hessian, d))
        return torch.cat(features, dim=1)

    def derivatives(self, x: torch.Tensor, scale: int) -> dict[tuple[int, ...], torch.Tensor]:
        """Every scale-normalised Gaussian derivative of ``x`` ``(B, C, *S)`` (float32) up to the second order at
        ``sigmas[scale]``, one grouped convolution per axis: ``{orders: (B, C, *S)}``, ``orders`` the derivative
        order along each axis."""
        conv = (F.conv2d, F.conv3d)[self.spatial_dims - 2]
        y, count = x, 1
        for axis in range(self.spatial_dims):
            weight = getattr(self, f"weight_{scale}_{axis}").float()
            y = y.unflatten(1, (count, self.channels))[:, getattr(self, f"source_{axis}")].flatten(1, 2)
            radius = (weight.shape[2 + axis] - 1) // 2
            padding = [0, 0] * self.spatial_dims
            padding[2 * (self.spatial_dims - 1 - axis) : 2 * (self.spatial_dims - axis)] = [radius, radius]
            y = conv(F.pad(y, padding, mode="replicate"), weight, groups=weight.shape[0])
            count = len(self.orders[axis])
        return dict(zip(self.derivative_orders, y.unflatten(1, (count, self.channels)).unbind(1), strict=True))


def gaussian_kernels(sigma: float) -> torch.Tensor:
    """``(3, 2r + 1)`` sampled Gaussian (sum 1) and its first and second derivatives times ``sigma`` and
    ``sigma**2``, truncated at ``r = ceil(4 sigma)``; mirrored for the first derivative, since convolutions in
    torch do not flip their kernels (so that filtering gives ``+sigma * df/dx``)."""
    radius = max(1, math.ceil(4 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    g = torch.exp(-0.5 * (x / sigma) ** 2)
    g = g / g.sum()
    first = x / sigma**2 * g  # the derivative of g is -x / sigma**2 * g
    second = (x**2 / sigma**4 - 1 / sigma**2) * g
    second = second - second.mean()  # a constant image has no curvature
    return torch.stack([g, first * sigma, second * sigma**2]).float()


def symmetric_eigenvalues(m: dict[tuple[int, int], torch.Tensor], d: int) -> list[torch.Tensor]:
    """Eigenvalues, ascending, of the symmetric ``d`` x ``d`` matrix field given by its upper triangle
    ``m[(a, b)]`` (``a <= b``, each ``(B, C, *S)``), in closed form (any device, no batched solver)."""
    if d == 2:
        mean = (m[0, 0] + m[1, 1]) / 2
        radius = torch.sqrt(((m[0, 0] - m[1, 1]) / 2) ** 2 + m[0, 1] ** 2 + 1e-12)
        return [mean - radius, mean + radius]
    # Smith's trigonometric solution for 3 x 3 symmetric matrices
    q = (m[0, 0] + m[1, 1] + m[2, 2]) / 3
    off = m[0, 1] ** 2 + m[0, 2] ** 2 + m[1, 2] ** 2
    a, b, c = m[0, 0] - q, m[1, 1] - q, m[2, 2] - q
    p = torch.sqrt((a * a + b * b + c * c + 2 * off) / 6 + 1e-12)
    det = (
        a * (b * c - m[1, 2] ** 2)
        - m[0, 1] * (m[0, 1] * c - m[1, 2] * m[0, 2])
        + m[0, 2] * (m[0, 1] * m[1, 2] - b * m[0, 2])
    )
    r = (det / (2 * p**3)).clamp(-1.0, 1.0)
    phi = torch.acos(r) / 3
    largest = q + 2 * p * torch.cos(phi)
    smallest = q + 2 * p * torch.cos(phi + 2 * math.pi / 3)
    return [smallest, 3 * q - largest - smallest, largest]
