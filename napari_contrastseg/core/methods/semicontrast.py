"""SemiContrast (Hu et al., MICCAI 2021): global NT-Xent pre-training, supervised local contrast, fine-tuning.

Schedule inside one budget (fractions are options): stage 1 ``global_fraction`` of the iterations trains with the
global NT-Xent loss between two augmented views of unlabelled crops; stage 2 ``local_fraction`` with the
supervised local contrastive loss on painted pixels of two intensity-augmented views; stage 3 (the rest) fine-tunes
with the supervised loss. The reference runs the stages as separate trainings without supervision in stages 1-2;
``joint_supervision`` (default True, a named deviation for the interactive setting, where previews must be useful
from the start) adds the supervised loss to every stage.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..augment import intensity_augment
from ..losses import GlobalProjectionHead, local_contrastive_loss, nt_xent_loss, painted_ce_dice_loss
from ..network import UNet
from .base import Batch, Method, register
from .schedule import seeded_generator, stage_at


class PixelEmbeddingHead(nn.Module):
    """Conv1x1 -> ReLU -> Conv1x1, L2-normalised: ``(B, C, *S) -> (B, dim, *S)`` (reference 64 -> 256 -> 128)."""

    def __init__(self, spatial_dims: int, in_channels: int, hidden: int = 256, dim: int = 128) -> None:
        super().__init__()
        conv = nn.Conv2d if spatial_dims == 2 else nn.Conv3d
        self.net = nn.Sequential(conv(in_channels, hidden, 1), nn.ReLU(inplace=True), conv(hidden, dim, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.net(x), dim=1)


def random_flip_rotate(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A random in-plane quarter turn and flip per batch (the global views' spatial augmentation)."""
    dims = (-2, -1)
    x = torch.rot90(x, int(torch.randint(4, (), generator=generator)), dims)
    return x.flip(-1) if torch.rand((), generator=generator) < 0.5 else x


@register
class SemiContrast(Method):
    """Global + supervised local contrastive learning; see the module docstring for the schedule."""

    name = "semicontrast"
    needs_unlabelled = True
    defaults = {
        "global_fraction": 0.25,
        "local_fraction": 0.35,
        "joint_supervision": True,
        "global_temperature": 0.5,
        "local_temperature": 0.1,
        "local_mode": "exact",  # exact | stride | block
        "stride": 4,
        "block": 16,
        "chunk_size": 4096,
        "local_batch": None,  # labelled crops entering the local loss (None: the whole batch, as the reference)
        "embedding_dim": 128,
    }

    def __init__(self, network: UNet, n_classes: int, options: dict | None = None) -> None:
        super().__init__(network, n_classes, options)
        dims, o = network.spatial_dims, self.options
        self.global_head = GlobalProjectionHead(network.features[-1])
        self.pixel_head = PixelEmbeddingHead(dims, network.features[0], dim=o["embedding_dim"])
        self.generator = seeded_generator()

    def losses(self, network: UNet, batch: Batch, progress: float) -> dict[str, torch.Tensor]:
        o = self.options
        stage = stage_at(progress, [o["global_fraction"], o["local_fraction"]])
        terms: dict[str, torch.Tensor] = {}
        if stage == 0:
            views = [intensity_augment(random_flip_rotate(batch.unlabelled, self.generator), self.generator)
                     for _ in range(2)]  # fmt: skip
            z = [self.global_head(network(v).bottleneck) for v in views]
            terms["global_ntxent"] = nt_xent_loss(z[0], z[1], o["global_temperature"])
        if stage == 1:
            n = o["local_batch"] or len(batch.images)
            images, labels = batch.images[:n], batch.labels[:n]
            emb = [self.pixel_head(network(intensity_augment(images, self.generator)).decoder[-1]) for _ in range(2)]
            terms["local_contrast"] = local_contrastive_loss(
                emb[0].float(), emb[1].float(), labels, mode=o["local_mode"], stride=o["stride"], block=o["block"],
                temperature=o["local_temperature"], chunk_size=o["chunk_size"], n_classes=self.n_classes,
            )  # fmt: skip
        if stage == 2 or o["joint_supervision"]:
            terms["supervised"] = painted_ce_dice_loss(network(batch.images).logits, batch.labels)
        return terms
