"""SemiContrast (Hu et al., MICCAI 2021): global NT-Xent pre-training, supervised local contrast, fine-tuning.

Schedule inside one budget (fractions are options): stage 1 ``global_fraction`` of the iterations trains with the
global NT-Xent loss between two augmented views of ``global_batch`` unlabelled crops (encoder only); stage 2
``local_fraction`` with the supervised local contrastive loss on painted pixels of two intensity-augmented views;
stage 3 (the rest) fine-tunes with the supervised loss. Each stage is its own optimisation (fresh optimiser state,
its own learning-rate schedule; ``stagewise_optimizer``), as the reference runs them; the local term ramps up over
the first fifth of its stage; a Continue (warm start) only fine-tunes. Named deviations for the interactive setting
(docs/methods.md): ``joint_supervision`` (default True) adds the supervised loss to stages 1-2 so that previews
are useful from the start; ``local_mode`` "stride" by default (the paper's downsampling, every 4th pixel per axis:
a local-stage step at about 2.5x a supervised one on a CPU; "block" is the paper's block division, about 10x;
"exact" is the yardstick, about 14 s a step); ``pixel_head_relu`` (default True: Conv1x1 -> ReLU -> Conv1x1). The
pixel head projects only the pixels the loss uses (it is pointwise: the same numbers).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..augment import intensity_augment
from ..losses import GlobalProjectionHead, local_contrastive_loss, nt_xent_loss, painted_ce_dice_loss
from ..network import UNet
from .base import Batch, Method, register
from .schedule import ramp, seeded_generator


class PixelEmbeddingHead(nn.Module):
    """Conv1x1 -> [ReLU] -> Conv1x1, L2-normalised: ``(B, C, *S) -> (B, dim, *S)`` (reference 64 -> 256 -> 128)."""

    def __init__(self, spatial_dims: int, in_channels: int, hidden: int = 256, dim: int = 128, relu: bool = True):
        super().__init__()
        conv = nn.Conv2d if spatial_dims == 2 else nn.Conv3d
        act: nn.Module = nn.ReLU(inplace=True) if relu else nn.Identity()
        self.net = nn.Sequential(conv(in_channels, hidden, 1), act, conv(hidden, dim, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.net(x), dim=1)

    def rows(self, x: torch.Tensor) -> torch.Tensor:
        """The same map on pixels as rows, ``(N, C) -> (N, dim)``: only the pixels a loss uses are projected."""
        first, act, second = self.net
        hidden = act(F.linear(x, first.weight.flatten(1), first.bias))
        return F.normalize(F.linear(hidden, second.weight.flatten(1), second.bias), dim=1)


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
    pretrainable = True
    defaults = {
        "global_fraction": 0.25,
        "local_fraction": 0.35,
        "joint_supervision": True,
        "stagewise_optimizer": True,
        "global_batch": 8,  # unlabelled crops per NT-Xent step: 2 x 8 views, 14 negatives per anchor
        "global_temperature": 0.5,
        "local_temperature": 0.1,
        "local_mode": "stride",  # exact | stride | block
        "stride": 4,
        "block": 16,
        "chunk_size": 4096,
        "local_batch": None,  # labelled crops entering the local loss (None: the whole batch, as the reference)
        "embedding_dim": 128,
        "pixel_head_relu": True,
    }

    def __init__(self, network: UNet, n_classes: int, options: dict | None = None) -> None:
        super().__init__(network, n_classes, options)
        dims, o = network.spatial_dims, self.options
        self.global_head = GlobalProjectionHead(network.features[-1])
        self.pixel_head = PixelEmbeddingHead(dims, network.features[0], dim=o["embedding_dim"],
                                             relu=o["pixel_head_relu"])  # fmt: skip
        self.generator = seeded_generator()

    @property
    def stage_fractions(self) -> list[float]:
        return [self.options["global_fraction"], self.options["local_fraction"]]

    def unlabelled_count(self, batch_size: int) -> int:
        return int(self.options["global_batch"] or batch_size)

    def losses(self, network: UNet, batch: Batch, progress: float) -> dict[str, torch.Tensor]:
        o, g = self.options, self.generator
        stage, within = self.position(progress)
        terms: dict[str, torch.Tensor] = {}
        supervised_logits = None
        if stage == 0:
            views = [intensity_augment(random_flip_rotate(batch.unlabelled, g), g) for _ in range(2)]
            z = [self.global_head(network.encode(v)) for v in views]  # the decoder is not needed here
            terms["global_ntxent"] = nt_xent_loss(z[0], z[1], o["global_temperature"])
        if stage == 1:
            n = o["local_batch"] or len(batch.images)
            outs = [network(intensity_augment(batch.images[:n], g)) for _ in range(2)]
            terms["local_contrast"] = ramp(within) * local_contrastive_loss(
                outs[0].decoder[-1], outs[1].decoder[-1], batch.labels[:n], mode=o["local_mode"], stride=o["stride"],
                block=o["block"], temperature=o["local_temperature"], chunk_size=o["chunk_size"],
                n_classes=self.n_classes, project=lambda rows: self.pixel_head.rows(rows).float(),
            )  # fmt: skip
            if n == len(batch.images):
                supervised_logits = outs[0].logits  # one view's logits serve the supervised loss: no extra pass
        if self.pretraining:
            return terms
        if stage == 2 or o["joint_supervision"]:
            logits = supervised_logits if supervised_logits is not None else network(batch.images).logits
            terms["supervised"] = painted_ce_dice_loss(logits, batch.labels)
        return terms
