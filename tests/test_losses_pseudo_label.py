"""ACTION unsupervised term: confidence-weighted pseudo-label loss and CutMix."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from napari_contrastseg.core.losses import cutmix, pseudo_label_loss


def test_weight_is_fraction_of_confident_pixels():
    teacher = torch.full((2, 2, 2, 5), 0.5)  # (B, K, H, W), 10 pixels per image
    teacher[0, :, 0, :3] = torch.tensor([0.98, 0.02])[:, None]  # image 0: 3 confident pixels
    teacher[1, :, :, :] = torch.tensor([0.01, 0.99])[:, None, None]  # image 1: all confident
    teacher[1, :, 1, 4] = torch.tensor([0.6, 0.4])  # ... but one
    logits = torch.randn(2, 2, 2, 5, requires_grad=True)
    loss, weight = pseudo_label_loss(logits, teacher, threshold=0.97)
    torch.testing.assert_close(weight, torch.tensor([0.3, 0.9]))
    ce = F.cross_entropy(logits, teacher.argmax(1), reduction="none").flatten(1).mean(1)
    torch.testing.assert_close(loss, (weight * ce).mean())
    loss.backward()
    assert logits.grad.abs().sum() > 0


def test_teacher_gets_no_gradient():
    teacher = torch.rand(1, 3, 4, 4, 4).softmax(1).requires_grad_()
    loss, _ = pseudo_label_loss(torch.randn(1, 3, 4, 4, 4, requires_grad=True), teacher, threshold=0.0)
    loss.backward()
    assert teacher.grad is None


@pytest.mark.parametrize("spatial", [(16, 20), (8, 10, 12)])
def test_cutmix_pastes_one_box_into_images_and_targets(spatial):
    g = torch.Generator().manual_seed(0)
    b = 3
    images_a, images_b = torch.zeros(b, 2, *spatial), torch.ones(b, 2, *spatial)
    labels = (torch.zeros(b, *spatial, dtype=torch.long), torch.ones(b, *spatial, dtype=torch.long))
    probs = (torch.zeros(b, 4, *spatial), torch.ones(b, 4, *spatial))
    mixed, mixed_labels, mixed_probs = cutmix(images_a, images_b, labels, probs, generator=g)
    assert mixed.shape == images_a.shape and mixed_probs.shape == probs[0].shape
    box = mixed[:, 0] == 1
    assert torch.equal(mixed, box[:, None].expand_as(mixed).float())
    assert torch.equal(mixed_labels, box.long())
    assert torch.equal(mixed_probs, box[:, None].expand_as(mixed_probs).float())
    for i in range(b):
        idx = box[i].nonzero()
        extent = idx.max(0).values - idx.min(0).values + 1
        assert extent.prod() == idx.shape[0]  # a single box
        assert abs(idx.shape[0] / box[i].numel() - 0.5) < 0.1
