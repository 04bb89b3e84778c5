"""ACTION's contrastive distillation: teacher-embedding queue, soft-negative KL loss, EMA teacher, heads."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class EmbeddingQueue(nn.Module):
    """FIFO of the latest ``size`` teacher embeddings, in buffers so it follows ``.to()`` and state dicts.

    Args:
        dim: D.
        size: K, the number of anchors (reference 36).
    """

    def __init__(self, dim: int, size: int = 36) -> None:
        super().__init__()
        self.register_buffer("queue", torch.zeros(size, dim))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))  # embeddings pushed so far

    @torch.no_grad()
    def push(self, z: torch.Tensor) -> None:
        """Append ``z (N, D)`` (detached), dropping the oldest entries once full."""
        size = self.queue.shape[0]
        z = z.detach()[-size:].to(self.queue)
        slots = (self.count + torch.arange(z.shape[0], device=self.queue.device)) % size
        self.queue[slots] = z
        self.count += z.shape[0]

    @property
    def anchors(self) -> torch.Tensor:
        """``(K, D)`` stored embeddings (fewer rows than ``size`` until full)."""
        return self.queue[: int(self.count.clamp(max=self.queue.shape[0]))]

    @property
    def is_ready(self) -> bool:
        """Whether the queue is full."""
        return int(self.count) >= self.queue.shape[0]


def contrastive_distillation_loss(
    student: torch.Tensor,
    teacher: torch.Tensor,
    anchors: torch.Tensor,
    tau_s: float = 0.1,
    tau_t: float = 0.01,
) -> torch.Tensor:
    """Mean ``KL(p_t || p_s)`` with ``p = softmax_j(cos(z, a_j) / tau)`` over the anchors.

    Args:
        student: ``(N, D)`` student embeddings (after the predictor).
        teacher: ``(N, D)`` teacher embeddings; detached, as are the anchors.
        anchors: ``(K, D)`` queue of teacher embeddings.
        tau_s: student temperature.
        tau_t: teacher temperature (sharper).

    Returns:
        Scalar, KL summed over anchors and averaged over the N rows.
    """
    a = F.normalize(anchors.detach(), dim=1)
    log_p_s = F.log_softmax(F.normalize(student, dim=1) @ a.T / tau_s, dim=1)
    log_p_t = F.log_softmax(F.normalize(teacher.detach(), dim=1) @ a.T / tau_t, dim=1)
    return F.kl_div(log_p_s, log_p_t, reduction="batchmean", log_target=True)


@torch.no_grad()
def ema_update(teacher: nn.Module, student: nn.Module, momentum: float = 0.99) -> None:
    """``theta_t <- m theta_t + (1 - m) theta_s`` for parameters; buffers (e.g. BatchNorm stats) copied."""
    pairs = list(zip(teacher.parameters(), student.parameters(), strict=True))
    if pairs:  # one fused update for all parameters
        torch._foreach_lerp_([t for t, _ in pairs], [s.to(t.dtype) for t, s in pairs], 1.0 - momentum)
    for t, s in zip(teacher.buffers(), student.buffers(), strict=True):
        t.copy_(s)


class ProjectionMLP(nn.Module):
    """Head or predictor MLP of the global and local distillation branches: ``(N, in) -> (N, out)``.

    Linear -> ReLU -> Linear. The reference code stacks two Linear layers with no activation
    (``nonlinear=False`` reproduces it, which collapses to one linear map).

    Args:
        in_features: input width.
        hidden: hidden width.
        out_features: embedding width D.
        nonlinear: put a ReLU between the two layers.
    """

    def __init__(self, in_features: int, hidden: int = 256, out_features: int = 256, nonlinear: bool = True) -> None:
        super().__init__()
        act: nn.Module = nn.ReLU(inplace=True) if nonlinear else nn.Identity()
        self.mlp = nn.Sequential(nn.Linear(in_features, hidden), act, nn.Linear(hidden, out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(N, in_features)`` -> ``(N, out_features)``."""
        return self.mlp(x)


def local_patch_embeddings(feat: torch.Tensor, patch: int, stride: int) -> torch.Tensor:
    """Average-pool ``patch``-sided patches every ``stride`` pixels (2D or 3D).

    Args:
        feat: ``(B, C, *S)``.
        patch: patch side (reference 64), clamped per axis to the map size so small crops give one patch.
        stride: step between patches (reference 32).

    Returns:
        ``(B * P, C)``, batch-major (all P patches of image 0 first).
    """
    spatial = feat.shape[2:]
    kernel = [min(patch, n) for n in spatial]
    pool = F.avg_pool2d if len(spatial) == 2 else F.avg_pool3d
    pooled = pool(feat, kernel, stride=stride)
    return pooled.flatten(2).transpose(1, 2).reshape(-1, feat.shape[1])
