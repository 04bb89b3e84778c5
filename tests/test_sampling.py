"""Training crops: labelled ones hold painted voxels of every class over time, unlabelled ones come from anywhere."""

from __future__ import annotations

import numpy as np

from napari_contrastseg.core.sampling import PatchSampler


def _sampler(image, labels, patch, slice_axis=None, seed=0):
    return PatchSampler([image[None].astype(np.float32)], [labels], patch, slice_axis, np.random.default_rng(seed))


def test_labelled_crops_contain_paint_and_balance_classes():
    labels = np.zeros((64, 64), np.int64)
    labels[5, 5:60] = 1  # many background voxels
    labels[40, 30] = 2  # a single voxel of class 2
    sampler = _sampler(np.random.rand(64, 64), labels, (16, 16))
    images, crops = sampler.labelled(200)
    assert images.shape == (200, 1, 16, 16) and crops.shape == (200, 16, 16)
    assert all((c > 0).any() for c in crops)
    with_rare = np.mean([(c == 2).any() for c in crops])
    assert 0.35 < with_rare < 0.65  # classes drawn uniformly, not by voxel count


def test_crops_match_the_image_at_the_same_place():
    image = np.arange(40 * 50, dtype=np.float32).reshape(40, 50)
    labels = np.zeros((40, 50), np.int64)
    labels[10:20, 10:20] = 1
    labels[30, 30] = 2
    images, crops = _sampler(image, labels, (8, 8)).labelled(20)
    for img, lab in zip(images[:, 0], crops, strict=True):
        y, x = np.unravel_index(np.argmin(np.abs(image - img[0, 0])), image.shape)
        assert np.array_equal(image[y : y + 8, x : x + 8], img)
        assert np.array_equal(labels[y : y + 8, x : x + 8], lab)


def test_slices_along_any_axis_and_3d_patches():
    labels = np.zeros((10, 20, 30), np.int64)
    labels[:, 4, :] = 1
    labels[:, 5, 3:8] = 2
    image = np.random.rand(10, 20, 30)
    images, crops = _sampler(image, labels, (8, 16), slice_axis=1).labelled(5)
    assert images.shape == (5, 1, 8, 16) and crops.shape == (5, 8, 16)
    assert _sampler(image, labels, (8, 8, 8)).unlabelled(3).shape == (3, 1, 8, 8, 8)


def test_image_smaller_than_patch_is_padded_not_refused():
    labels = np.zeros((5, 7), np.int64)
    labels[0, 0], labels[4, 6] = 1, 2
    images, crops = _sampler(np.random.rand(5, 7), labels, (16, 16)).labelled(4)
    assert images.shape == (4, 1, 16, 16)
    assert (crops[:, 5:, :] == 0).all() and (crops[:, :, 7:] == 0).all()  # padding is never painted


def test_seeded_sampling_is_reproducible():
    labels = np.zeros((32, 32), np.int64)
    labels[3, :], labels[20, :] = 1, 2
    image = np.random.rand(32, 32)
    a = _sampler(image, labels, (8, 8), seed=3).labelled(5)
    b = _sampler(image, labels, (8, 8), seed=3).labelled(5)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
