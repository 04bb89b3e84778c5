"""SemiContrast local contrastive loss: streamed exact loss vs a dense N x N reference; stride and block."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from napari_contrastseg.core.losses import local_contrastive_loss


def dense_reference(emb_a, emb_b, labels, temperature=0.1, background=1):
    """Straightforward masked N x N formula over the painted pixels of both views."""
    painted = labels > 0
    f = torch.cat([emb_a.movedim(1, -1)[painted], emb_b.movedim(1, -1)[painted]])
    y = labels[painted].repeat(2)
    s = f @ f.T / temperature
    eye = torch.eye(len(y), dtype=torch.bool)
    log_prob = s - torch.logsumexp(s.masked_fill(eye, float("-inf")), dim=1, keepdim=True)
    pos = (y[:, None] == y[None, :]) & ~eye
    anchor = (y != background) & pos.any(1)
    if not anchor.any():
        return f.sum() * 0.0
    per_anchor = -(log_prob * pos).sum(1)[anchor] / pos.sum(1)[anchor]
    return per_anchor.mean()


def make_inputs(spatial, b=2, d=5, k=3, painted=0.6, seed=0):
    g = torch.Generator().manual_seed(seed)
    emb = [F.normalize(torch.randn(b, d, *spatial, generator=g, dtype=torch.float64), dim=1) for _ in range(2)]
    labels = torch.randint(1, k + 1, (b, *spatial), generator=g)
    labels[torch.rand(b, *spatial, generator=g) > painted] = 0
    return emb[0].requires_grad_(), emb[1].requires_grad_(), labels


def value_and_grads(fn, emb_a, emb_b, labels):
    loss = fn(emb_a, emb_b, labels)
    ga, gb = torch.autograd.grad(loss, (emb_a, emb_b))
    return loss.detach(), ga, gb


def assert_same(got, want, atol=1e-6):
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, atol=atol, rtol=0)


@pytest.mark.parametrize("spatial", [(6, 5), (3, 4, 3)])
@pytest.mark.parametrize("chunk,n_classes", [(1, None), (7, 3), (64, None), (10_000, 5)])  # K = 3, or a bound
def test_exact_matches_dense(spatial, chunk, n_classes):
    emb_a, emb_b, labels = make_inputs(spatial)
    want = value_and_grads(dense_reference, emb_a, emb_b, labels)
    got = value_and_grads(
        lambda a, b, y: local_contrastive_loss(a, b, y, chunk_size=chunk, n_classes=n_classes), emb_a, emb_b, labels
    )
    assert want[0] > 0
    assert_same(got, want)


@pytest.mark.parametrize("temperature,background", [(0.5, 1), (0.07, 2)])
def test_exact_options(temperature, background):
    emb_a, emb_b, labels = make_inputs((5, 6), seed=3)
    want = value_and_grads(lambda a, b, y: dense_reference(a, b, y, temperature, background), emb_a, emb_b, labels)
    got = value_and_grads(
        lambda a, b, y: local_contrastive_loss(a, b, y, temperature=temperature, background=background, chunk_size=5),
        emb_a,
        emb_b,
        labels,
    )
    assert_same(got, want)


def test_gradcheck_exact():
    emb_a, emb_b, labels = make_inputs((3, 3), b=1, d=3, seed=4)
    assert torch.autograd.gradcheck(
        lambda a, b: local_contrastive_loss(a, b, labels, chunk_size=4), (emb_a, emb_b), eps=1e-6, atol=1e-5
    )


@pytest.mark.parametrize("mode", ["exact", "stride", "block"])
def test_unpainted_pixels_change_nothing(mode):
    emb_a, emb_b, labels = make_inputs((8, 8), seed=1)
    unpainted = (labels == 0).unsqueeze(1)
    with torch.no_grad():
        other_a = torch.where(unpainted, F.normalize(torch.randn_like(emb_a), dim=1), emb_a).requires_grad_()
        other_b = torch.where(unpainted, F.normalize(torch.randn_like(emb_b), dim=1), emb_b).requires_grad_()

    def fn(a, b, y):
        return local_contrastive_loss(a, b, y, mode=mode, stride=2, block=4, chunk_size=9)

    want = value_and_grads(fn, emb_a, emb_b, labels)
    got = value_and_grads(fn, other_a, other_b, labels)
    assert_same(got, want, atol=1e-12)
    assert (want[1] * unpainted).abs().max() == 0 and (want[2] * unpainted).abs().max() == 0


@pytest.mark.parametrize("spatial", [(8, 6), (4, 6, 5)])
def test_block_of_full_size_equals_exact(spatial):
    emb_a, emb_b, labels = make_inputs(spatial, seed=2)
    want = value_and_grads(local_contrastive_loss, emb_a, emb_b, labels)
    got = value_and_grads(
        lambda a, b, y: local_contrastive_loss(a, b, y, mode="block", block=max(spatial)), emb_a, emb_b, labels
    )
    assert_same(got, want)


@pytest.mark.parametrize("spatial", [(7, 10), (5, 6, 7)])
def test_block_averages_over_blocks_with_anchors(spatial):
    emb_a, emb_b, labels = make_inputs(spatial, seed=5)
    labels[(..., *(slice(0, 4),) * len(spatial))] = labels[(..., *(slice(0, 4),) * len(spatial))].clamp(max=1)
    want = []  # edge blocks are smaller; the all-background corner block has no anchor and is skipped
    for corner in itertools.product(*(range(0, n, 4) for n in spatial)):
        win = (..., *(slice(c, c + 4) for c in corner))
        if (labels[win] > 1).any():
            want.append(dense_reference(emb_a[win], emb_b[win], labels[win]))
    assert len(want) == len(list(itertools.product(*(range(0, n, 4) for n in spatial)))) - 1
    got = value_and_grads(lambda a, b, y: local_contrastive_loss(a, b, y, mode="block", block=4), emb_a, emb_b, labels)
    assert_same(got, value_and_grads(lambda a, b, y: torch.stack(want).mean(), emb_a, emb_b, labels))


@pytest.mark.parametrize("spatial", [(9, 7), (5, 6, 7)])
def test_stride(spatial):
    emb_a, emb_b, labels = make_inputs(spatial, seed=6)
    exact = value_and_grads(local_contrastive_loss, emb_a, emb_b, labels)
    assert_same(
        value_and_grads(lambda a, b, y: local_contrastive_loss(a, b, y, mode="stride", stride=1), emb_a, emb_b, labels),
        exact,
    )
    sub = (..., *(slice(None, None, 3),) * len(spatial))
    got = local_contrastive_loss(emb_a, emb_b, labels, mode="stride", stride=3)
    torch.testing.assert_close(got, local_contrastive_loss(emb_a[sub], emb_b[sub], labels[sub]), atol=1e-6, rtol=0)


def test_no_anchor_gives_zero_with_graph():
    emb_a, emb_b, labels = make_inputs((4, 4), seed=7)
    labels[labels > 1] = 0  # background only
    loss = local_contrastive_loss(emb_a, emb_b, labels)
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert emb_a.grad.abs().max() == 0


def test_unknown_mode():
    emb_a, emb_b, labels = make_inputs((4, 4))
    with pytest.raises(ValueError, match="mode"):
        local_contrastive_loss(emb_a, emb_b, labels, mode="dense")


@pytest.mark.parametrize("mode", ["exact", "stride", "block"])
@pytest.mark.parametrize("spatial", [(8, 6), (4, 5, 4)])
def test_projecting_only_used_pixels_equals_the_dense_head(mode, spatial):
    from napari_contrastseg.core.methods.semicontrast import PixelEmbeddingHead

    torch.manual_seed(0)
    head = PixelEmbeddingHead(len(spatial), 4, hidden=8, dim=5).double()
    g = torch.Generator().manual_seed(1)
    feats = [torch.randn(2, 4, *spatial, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(2)]
    labels = make_inputs(spatial)[2]
    kw = {"mode": mode, "stride": 2, "block": 3}
    dense = local_contrastive_loss(head(feats[0]), head(feats[1]), labels, **kw)
    rows = local_contrastive_loss(feats[0], feats[1], labels, project=head.rows, **kw)
    assert dense.item() > 0
    assert_same([rows, *torch.autograd.grad(rows, feats)], [dense, *torch.autograd.grad(dense, feats)], atol=1e-10)


def test_projected_rows_without_anchor_give_zero_with_the_head_in_the_graph():
    from napari_contrastseg.core.methods.semicontrast import PixelEmbeddingHead

    head = PixelEmbeddingHead(2, 4, hidden=8, dim=5)
    feats = [torch.randn(1, 4, 6, 6, requires_grad=True) for _ in range(2)]
    labels = torch.zeros(1, 6, 6, dtype=torch.long)
    labels[0, 0, :3] = 1  # background only: no anchor
    loss = local_contrastive_loss(feats[0], feats[1], labels, project=head.rows)
    loss.backward()
    assert loss.item() == 0.0 and all(p.grad is not None for p in head.parameters())
