"""SemiContrast's supervised local (pixel-wise) contrastive loss: exact, strided or per block."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F

from .streaming_lse import logsumexp_others

MODES = ("exact", "stride", "block")


def _painted_pixels(
    emb_a: torch.Tensor, emb_b: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows ``(N, D)`` and labels ``(N,)`` of the painted pixels of both views (N = 2 x painted).

    Selected by integer indices, so the number of painted pixels is read from the device once per call (boolean
    masks would read it once per mask, and again in backward).
    """
    where = (labels > 0).nonzero(as_tuple=True)
    return torch.cat([emb_a.movedim(1, -1)[where], emb_b.movedim(1, -1)[where]]), labels[where].repeat(2)


def _block_ids(spatial: torch.Size, block: int, device: torch.device) -> torch.Tensor:
    """``(*S)`` long: index of the ``block``-sided square/cube each pixel falls in."""
    ids = torch.zeros((), dtype=torch.long, device=device)
    for n in spatial:
        ids = ids[..., None] * -(-n // block) + torch.arange(n, device=device) // block
    return ids


def _supcon(
    x: torch.Tensor, y: torch.Tensor, temperature: float, background: int, chunk_size: int, n_values: int | None
) -> torch.Tensor | None:
    """Mean SupCon loss over anchors (non-background with a positive) of the set ``x (N, D)``, ``y (N,)``.

    The positive term uses per-class sums (O(N D)); only the log-sum-exp needs all pairs and is streamed.
    ``n_values`` bounds the label values (read from ``y`` when None). Returns None when there is no anchor.
    """
    if n_values is None:
        counts = torch.bincount(y)
    else:  # a fixed size: no host read of max(y)
        counts = torch.zeros(n_values, dtype=torch.long, device=y.device).scatter_add_(0, y, torch.ones_like(y))
    index = ((y != background) & (counts[y] > 1)).nonzero()[:, 0]
    if index.numel() == 0:
        return None
    class_sum = F.one_hot(y, counts.numel()).T.to(x.dtype) @ x  # (classes, D)
    same_class = (x @ class_sum.T).gather(1, y[:, None])[:, 0] - x.square().sum(1)  # sum_{p in P_i} f_i . f_p
    positive = same_class[index] / (counts[y[index]] - 1) / temperature
    return (logsumexp_others(x, index, 1.0 / temperature, chunk_size) - positive).mean()


def local_contrastive_loss(
    emb_a: torch.Tensor,
    emb_b: torch.Tensor,
    labels: torch.Tensor,
    *,
    mode: str = "exact",
    stride: int = 4,
    block: int = 16,
    temperature: float = 0.1,
    background: int = 1,
    chunk_size: int = 4096,
    n_classes: int | None = None,
    project: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Supervised pixel contrastive loss between two pixel-aligned views.

    For anchor i: ``loss_i = -1/|P_i| sum_{p in P_i} [s_ip - log sum_{a != i} exp(s_ia)]``, ``s = f.f / tau``,
    over the set of painted pixels of both views and the whole batch. Anchors are painted non-background
    pixels; P_i are the other pixels of the set with the same label; background pixels are negatives only;
    unpainted pixels take no part. Mean over anchors; 0 (graph kept) when there is none.

    Args:
        emb_a: ``(B, D, *S)`` L2-normalised embeddings of view a, S = (H, W) or (D, H, W).
        emb_b: ``(B, D, *S)`` the same for view b.
        labels: ``(B, *S)`` long, shared by both views; 0 = unpainted, 1..K classes.
        mode: ``"exact"`` (full resolution, streamed in ``chunk_size`` tiles, memory O(chunk^2 + N D)),
            ``"stride"`` (exact loss on every ``stride``-th pixel per axis; labels indexed, never
            interpolated) or ``"block"`` (loss inside each non-overlapping ``block``-sided square/cube,
            pairing the pixels of both views and the whole batch at that position, as the reference does;
            edge blocks may be smaller; blocks with no anchor skipped; mean over the others).
        temperature: tau.
        background: label whose pixels are never anchors.
        chunk_size: tile side of the streamed log-sum-exp.
        n_classes: K, when known: saves a read of the largest label from the device.
        project: when given, ``emb_a``/``emb_b`` are ``(B, C, *S)`` features and ``project`` maps the rows of the
            pixels that take part, ``(N, C) -> (N, D)`` L2-normalised (a pointwise head applied only where needed).

    Returns:
        Scalar loss.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if mode == "stride":
        axes = (..., *(slice(None, None, stride),) * (labels.ndim - 1))
        emb_a, emb_b, labels = emb_a[axes], emb_b[axes], labels[axes]
    x, y = _painted_pixels(emb_a, emb_b, labels)
    x = x if project is None else project(x)
    n_values = None if n_classes is None else n_classes + 1
    groups: Iterable[tuple[torch.Tensor, torch.Tensor]] = [(x, y)]
    if mode == "block":  # one split of block-sorted pixels, so backward stays O(N D) however many blocks
        ids = _block_ids(labels.shape[1:], block, labels.device).expand_as(labels)[labels > 0].repeat(2)
        ids, order = ids.sort(stable=True)
        sizes = torch.unique_consecutive(ids, return_counts=True)[1].tolist()
        x, y = x[order], y[order]
        groups = zip(x.split(sizes), y.split(sizes), strict=True)
    losses = [
        loss
        for xs, ys in groups
        if (loss := _supcon(xs, ys, temperature, background, chunk_size, n_values)) is not None
    ]
    return torch.stack(losses).mean() if losses else x.sum() * 0.0  # the graph kept, head included
