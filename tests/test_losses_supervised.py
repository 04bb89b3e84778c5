"""Supervised cross-entropy + Dice restricted to painted pixels."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from napari_contrastseg.core.losses import painted_ce_dice_loss


def make_inputs(spatial, b=2, k=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(b, k, *spatial, generator=g, dtype=torch.float64, requires_grad=True)
    labels = torch.randint(0, k + 1, (b, *spatial), generator=g)
    return logits, labels


@pytest.mark.parametrize("spatial", [(6, 7), (3, 4, 5)])
def test_matches_direct_formula(spatial):
    logits, labels = make_inputs(spatial)
    painted = labels > 0
    p = logits.softmax(1).movedim(1, -1)[painted]  # (n, K)
    onehot = F.one_hot(labels[painted] - 1, logits.shape[1]).double()
    ce = -(p.log() * onehot).sum(1).mean()
    dice = 1 - (2 * (p * onehot).sum(0) + 1e-5) / (p.sum(0) + onehot.sum(0) + 1e-5)
    torch.testing.assert_close(painted_ce_dice_loss(logits, labels), ce + dice.mean())


@pytest.mark.parametrize("spatial", [(6, 7), (3, 4, 5)])
def test_unpainted_pixels_change_nothing(spatial):
    logits, labels = make_inputs(spatial, seed=1)
    unpainted = (labels == 0).unsqueeze(1)
    other = torch.where(unpainted, 10 * torch.randn_like(logits), logits).detach().requires_grad_()
    want = painted_ce_dice_loss(logits, labels)
    got = painted_ce_dice_loss(other, labels)
    (grad_want,) = torch.autograd.grad(want, logits)
    (grad_got,) = torch.autograd.grad(got, other)
    torch.testing.assert_close(got, want, atol=1e-12, rtol=0)
    torch.testing.assert_close(grad_got, grad_want, atol=1e-12, rtol=0)
    assert (grad_want * unpainted).abs().max() == 0


def test_nothing_painted_is_zero_with_graph():
    logits, labels = make_inputs((4, 4))
    loss = painted_ce_dice_loss(logits, torch.zeros_like(labels))
    assert loss.item() == 0.0
    loss.backward()
    assert logits.grad is not None and logits.grad.abs().max() == 0
