"""ACTION's anatomical contrast (AnCo, after ReCo): representation head, negative-class sampler and loss.

The representation is computed only at the pixels the loss draws (hard queries with gradient, a pool of keys per
class without), not densely: the same numbers at those pixels for a fraction of the cost.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from monai.networks.layers import Conv
from torch import nn

#: ``represent(index) -> (N, D)``: representations at pixels ``index``, a tuple of ``(N,)`` long tensors (b, *S).
Represent = Callable[[tuple[torch.Tensor, ...]], torch.Tensor]


class RepresentationHead(nn.Module):
    """Decoder maps upsampled to the finest, concatenated, Conv3x3 -> ReLU -> Conv1x1, L2-normalised.

    Args:
        in_channels_list: channels of each decoder map, in the order they are passed.
        dim: D of the representation (reference 512).
        spatial_dims: 2 or 3.
    """

    def __init__(self, in_channels_list: Sequence[int], dim: int = 512, spatial_dims: int = 2) -> None:
        super().__init__()
        conv = Conv[Conv.CONV, spatial_dims]
        self.proj = nn.Sequential(
            conv(sum(in_channels_list), dim, kernel_size=3, padding=1), nn.ReLU(inplace=True), conv(dim, dim, 1)
        )

    @staticmethod
    def _upsampled(maps: Sequence[torch.Tensor]) -> torch.Tensor:
        """``(B, C_i, *S_i)`` each -> ``(B, sum C_i, *S)``, each map interpolated to the largest S_i."""
        size = _finest(maps)
        mode = "bilinear" if len(size) == 2 else "trilinear"
        up = [m if m.shape[2:] == size else F.interpolate(m, size, mode=mode, align_corners=True) for m in maps]
        return torch.cat(up, dim=1)

    def forward(self, maps: Sequence[torch.Tensor]) -> torch.Tensor:
        """``maps``: ``(B, C_i, *S_i)`` each -> ``(B, dim, *S)`` with S the largest S_i."""
        return F.normalize(self.proj(self._upsampled(maps)), dim=1)

    def at(self, maps: Sequence[torch.Tensor], index: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """``forward(maps)`` at pixels ``index`` only: ``(N, dim)``, without dense upsampling or convolutions.

        ``index``: (b, *s) ``(N,)`` long tensors into the finest grid. Each pixel's 3x3(x3) neighbourhood (zero
        outside the grid, as the convolution pads) is interpolated from the maps and multiplied with the weights.
        """
        first, _, second = self.proj
        b, coords = index[0], torch.stack(index[1:], dim=1)  # (N,), (N, d)
        offsets = torch.tensor(list(itertools.product((-1, 0, 1), repeat=coords.shape[1])), device=coords.device)
        points = (coords[:, None] + offsets).flatten(0, 1)  # (N * K, d), K = 3^d in the weights' kernel order
        features = _interpolated_at(maps, b.repeat_interleave(len(offsets)), points)  # (N * K, C)
        patch = features.unflatten(0, (len(b), len(offsets))).transpose(1, 2).flatten(1)  # (N, C * K)
        hidden = F.relu(F.linear(patch, first.weight.flatten(1), first.bias))
        return F.normalize(F.linear(hidden, second.weight.flatten(1), second.bias), dim=1)


def _finest(maps: Sequence[torch.Tensor]) -> torch.Size:
    """The largest spatial size S_i of ``(B, C_i, *S_i)`` maps."""
    return max((m.shape[2:] for m in maps), key=lambda s: s.numel())


def _interpolated_at(maps: Sequence[torch.Tensor], b: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """``RepresentationHead._upsampled(maps)[b, :, *points]`` without upsampling: ``(N, sum C_i)``.

    ``b``: ``(N,)`` batch indices; ``points``: ``(N, d)`` positions in the finest grid, zero where outside it. Coarser
    maps are interpolated (multi-)linearly with aligned corners, as ``F.interpolate(align_corners=True)`` does.
    """
    full = torch.tensor(_finest(maps), device=points.device)
    inside = ((points >= 0) & (points < full)).all(1, keepdim=True)
    points = torch.minimum(points.clamp_min(0), full - 1)
    columns = []
    for m in maps:
        shape = torch.tensor(m.shape[2:], device=points.device)
        rows = m.movedim(1, -1).reshape(-1, m.shape[1])  # (B * prod S_i, C_i): one row per pixel

        def pick(at: torch.Tensor, rows=rows, shape=shape) -> torch.Tensor:  # (N, d) -> (N, C_i)
            flat = b
            for k in range(at.shape[1]):
                flat = flat * shape[k] + at[:, k]
            return rows.index_select(0, flat)

        if (shape == full).all():
            columns.append(pick(points))
            continue
        position = points.double() * ((shape - 1).double() / (full - 1).clamp_min(1))  # as exact as F.interpolate
        low = position.floor().long()
        high, frac = torch.minimum(low + 1, shape - 1), position - low
        value = 0
        for corner in itertools.product((False, True), repeat=points.shape[1]):
            upper = torch.tensor(corner, device=points.device)
            at = torch.where(upper, high, low)
            weight = torch.where(upper, frac, 1 - frac).prod(1, keepdim=True)
            value = value + weight.to(m.dtype) * pick(at)
        columns.append(value)
    return torch.cat(columns, dim=1) * inside


def sample_negative_classes(
    prototypes: torch.Tensor,
    query_class: int | torch.Tensor,
    n: int,
    tau: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Draw ``n`` negative classes v != c with probability ``softmax_v(cos(r_c, r_v) / tau)``.

    Args:
        prototypes: ``(C, D)`` class prototypes; classes are row indices.
        query_class: row index c of the query class, or ``(M,)`` row indices (one draw of ``n`` for each);
            at least two classes are needed.
        n: number of draws (with replacement).
        tau: temperature.
        generator: random source (on the prototypes' device).

    Returns:
        ``(n,)`` long row indices, never ``query_class`` (``(M, n)`` for ``M`` query classes).
    """
    rows = torch.as_tensor(query_class, device=prototypes.device).reshape(-1)
    unit = F.normalize(prototypes, dim=1)
    logits = unit[rows] @ unit.T / tau  # (M, C) cosines / tau
    own = rows[:, None] == torch.arange(len(prototypes), device=rows.device)
    cdf = logits.masked_fill(own, float("-inf")).softmax(1).cumsum(1)  # inverse-CDF draws (multinomial is slow)
    uniform = torch.rand(len(rows), n, generator=generator, device=cdf.device) * cdf[:, -1:]
    drawn = torch.searchsorted(cdf, uniform, right=True).clamp_max(len(prototypes) - 1)
    return drawn[0] if torch.as_tensor(query_class).ndim == 0 else drawn


def _per_class(y: torch.Tensor, weights: torch.Tensor, n_classes: int) -> torch.Tensor:
    """``(C,)`` sum of ``weights`` per row index ``y`` (a bincount that reads nothing back from the device)."""
    return torch.zeros(n_classes, dtype=torch.long, device=y.device).scatter_add_(0, y, weights.long())


def _grouped(groups: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Positions of ``groups`` ``(N,)`` sorted by group, in random order within each group."""
    shuffle = torch.randperm(len(groups), generator=generator, device=groups.device)
    return shuffle[groups[shuffle].argsort(stable=True)]


def anatomical_contrast_loss(
    represent: Represent,
    labels_or_pseudo: torch.Tensor,
    confidence: torch.Tensor,
    class_prob: torch.Tensor,
    painted: torch.Tensor,
    *,
    strong_threshold: float = 0.97,
    valid_threshold: float = 0.7,
    n_queries: int = 256,
    n_negatives: int = 512,
    n_keys: int = 512,
    temperature: float = 0.5,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """AnCo loss: hard pixel queries against their class prototype and negatives of similar-looking classes.

    Valid pixels: painted, or unpainted with ``confidence >= valid_threshold``. Per class c present: up to
    ``n_keys`` valid class-c pixels, drawn without replacement, form its key pool; its prototype r_c is the mean of
    the pool's (unit) representations (the reference averages every valid pixel: the same when the class has at
    most ``n_keys`` of them, a sample mean otherwise; memory grows with classes^2 x queries x keys); ``n_queries``
    hard queries (class-c pixels with ``class_prob < strong_threshold``) are drawn with replacement; per query
    ``n_negatives`` keys, each from a class drawn by :func:`sample_negative_classes`, then uniformly from that
    class's pool.
    ``loss_c = mean_q -log(e^{cos(q,r_c)/tau} / (e^{cos(q,r_c)/tau} + sum_n e^{cos(q,n)/tau}))``; keys
    (prototype and negatives) are detached, as in the reference. Result: ``sum_c loss_c / (classes present)``;
    classes without hard queries add 0; 0 (graph kept) with fewer than two classes present.

    Args:
        represent: representations at given pixels (``RepresentationHead.at`` bound to the decoder maps, or a
            dense ``(B, D, *S)`` map indexed); called once with gradient (queries), once without (keys).
        labels_or_pseudo: ``(B, *S)`` long, painted labels, teacher pseudo-labels elsewhere; 1..K (0 = none).
        confidence: ``(B, *S)`` teacher max probability (1 where painted); pixels below ``valid_threshold`` take
            no part unless painted.
        class_prob: ``(B, *S)`` predicted probability of each pixel's own class.
        painted: ``(B, *S)`` bool.
        strong_threshold: queries are pixels below this probability.
        valid_threshold: unpainted pixels need this confidence to take part.
        n_queries: queries per class.
        n_negatives: negatives per query.
        n_keys: largest key pool per class (prototype and negatives).
        temperature: tau, of both the loss and the negative-class softmax.
        generator: random source (on the labels' device).

    Returns:
        Scalar loss.
    """
    valid = (painted | (confidence >= valid_threshold)) & (labels_or_pseudo > 0)
    where = valid.nonzero(as_tuple=True)  # with `unique` below, the only reads from the device
    classes, y = labels_or_pseudo[where].unique(return_inverse=True)  # y: row index into classes
    n_classes = classes.numel()
    if n_classes < 2:
        return represent(tuple(w[:0] for w in where)).sum() * 0.0
    hard = class_prob[where] < strong_threshold
    counts, hard_counts = _per_class(y, torch.ones_like(y), n_classes), _per_class(y, hard, n_classes)
    with torch.no_grad():
        # queries: hard pixels of each class, with replacement (garbage rows for a class without any, masked below)
        hard_starts = hard_counts.cumsum(0) - hard_counts
        uniform = torch.rand(n_classes, n_queries, generator=generator, device=y.device)
        pick = (uniform * hard_counts[:, None]).long().minimum(hard_counts[:, None] - 1).clamp_min(0)
        hard_order = _grouped(torch.where(hard, y, n_classes), generator)
        queries_at = hard_order[(hard_starts[:, None] + pick).clamp_max(len(y) - 1)]  # (C, Q)
        # key pools: the first n_keys of each class in random order (no larger than the largest class)
        n_keys = min(n_keys, int(counts.max()))
        sizes = counts.clamp_max(n_keys)
        slot = torch.arange(n_keys, device=y.device)
        in_pool = slot < sizes[:, None]  # (C, K)
        keys_at = _grouped(y, generator)[(counts.cumsum(0) - counts)[:, None] + slot.minimum(sizes[:, None] - 1)]
        keys = F.normalize(represent(tuple(w[keys_at.flatten()] for w in where)), dim=1)  # (C * K, D)
        pooled = (keys.view(n_classes, n_keys, -1) * in_pool[..., None]).sum(1) / sizes[:, None]  # (C, D)
        every = torch.arange(n_classes, device=y.device)
        drawn = sample_negative_classes(pooled, every, n_queries * n_negatives, temperature, generator)
        drawn = drawn.view(n_classes, n_queries, n_negatives)
        uniform = torch.rand(drawn.shape, generator=generator, device=y.device)
        column = drawn * n_keys + (uniform * sizes[drawn]).long().minimum(sizes[drawn] - 1)  # (C, Q, N)
    queries = F.normalize(represent(tuple(w[queries_at.flatten()] for w in where)), dim=1)  # with gradient
    q = queries.view(n_classes, n_queries, -1)
    positive = (q * F.normalize(pooled, dim=1)[:, None]).sum(-1, keepdim=True)  # (C, Q, 1)
    negatives = (q @ keys.T).gather(2, column)  # (C, Q, N): cosines with the drawn keys
    logits = torch.cat([positive, negatives], dim=2).flatten(0, 1) / temperature
    target = torch.zeros(len(logits), dtype=torch.long, device=logits.device)
    loss = F.cross_entropy(logits, target, reduction="none").view(n_classes, n_queries).mean(1)
    return torch.where(hard_counts > 0, loss, 0.0).sum() / n_classes  # a class without hard queries adds 0
