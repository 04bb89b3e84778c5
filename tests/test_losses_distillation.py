"""ACTION contrastive distillation: KL loss, queue, EMA teacher, heads and patch pooling."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from napari_contrastseg.core.losses import (
    EmbeddingQueue,
    ProjectionMLP,
    contrastive_distillation_loss,
    ema_update,
    local_patch_embeddings,
)


def embeddings(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_zero_when_student_and_teacher_agree():
    z, anchors = embeddings(5, 8), embeddings(36, 8, seed=1)
    assert contrastive_distillation_loss(z, 3 * z, anchors, tau_s=0.1, tau_t=0.1).abs() < 1e-12
    assert contrastive_distillation_loss(z, z, anchors) > 0  # the teacher is sharper (tau_t < tau_s)
    assert contrastive_distillation_loss(z, embeddings(5, 8, seed=2), anchors, tau_s=0.1, tau_t=0.1) > 0


def test_matches_direct_kl():
    student, teacher, anchors = embeddings(4, 6), embeddings(4, 6, seed=1), embeddings(7, 6, seed=2)
    student.requires_grad_()
    teacher.requires_grad_()

    def probs(z, tau):
        cos = torch.stack([torch.stack([F.cosine_similarity(r, a, dim=0) for a in anchors]) for r in z])
        return (cos / tau).softmax(1)

    p_t, p_s = probs(teacher, 0.01), probs(student, 0.1)
    want = (p_t * (p_t.log() - p_s.log())).sum(1).mean()
    loss = contrastive_distillation_loss(student, teacher, anchors)
    torch.testing.assert_close(loss, want)
    loss.backward()
    assert teacher.grad is None and student.grad.abs().sum() > 0


def test_queue_is_fifo():
    queue = EmbeddingQueue(dim=2, size=4)
    assert not queue.is_ready and queue.anchors.shape == (0, 2)
    queue.push(torch.tensor([[1.0, 0], [2, 0], [3, 0]], requires_grad=True))
    assert not queue.is_ready and queue.anchors[:, 0].tolist() == [1, 2, 3]
    queue.push(torch.tensor([[4.0, 0], [5, 0]]))
    assert queue.is_ready and sorted(queue.anchors[:, 0].tolist()) == [2, 3, 4, 5]
    queue.push(torch.arange(6.0)[:, None].expand(6, 2) + 10)
    assert sorted(queue.anchors[:, 0].tolist()) == [12, 13, 14, 15]
    assert not queue.anchors.requires_grad
    assert set(queue.state_dict()) == {"queue", "count"}


def test_ema_update_formula_and_buffers():
    torch.manual_seed(0)
    student = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3))
    teacher = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3))
    student(torch.randn(4, 2, 5, 5))  # moves the student's running statistics
    before = [p.detach().clone() for p in teacher.parameters()]
    ema_update(teacher, student, momentum=0.9)
    for t, t0, s in zip(teacher.parameters(), before, student.parameters(), strict=True):
        torch.testing.assert_close(t, 0.9 * t0 + 0.1 * s.detach())
        assert t.grad is None
    for t, s in zip(teacher.buffers(), student.buffers(), strict=True):
        assert torch.equal(t, s)


@pytest.mark.parametrize("nonlinear", [True, False])
def test_projection_mlp(nonlinear):
    mlp = ProjectionMLP(6, hidden=5, out_features=4, nonlinear=nonlinear)
    x = torch.randn(3, 6)
    assert mlp(x).shape == (3, 4)
    assert isinstance(mlp.mlp[1], nn.ReLU if nonlinear else nn.Identity)


def test_local_patch_embeddings_2d():
    feat = torch.arange(2 * 3 * 4 * 6, dtype=torch.float32).reshape(2, 3, 4, 6)
    out = local_patch_embeddings(feat, patch=4, stride=2)  # one row of 2 patches per image
    assert out.shape == (4, 3)
    torch.testing.assert_close(out[1], feat[0, :, :, 2:6].mean((1, 2)))
    torch.testing.assert_close(out[2], feat[1, :, :, 0:4].mean((1, 2)))


def test_local_patch_embeddings_3d_and_small_maps():
    feat = torch.randn(2, 3, 4, 4, 4)
    assert local_patch_embeddings(feat, patch=2, stride=2).shape == (2 * 8, 3)
    torch.testing.assert_close(local_patch_embeddings(feat, patch=64, stride=32), feat.mean((2, 3, 4)))
