"""ACTION's anatomical contrast (AnCo, after ReCo): representation head, negative-class sampler and loss."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from monai.networks.layers import Conv
from torch import nn


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

    def forward(self, maps: Sequence[torch.Tensor]) -> torch.Tensor:
        """``maps``: ``(B, C_i, *S_i)`` each -> ``(B, dim, *S)`` with S the largest S_i."""
        size = max((m.shape[2:] for m in maps), key=lambda s: s.numel())
        mode = "bilinear" if len(size) == 2 else "trilinear"
        up = [m if m.shape[2:] == size else F.interpolate(m, size, mode=mode, align_corners=True) for m in maps]
        return F.normalize(self.proj(torch.cat(up, dim=1)), dim=1)


def sample_negative_classes(
    prototypes: torch.Tensor,
    query_class: int,
    n: int,
    tau: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Draw ``n`` negative classes v != c with probability ``softmax_v(cos(r_c, r_v) / tau)``.

    Args:
        prototypes: ``(C, D)`` class prototypes; classes are row indices.
        query_class: row index c of the query class.
        n: number of draws (with replacement).
        tau: temperature.
        generator: random source (on the prototypes' device).

    Returns:
        ``(n,)`` long row indices, never ``query_class``.
    """
    logits = F.cosine_similarity(prototypes[query_class, None], prototypes, dim=1) / tau
    own = torch.arange(len(prototypes), device=logits.device) == query_class
    logits = logits.masked_fill(own, float("-inf"))
    return torch.multinomial(logits.softmax(0), n, replacement=True, generator=generator)


def anatomical_contrast_loss(
    rep: torch.Tensor,
    labels_or_pseudo: torch.Tensor,
    confidence: torch.Tensor,
    class_prob: torch.Tensor,
    painted: torch.Tensor,
    *,
    strong_threshold: float = 0.97,
    valid_threshold: float = 0.7,
    n_queries: int = 256,
    n_negatives: int = 512,
    temperature: float = 0.5,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """AnCo loss: hard pixel queries against their class prototype and negatives of similar-looking classes.

    Valid pixels: painted, or unpainted with ``confidence >= valid_threshold``. Per class c present:
    prototype r_c = mean of valid class-c representations; ``n_queries`` hard queries (class-c pixels with
    ``class_prob < strong_threshold``) drawn with replacement; per query ``n_negatives`` pixels, each from a
    class drawn by :func:`sample_negative_classes`, then uniformly among that class's valid pixels.
    ``loss_c = mean_q -log(e^{cos(q,r_c)/tau} / (e^{cos(q,r_c)/tau} + sum_n e^{cos(q,n)/tau}))``; keys
    (prototype and negatives) are detached, as in the reference. Result: ``sum_c loss_c / (classes present)``;
    classes without hard queries add 0; 0 (graph kept) with fewer than two classes present.

    Args:
        rep: ``(B, D, *S)`` representations (compared by cosine similarity).
        labels_or_pseudo: ``(B, *S)`` long, painted labels, teacher pseudo-labels elsewhere; 1..K (0 = none).
        confidence: ``(B, *S)`` teacher max probability.
        class_prob: ``(B, *S)`` predicted probability of each pixel's own class.
        painted: ``(B, *S)`` bool.
        strong_threshold: queries are pixels below this probability.
        valid_threshold: unpainted pixels need this confidence to take part.
        n_queries: queries per class.
        n_negatives: negatives per query.
        temperature: tau, of both the loss and the negative-class softmax.
        generator: random source (on ``rep``'s device).

    Returns:
        Scalar loss.
    """
    valid = (painted | (confidence >= valid_threshold)) & (labels_or_pseudo > 0)
    where = valid.nonzero(as_tuple=True)  # with `unique` below, the only reads from the device
    x = rep.movedim(1, -1)[where]
    classes, y = labels_or_pseudo[where].unique(return_inverse=True)  # y: row index into classes
    if classes.numel() < 2:
        return rep.sum() * 0.0
    hard = class_prob[where] < strong_threshold

    def per_class(weights: torch.Tensor) -> torch.Tensor:  # bincount without reading max(y) from the device
        return torch.zeros(classes.numel(), dtype=torch.long, device=y.device).scatter_add_(0, y, weights.long())

    counts = per_class(torch.ones_like(y))
    with torch.no_grad():
        keys = x.detach()
        prototypes = (F.one_hot(y, classes.numel()).T.to(keys.dtype) @ keys) / counts[:, None]  # (C, D)
        by_class = F.normalize(keys, dim=1)[y.argsort(stable=True)]
        starts = counts.cumsum(0) - counts
        # hard pixels grouped by class, so a class's queries are drawn without reading its count on the host
        hard_order = torch.where(hard, y, classes.numel()).argsort(stable=True)
        hard_counts = per_class(hard)
        hard_starts = hard_counts.cumsum(0) - hard_counts
    total = rep.sum() * 0.0
    for c in range(classes.numel()):
        uniform = torch.rand(n_queries, generator=generator, device=rep.device)
        pick = (uniform * hard_counts[c]).long().minimum(hard_counts[c] - 1).clamp_min(0)
        queries = x[hard_order[hard_starts[c] + pick].clamp_max(len(y) - 1)]  # (Q, D); garbage if c has no hard
        with torch.no_grad():
            neg = sample_negative_classes(prototypes, c, n_queries * n_negatives, temperature, generator)
            uniform = torch.rand(neg.shape, generator=generator, device=rep.device)
            offset = (uniform * counts[neg]).long().minimum(counts[neg] - 1)
            negatives = by_class[starts[neg] + offset].view(n_queries, n_negatives, -1)
            positive = F.normalize(prototypes[c], dim=0).expand(n_queries, 1, -1)
            keys_c = torch.cat([positive, negatives], dim=1)  # (Q, 1 + n_negatives, D)
        logits = torch.bmm(keys_c, F.normalize(queries, dim=1)[:, :, None])[:, :, 0] / temperature
        loss_c = F.cross_entropy(logits, torch.zeros(n_queries, dtype=torch.long, device=rep.device))
        total = total + torch.where(hard_counts[c] > 0, loss_c, 0.0)  # a class without hard queries adds 0
    return total / classes.numel()
