"""SemiContrast global branch: NT-Xent and the projection head."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from napari_contrastseg.core.losses import GlobalProjectionHead, nt_xent_loss


def simclr_reference(z_a, z_b, tau):
    z = F.normalize(torch.cat([z_a, z_b]), dim=1)
    n = z_a.shape[0]
    total = 0.0
    for i in range(2 * n):
        positive = (i + n) % (2 * n)
        sims = [torch.dot(z[i], z[k]) / tau for k in range(2 * n)]
        denominator = sum(torch.exp(s) for k, s in enumerate(sims) if k != i)
        total = total - torch.log(torch.exp(sims[positive]) / denominator)
    return total / (2 * n)


@pytest.mark.parametrize("tau", [0.5, 0.1])
def test_nt_xent_matches_simclr(tau):
    g = torch.Generator().manual_seed(0)
    z_a, z_b = torch.randn(2, 4, 6, generator=g, dtype=torch.float64)
    torch.testing.assert_close(nt_xent_loss(z_a, z_b, tau), simclr_reference(z_a, z_b, tau))


def test_nt_xent_prefers_matching_views():
    z = torch.randn(6, 8, generator=torch.Generator().manual_seed(1))
    assert nt_xent_loss(z, z) < nt_xent_loss(z, z.roll(1, 0))


@pytest.mark.parametrize("spatial", [(5, 6), (3, 4, 5)])
def test_global_head_shapes(spatial):
    head = GlobalProjectionHead(8, hidden=16, out=4)
    feat = torch.randn(3, 8, *spatial)
    out = head(feat)
    assert out.shape == (3, 4)
    torch.testing.assert_close(out, head.mlp(feat.mean(dim=tuple(range(2, feat.ndim)))))
