"""ACTION's unsupervised term: confidence-weighted pseudo-label cross-entropy; CutMix of unlabelled views."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pseudo_label_loss(
    student_logits: torch.Tensor, teacher_probs: torch.Tensor, threshold: float = 0.97
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel cross-entropy against the teacher's argmax, each image weighted by its share of confident pixels.

    Args:
        student_logits: ``(B, K, *S)``.
        teacher_probs: ``(B, K, *S)`` teacher softmax (detached here).
        threshold: a pixel is confident when the teacher's max probability is >= this.

    Returns:
        ``(loss, weight)``: scalar mean over images and pixels of ``weight_b * CE``, and ``weight (B,)``.
    """
    with torch.no_grad():
        confidence, target = teacher_probs.max(1)
        weight = (confidence >= threshold).flatten(1).to(student_logits.dtype).mean(1)
    ce = F.cross_entropy(student_logits, target, reduction="none").flatten(1).mean(1)
    return (weight * ce).mean(), weight


def _random_box(spatial: torch.Size, ratio: float, generator: torch.Generator | None) -> tuple[slice, ...]:
    """A box covering about ``ratio`` of ``spatial``: side fractions ``ratio**w_i``, w ~ Dirichlet(1, ..., 1)."""
    w = -torch.rand(len(spatial), generator=generator).log()
    sides = [max(1, round(n * ratio ** float(wi))) for n, wi in zip(spatial, w / w.sum(), strict=True)]
    starts = [int(torch.randint(n - s + 1, (), generator=generator)) for n, s in zip(spatial, sides, strict=True)]
    return tuple(slice(a, a + s) for a, s in zip(starts, sides, strict=True))


def cutmix(
    images_a: torch.Tensor,
    images_b: torch.Tensor,
    *targets: tuple[torch.Tensor, torch.Tensor],
    generator: torch.Generator | None = None,
    ratio: float = 0.5,
) -> tuple[torch.Tensor, ...]:
    """Paste a random box of each ``images_b[i]`` into ``images_a[i]``, and the same box of each target pair.

    The box covers ``ratio`` of the image with a random aspect ratio (ReCo's ``generate_cutout_mask``, used by
    ACTION, extended to 3D), one box per sample.

    Args:
        images_a: ``(B, C, *S)``, S = (H, W) or (D, H, W).
        images_b: ``(B, C, *S)``.
        targets: ``(target_a, target_b)`` pairs mixed alike, each ``(B, *S)`` (labels, confidences) or
            ``(B, K, *S)`` (probabilities).
        generator: CPU random source for the boxes.
        ratio: box share of the image.

    Returns:
        ``(mixed_images, *mixed_targets)``.
    """
    spatial = images_a.shape[2:]
    box = torch.zeros(images_a.shape[0], *spatial, dtype=torch.bool, device=images_a.device)
    for i in range(box.shape[0]):
        box[(i, *_random_box(spatial, ratio, generator))] = True

    def mix(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.where(box.view(box.shape[0], *[1] * (a.ndim - box.ndim), *spatial), b, a)

    return mix(images_a, images_b), *(mix(a, b) for a, b in targets)
