"""Log-sum-exp of scaled dot products with all other keys, streamed in tiles so no M x N matrix is ever held.

Forward keeps a running max and a running sum per query; backward recomputes each tile, so peak memory is
O(chunk^2 + N * D) in both passes instead of O(M * N).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.autograd.function import FunctionCtx, once_differentiable


def _tiles(
    keys: torch.Tensor, query_index: torch.Tensor, scale: float, chunk: int
) -> Iterator[tuple[slice, torch.Tensor, slice, torch.Tensor, torch.Tensor]]:
    """Yield ``(rows, own, cols, q, s)``: ``q = keys[own]``, ``s = scale * q @ keys[cols].T`` with own keys at -inf."""
    for r0 in range(0, query_index.shape[0], chunk):
        rows = slice(r0, r0 + chunk)
        own = query_index[rows]
        q = keys[own]
        for c0 in range(0, keys.shape[0], chunk):
            cols = slice(c0, c0 + chunk)
            s = (q @ keys[cols].T).mul_(scale)
            local = (own - c0)[:, None]
            hit = (local >= 0) & (local < s.shape[1])  # the query's own key lies in this tile
            at = local.clamp(0, s.shape[1] - 1)
            s.scatter_(1, at, torch.where(hit, float("-inf"), s.gather(1, at)))  # no host read of `hit`
            yield rows, own, cols, q, s


class _LogSumExpOthers(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: FunctionCtx, keys: torch.Tensor, query_index: torch.Tensor, scale: float, chunk: int
    ) -> torch.Tensor:
        run_max = keys.new_full(query_index.shape, float("-inf"))
        run_sum = keys.new_zeros(query_index.shape)
        for rows, _, _, _, s in _tiles(keys, query_index, scale, chunk):
            new_max = torch.maximum(run_max[rows], s.amax(1))
            shift = torch.where(torch.isfinite(new_max), new_max, 0.0)  # a tile may hold only the own key
            run_sum[rows] = run_sum[rows] * (run_max[rows] - shift).exp() + (s - shift[:, None]).exp_().sum(1)
            run_max[rows] = new_max
        lse = run_max + run_sum.log()
        ctx.save_for_backward(keys, query_index, lse)
        ctx.scale, ctx.chunk = scale, chunk
        return lse

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        keys, query_index, lse = ctx.saved_tensors
        grad_keys = torch.zeros_like(keys)
        for rows, own, cols, q, s in _tiles(keys, query_index, ctx.scale, ctx.chunk):
            # softmax weight of each key, times upstream gradient and scale
            w = s.sub_(lse[rows, None]).exp_().mul_(grad[rows, None] * ctx.scale)
            grad_keys[own] += w @ keys[cols]  # query indices are distinct
            grad_keys[cols] += w.T @ q
        return grad_keys, None, None, None


def logsumexp_others(
    keys: torch.Tensor, query_index: torch.Tensor, scale: float, chunk_size: int = 4096
) -> torch.Tensor:
    """``lse_i = log sum_{a != query_index[i]} exp(scale * k_{query_index[i]} . k_a)``, differentiable in keys.

    Args:
        keys: ``(N, D)``.
        query_index: ``(M,)`` long, distinct rows of ``keys`` used as queries; each query's own row is excluded.
        scale: multiplier of the dot products (1 / temperature).
        chunk_size: tile side; memory per tile is ``chunk_size**2`` values.

    Returns:
        ``(M,)``.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    return _LogSumExpOthers.apply(keys, query_index, scale, chunk_size)
