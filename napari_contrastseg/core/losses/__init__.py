"""Pure loss and teacher functions of the SemiContrast and ACTION methods."""

from .anatomical import RepresentationHead, anatomical_contrast_loss, sample_negative_classes
from .distillation import (
    EmbeddingQueue,
    ProjectionMLP,
    contrastive_distillation_loss,
    ema_update,
    local_patch_embeddings,
)
from .local_contrast import local_contrastive_loss
from .ntxent import GlobalProjectionHead, nt_xent_loss
from .pseudo_label import cutmix, pseudo_label_loss
from .supervised import painted_ce_dice_loss

__all__ = [
    "EmbeddingQueue",
    "GlobalProjectionHead",
    "ProjectionMLP",
    "RepresentationHead",
    "anatomical_contrast_loss",
    "contrastive_distillation_loss",
    "cutmix",
    "ema_update",
    "local_contrastive_loss",
    "local_patch_embeddings",
    "nt_xent_loss",
    "painted_ce_dice_loss",
    "pseudo_label_loss",
    "sample_negative_classes",
]
