"""ACTION anatomical contrast: representation head, negative-class sampler and loss."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from scipy.stats import chisquare

from napari_contrastseg.core.losses import RepresentationHead, anatomical_contrast_loss, sample_negative_classes


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_representation_head(spatial_dims):
    head = RepresentationHead([8, 4], dim=6, spatial_dims=spatial_dims)
    coarse, fine = torch.randn(2, 8, *(3,) * spatial_dims), torch.randn(2, 4, *(6,) * spatial_dims)
    rep = head([coarse, fine])
    assert rep.shape == (2, 6, *(6,) * spatial_dims)
    torch.testing.assert_close(rep.norm(dim=1), torch.ones(2, *(6,) * spatial_dims))
    index = torch.nonzero(torch.rand(2, *(6,) * spatial_dims, generator=torch.Generator().manual_seed(0)) < 0.3)
    index = tuple(index.T)  # border pixels included: the zero padding has to match the convolution's
    torch.testing.assert_close(head.at([coarse, fine], index), rep.movedim(1, -1)[index])


def test_representation_at_pixels_carries_the_gradient():
    torch.manual_seed(0)  # a random head of 4 ReLU units can be dead at a pixel (about 4 % of seeds)
    head = RepresentationHead([3, 2], dim=4)
    coarse, fine = torch.randn(1, 3, 4, 4, requires_grad=True), torch.randn(1, 2, 8, 8, requires_grad=True)
    index = (torch.tensor([0]), torch.tensor([5]), torch.tensor([2]))
    head.at([coarse, fine], index).sum().backward()
    assert coarse.grad.abs().sum() > 0 and head.proj[0].weight.grad.abs().sum() > 0
    assert (fine.grad[0, :, 3:8, 1:4] != 0).any() and fine.grad[0, :, :3].abs().sum() == 0  # only its 3x3 window


def dense(rep):
    """``represent`` over a dense ``(B, D, *S)`` map."""
    return lambda index: rep.movedim(1, -1)[index]


def test_negative_class_sampler_follows_prototype_softmax():
    prototypes = torch.randn(5, 8, generator=torch.Generator().manual_seed(0))
    query, tau, n = 2, 0.5, 20_000
    draws = sample_negative_classes(prototypes, query, n, tau, torch.Generator().manual_seed(1))
    counts = torch.bincount(draws, minlength=5)
    assert counts[query] == 0
    others = [v for v in range(5) if v != query]
    cos = torch.stack([F.cosine_similarity(prototypes[query], prototypes[v], dim=0) for v in others])
    expected = (cos / tau).softmax(0) * n
    assert chisquare(counts[others].double().numpy(), expected.double().numpy()).pvalue > 0.01


def test_hand_checked_example():
    """Class 1: painted hard a, confident unpainted easy b; class 2: painted easy c; d is not confident enough."""
    a, b, c, d = (1.0, 0.0), (0.6, 0.8), (0.0, 1.0), (0.6, -0.8)
    rep = torch.tensor([a, b, c, d]).T.reshape(1, 2, 1, 4).requires_grad_()
    labels = torch.tensor([[[1, 1, 2, 2]]])
    confidence = torch.tensor([[[1.0, 0.8, 1.0, 0.5]]])
    class_prob = torch.tensor([[[0.5, 0.99, 0.99, 0.5]]])
    painted = torch.tensor([[[True, False, True, False]]])
    loss = anatomical_contrast_loss(dense(rep), labels, confidence, class_prob, painted, n_queries=8, n_negatives=16)
    s = (2 / math.sqrt(5)) / 0.5  # cos(a, mean(a, b)) / tau; negatives are all c with cos(a, c) = 0
    want = -math.log(math.exp(s) / (math.exp(s) + 16)) / 2  # class 2 has no hard query; 2 classes present
    assert loss.item() == pytest.approx(want, rel=1e-6)
    loss.backward()
    assert rep.grad[0, :, 0, 0].abs().sum() > 0 and rep.grad[0, :, 0, 1:].abs().sum() == 0  # keys detached


def random_case(seed=0, k=4, spatial=(12, 12)):
    g = torch.Generator().manual_seed(seed)
    rep = F.normalize(torch.randn(2, 6, *spatial, generator=g), dim=1).requires_grad_()
    labels = torch.randint(1, k + 1, (2, *spatial), generator=g)
    confidence = torch.rand(2, *spatial, generator=g)
    class_prob = torch.rand(2, *spatial, generator=g)
    painted = torch.rand(2, *spatial, generator=g) < 0.3
    return rep, labels, confidence, class_prob, painted


@pytest.mark.parametrize("spatial", [(12, 12), (5, 6, 7)])
def test_finite_differentiable_and_seeded(spatial):
    case = random_case(spatial=spatial)
    loss = anatomical_contrast_loss(dense(case[0]), *case[1:], generator=torch.Generator().manual_seed(3))
    again = anatomical_contrast_loss(dense(case[0]), *case[1:], generator=torch.Generator().manual_seed(3))
    assert torch.isfinite(loss) and loss > 0 and loss == again
    loss.backward()
    assert torch.isfinite(case[0].grad).all() and case[0].grad.abs().sum() > 0


def test_fewer_than_two_classes_gives_zero():
    rep, labels, confidence, class_prob, painted = random_case()
    loss = anatomical_contrast_loss(dense(rep), torch.full_like(labels, 3), confidence, class_prob, painted)
    assert loss.item() == 0.0 and loss.requires_grad


def test_unconfident_unpainted_pixels_are_ignored():
    rep, labels, confidence, class_prob, painted = random_case(seed=1)
    ignored = ~painted & (confidence < 0.7)
    moved = torch.where(ignored, 4, labels)  # relabelling ignored pixels changes nothing
    losses = [
        anatomical_contrast_loss(
            dense(rep), y, confidence, class_prob, painted, generator=torch.Generator().manual_seed(0)
        )
        for y in (labels, moved)
    ]
    assert losses[0] == losses[1]


def test_all_easy_queries_give_zero():
    rep, labels, confidence, class_prob, painted = random_case(seed=2)
    loss = anatomical_contrast_loss(dense(rep), labels, confidence, torch.ones_like(class_prob), painted)
    assert loss.item() == 0.0


def test_key_pool_is_never_larger_than_the_largest_class():
    rep, labels, confidence, class_prob, painted = random_case(seed=4)
    losses = [
        anatomical_contrast_loss(
            dense(rep), labels, confidence, class_prob, painted, n_keys=n, generator=torch.Generator().manual_seed(0)
        )  # fmt: skip
        for n in (288, 10**9)  # 2 x 12 x 12 pixels: a pool of 10**9 would not fit in memory
    ]
    assert losses[0] == losses[1] and losses[0] > 0
