"""ACTION (You et al., IPMI 2023): EMA teacher, contrastive distillation with soft negatives, anatomical contrast.

Schedule inside one budget (fractions are options): stage 1 ``global_fraction`` of the iterations distils the
teacher's pooled-bottleneck embeddings into the student's (KL over a FIFO queue of teacher embeddings); stage 2
``local_fraction`` does the same on pooled patches of the output feature map, with the supervised loss; stage 3 (the
rest) trains with supervised + pseudo-label loss on CutMix-mixed unlabelled views + ``anco_weight`` x anatomical
contrast, both ramped up over the first fifth of the stage. The teacher sees weak augmentation, the student strong.
Each stage is its own optimisation (``stagewise_optimizer``), as the reference runs them; a Continue (warm start)
only runs stage 3. Named deviations from the reference: ``local_patch`` / ``local_stride`` 16 / 8 (the reference's
64 / 32 are for 256-pixel slices: a quarter of the crop, here 49 patches of a 64-pixel crop); the supervised loss of
stages 1-2 is computed on the student's strong view of the labelled crops (no extra forward pass);
``supervised_weight`` 1 (reference 0.5);
``joint_supervision`` (default True) adds the supervised loss to stage 1 too; strong intensity augmentation
(brightness, contrast, gamma, noise at twice the weak ranges) stands in for the AdvMorph augmentation the reference
code imports but does not ship, because it keeps pixels aligned between teacher and student views; the trainer's
AdamW replaces the reference SGD; the teacher runs in eval mode (the student's BatchNorm statistics) and stage 3 makes
one student forward of labelled and mixed crops, where the reference uses batch statistics and two forwards (worse
on the development task, docs/methods.md). AnCo's CPU defaults are smaller than the reference's (32 queries and 32
keys per class, 256 negatives, a 128-d head, against 256 / all / 512 / 512) so that a stage-3 step stays within 3x a
supervised one; the head is computed only at the pixels the loss draws.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..augment import intensity_augment
from ..distributed import gather_rows
from ..losses import (
    EmbeddingQueue,
    ProjectionMLP,
    RepresentationHead,
    anatomical_contrast_loss,
    contrastive_distillation_loss,
    cutmix,
    ema_update,
    local_patch_embeddings,
    painted_ce_dice_loss,
    pseudo_label_loss,
)
from ..network import UNet
from .base import Batch, Method, register
from .schedule import ramp, seeded_generator


class DistillationBranch(nn.Module):
    """Student head + predictor, the teacher's EMA head, and the queue of teacher embeddings of one branch."""

    def __init__(self, in_features: int, dim: int, queue_size: int) -> None:
        super().__init__()
        self.head = ProjectionMLP(in_features, out_features=dim)
        self.predictor = ProjectionMLP(dim, out_features=dim)
        self.teacher_head = copy.deepcopy(self.head).requires_grad_(False)
        self.queue = EmbeddingQueue(dim, queue_size)

    def loss(self, student_feat: torch.Tensor, teacher_feat: torch.Tensor, tau_s: float, tau_t: float) -> torch.Tensor:
        """``(N, in_features)`` pooled student/teacher features -> KL distillation loss; pushes the teacher's."""
        with torch.no_grad():
            z_t = self.teacher_head(teacher_feat.float())
        z_s = self.predictor(self.head(student_feat.float()))
        anchors = self.queue.anchors
        loss = contrastive_distillation_loss(z_s, z_t, anchors, tau_s, tau_t) if len(anchors) else z_s.sum() * 0.0
        self.queue.push(gather_rows(z_t))  # every rank pushes all ranks' embeddings: queues stay identical
        return loss


@register
class Action(Method):
    """Student/EMA-teacher contrastive distillation + anatomical contrast; see the module docstring."""

    name = "action"
    needs_unlabelled = True
    pretrainable = True
    defaults = {
        "global_fraction": 0.2,
        "local_fraction": 0.3,
        "joint_supervision": True,
        "momentum": 0.99,
        "queue_size": 36,
        "embedding_dim": 256,
        "tau_s": 0.1,
        "tau_t": 0.01,
        "local_patch": 16,
        "local_stride": 8,
        "stagewise_optimizer": True,
        "supervised_weight": 1.0,
        "confidence_threshold": 0.97,
        "anco_weight": 0.01,
        "anco_queries": 32,
        "anco_negatives": 256,
        "anco_keys": 32,
        "anco_temperature": 0.5,
        "anco_valid_threshold": 0.7,
        "representation_dim": 128,
        "strong_augmentation": 2.0,
    }

    def __init__(self, network: UNet, n_classes: int, options: dict | None = None) -> None:
        super().__init__(network, n_classes, options)
        o = self.options
        self.teacher = [copy.deepcopy(network).requires_grad_(False)]  # a list: not a submodule, not optimised
        self.global_branch = DistillationBranch(network.features[-1], o["embedding_dim"], o["queue_size"])
        self.local_branch = DistillationBranch(network.features[0], o["embedding_dim"], o["queue_size"])
        self.representation = RepresentationHead(
            network.decoder_channels, o["representation_dim"], network.spatial_dims
        )
        self.generator = seeded_generator()

    def _apply(self, fn, *args, **kwargs):  # keep the teacher on the method's device
        self.teacher[0]._apply(fn, *args, **kwargs)
        return super()._apply(fn, *args, **kwargs)

    def losses(self, network: UNet, batch: Batch, progress: float) -> dict[str, torch.Tensor]:
        o, g = self.options, self.generator
        teacher = self.teacher[0].eval()
        stage, within = self.position(progress)
        terms: dict[str, torch.Tensor] = {}
        images, labels = batch.images, batch.labels
        if stage < 2:
            both = torch.cat([images, batch.unlabelled])
            weak = intensity_augment(both, g)
            strong = intensity_augment(both, g, o["strong_augmentation"])
            with torch.no_grad():
                t_out = teacher(weak)
            s_out = network(strong)
            if stage == 0:
                terms["global_distill"] = self.global_branch.loss(
                    _pool(s_out.bottleneck), _pool(t_out.bottleneck), o["tau_s"], o["tau_t"]
                )
            else:
                terms["local_distill"] = self.local_branch.loss(
                    local_patch_embeddings(s_out.decoder[-1], o["local_patch"], o["local_stride"]),
                    local_patch_embeddings(t_out.decoder[-1], o["local_patch"], o["local_stride"]),
                    o["tau_s"], o["tau_t"],
                )  # fmt: skip
            if (stage == 1 or o["joint_supervision"]) and not self.pretraining:
                logits = s_out.logits[: len(images)]  # the labelled crops' strong views: no extra forward pass
                terms["supervised"] = o["supervised_weight"] * painted_ce_dice_loss(logits, labels)
            return terms
        return self._stage3(network, teacher, images, labels, batch.unlabelled, ramp(within))

    @property
    def stage_fractions(self) -> list[float]:
        return [self.options["global_fraction"], self.options["local_fraction"]]

    def _stage3(self, network, teacher, images, labels, unlabelled, weight: float) -> dict[str, torch.Tensor]:
        o, g = self.options, self.generator
        with torch.no_grad():
            t_unl = torch.softmax(teacher(intensity_augment(unlabelled, g)).logits.float(), 1)
            mixed, t_mixed = cutmix(unlabelled, unlabelled.roll(1, 0), (t_unl, t_unl.roll(1, 0)), generator=g)
        strong = intensity_augment(mixed, g, o["strong_augmentation"])
        out = network(torch.cat([images, strong]))
        logits_lab, logits_unl = out.logits[: len(images)], out.logits[len(images) :]
        unsup, _ = pseudo_label_loss(logits_unl.float(), t_mixed, o["confidence_threshold"])
        # AnCo: painted labels on the labelled crops (their unpainted pixels take no part), pseudo-labels on the mixed
        confidence, pseudo = t_mixed.max(1)  # (Bu, *S)
        painted = torch.cat([labels > 0, torch.zeros_like(pseudo, dtype=torch.bool)])
        target = torch.cat([labels, pseudo + 1])
        confidence = torch.cat([painted[: len(images)].float(), confidence])
        with torch.no_grad():
            probs = torch.softmax(out.logits.float(), 1)
            own = probs.gather(1, (target - 1).clamp_min(0)[:, None])[:, 0]
        represent = lambda index: self.representation.at(out.decoder, index).float()  # noqa: E731
        anco = anatomical_contrast_loss(
            represent, target, confidence, own, painted,
            strong_threshold=o["confidence_threshold"], valid_threshold=o["anco_valid_threshold"],
            n_queries=o["anco_queries"], n_negatives=o["anco_negatives"], n_keys=o["anco_keys"],
            temperature=o["anco_temperature"],
            generator=None,
        )  # fmt: skip
        return {
            "supervised": o["supervised_weight"] * painted_ce_dice_loss(logits_lab, labels),
            "pseudo_label": weight * unsup,
            "anatomical": weight * o["anco_weight"] * anco,
        }

    def after_step(self, network: UNet, progress: float) -> None:
        momentum = self.options["momentum"]
        ema_update(self.teacher[0], network, momentum)
        for branch in (self.global_branch, self.local_branch):
            ema_update(branch.teacher_head, branch.head, momentum)


def _pool(feat: torch.Tensor) -> torch.Tensor:
    """Global average pool ``(B, C, *S) -> (B, C)``."""
    return feat.flatten(2).mean(2)
