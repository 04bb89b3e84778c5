"""Augmentation keeps labels on their pixels; neighbour slices reach the network alike in training and inference;
the sampler's class balance; CT intensities are recognised and normalised on the body."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_contrastseg.core.augment import SpatialAugment, intensity_augment
from napari_contrastseg.core.config import AugmentationConfig, NormalizationConfig, TrainConfig
from napari_contrastseg.core.inference import SliceInputs
from napari_contrastseg.core.methods import create_method
from napari_contrastseg.core.network import UNet
from napari_contrastseg.core.normalization import intensity_ranges, resolve_normalization
from napari_contrastseg.core.sampling import PatchSampler
from napari_contrastseg.core.trainer import _sample


def _stripes() -> tuple[torch.Tensor, torch.Tensor]:
    labels = torch.zeros(6, 48, 48, dtype=torch.long)
    labels[:, 10:30, 8:40] = 2
    labels[:, 32:44, 20:28] = 3
    labels[:, :4] = 1
    return labels[:, None].float().repeat(1, 2, 1, 1), labels


def test_spatial_augmentation_moves_labels_with_their_pixels():
    images, labels = _stripes()
    moved, moved_labels = SpatialAugment(AugmentationConfig(probability=1.0, rotation=30), 2, torch.Generator())(
        images, labels
    )
    assert moved.shape == images.shape and moved_labels.shape == labels.shape and moved_labels.dtype == torch.long
    assert not torch.equal(moved_labels, labels)  # something moved
    inside = moved_labels > 0
    agree = (moved[:, 0].round().long() == moved_labels)[inside].float().mean()
    unmoved = (moved[:, 0].round().long() == labels)[labels > 0].float().mean()
    assert agree > 0.93 and unmoved < agree - 0.1  # the image (bilinear) and the labels (nearest) moved together
    assert set(moved_labels.unique().tolist()) <= {0, 1, 2, 3}  # no blended label values; 0 outside the crop


def test_disabled_augmentation_and_mirroring():
    images, labels = _stripes()
    labels[:, 40:, :5] = 3  # not symmetric left-right
    images = labels[:, None].float().repeat(1, 2, 1, 1)
    off = SpatialAugment(AugmentationConfig(enabled=False), 2, torch.Generator())
    assert off(images, labels) == (images, labels)
    mirror = SpatialAugment(AugmentationConfig(probability=0.0, mirror_axes=(1,)), 2, torch.Generator().manual_seed(1))
    flipped_images, flipped = mirror(images, labels)
    changed = [not torch.equal(a, b) for a, b in zip(flipped, labels, strict=True)]
    assert any(changed) and not all(changed)  # about half the crops, left-right
    for k, c in enumerate(changed):
        assert torch.equal(flipped[k], labels[k].flip(-1) if c else labels[k])
        assert torch.equal(flipped_images[k], images[k].flip(-1) if c else images[k])


def test_intensity_augmentation_keeps_shape_and_changes_values_in_2d_and_3d():
    g = torch.Generator().manual_seed(0)
    for shape in ((4, 1, 32, 32), (2, 1, 8, 16, 16)):
        x = torch.rand(shape)
        y = intensity_augment(x, g, probability=1.0)
        assert y.shape == x.shape and not torch.allclose(x, y) and torch.isfinite(y).all()


def test_intensity_augmentation_of_labelled_crops_can_be_turned_off_alone():
    image = np.random.default_rng(1).random((1, 1, 64, 64)).astype(np.float32)
    labels = np.ones((1, 64, 64), np.int64)
    method = create_method("supervised", UNet(2, 1, 1, TrainConfig().network), 1)

    def crops(intensity: bool) -> torch.Tensor:
        aug = AugmentationConfig(probability=1.0, rotation=0.0, scale=(1.0, 1.0), elastic=0.0, intensity=intensity)
        sampler = PatchSampler([image], [labels], (32, 32), 0, np.random.default_rng(0))
        spatial = SpatialAugment(aug, 2, torch.Generator().manual_seed(0))
        return _sample(sampler, 4, method, spatial, TrainConfig(augmentation=aug), torch.device("cpu")).images

    reference = torch.from_numpy(PatchSampler([image], [labels], (32, 32), 0, np.random.default_rng(0)).labelled(4)[0])
    assert torch.allclose(crops(False), reference, atol=1e-5)  # the identity warp only: intensities kept
    assert not torch.allclose(crops(True), reference, atol=1e-2)  # every intensity change drawn


def test_crops_with_neighbour_slices_equal_the_inference_inputs():
    image = np.random.default_rng(0).random((1, 9, 40, 50), dtype=np.float32)  # (C, Z, Y, X), slice axis 0
    labels = np.zeros((9, 40, 50), np.int64)
    labels[4] = 1
    sampler = PatchSampler([image], [labels], (32, 32), 0, np.random.default_rng(0), context=2)
    stack = np.moveaxis(image, 1, 0)  # (Z, C, Y, X) as inference slices it
    for z in (0, 4, 8):  # edges repeat the edge slice, in training as in inference
        crop = sampler.crops([(0, [z, 3, 5])])[0]
        expected = SliceInputs(stack, 2).batch(z, z + 1)[0][:, 3:35, 5:37]
        np.testing.assert_array_equal(crop, expected)
    assert crop.shape == (5, 32, 32)


def test_sampling_balance_mixes_class_balanced_and_painted_frequency_crops():
    labels = np.ones((1, 200, 200), np.int64)
    labels[0, 100:104, 100:104] = 2  # 16 of 40,000 painted voxels
    image = np.zeros((1, 1, 200, 200), np.float32)

    def lesion_share(balance: float) -> float:
        sampler = PatchSampler([image], [labels], (32, 32), 0, np.random.default_rng(0), balance=balance)
        _, crops = sampler.labelled(400)
        return float(np.mean([(c == 2).any() for c in crops]))

    assert lesion_share(1.0) > 0.45  # class drawn uniformly: about half the crops hold the lesion
    assert 0.15 < lesion_share(0.5) < 0.4  # about a quarter
    assert lesion_share(0.0) < 0.1  # as painted: only crops that happen to reach it


def test_ct_is_recognised_and_normalised_on_the_body():
    rng = np.random.default_rng(0)
    ct = np.full((40, 40, 10), -1000.0)  # air around a body of soft tissue and bone
    ct[10:30, 10:30] = rng.normal(40, 20, (20, 20, 10))
    ct[18:22, 18:22] = 1200
    auto = NormalizationConfig()
    assert resolve_normalization(ct, None, auto).mode == "ct"
    assert resolve_normalization(ct + 1024, None, auto).mode == "percentile"  # no air below -500: not CT
    low, high = intensity_ranges(ct, None, resolve_normalization(ct, None, auto))[0]
    assert low > -100 and high > 500  # the body's percentiles, not the air's
    low_all, _ = intensity_ranges(ct, None, NormalizationConfig(mode="percentile"))[0]
    assert low_all == pytest.approx(-1000)
