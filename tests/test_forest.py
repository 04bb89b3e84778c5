"""Forest labels for unpainted slices: right where confident, never over the painting or the held-out voxels."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from conftest import disk_columns, disks_2d, strokes

from napari_contrastseg.core.config import ForestConfig, TrainConfig
from napari_contrastseg.core.data import SegmentationData
from napari_contrastseg.core.errors import InputError, TrainingError
from napari_contrastseg.core.forest import PixelForest, forest_labels
from napari_contrastseg.core.trainer import train_model


def _truth_volume(depth: int = 21) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(1, Z, Y, X)`` normalised image, its dense truth and a painting of slices 3 and 15 (as disk_columns)."""
    image, painted = disk_columns(depth)
    truth = np.stack([disks_2d()[1]] * depth).astype(np.int64)
    return image[None], truth, painted.astype(np.int64)


def test_forest_labels_evenly_spaced_unpainted_slices_where_confident():
    image, truth, painted = _truth_volume()
    held = np.zeros_like(painted)
    held[3, :8, :8] = painted[3, :8, :8]  # a held-out block of slice 3
    train = painted * (held == 0)
    config = ForestConfig(enabled=True, slices=4, confidence=0.8, trees=8)
    (labels,) = forest_labels([image], [train], [held], 0, (1.0, 2.0), config, seed=0).labels
    labelled = np.flatnonzero((labels > 0).any(axis=(1, 2)))
    assert set(labelled) == {0, 3, 7, 13, 15, 20}  # the painted slices and 4 of the 19 others, ends included
    assert np.array_equal(labels[train > 0], train[train > 0])  # the painting is kept as painted
    assert not labels[held > 0].any()  # held-out voxels stay unlabelled
    guessed = (labels > 0) & (train == 0)
    assert guessed.sum() > 0.8 * 4 * truth[0].size  # confident on most of each labelled slice
    assert (labels[guessed] == truth[guessed]).mean() > 0.97


def test_forest_fills_in_a_2d_painting_and_a_strict_confidence_labels_less():
    image, truth = disks_2d()
    painted = strokes(truth).astype(np.int64)
    free = np.zeros_like(painted)
    loose, strict = (
        forest_labels([image[None]], [painted], [free], None, (1.0,), ForestConfig(confidence=c, trees=8), 0).labels[0]
        for c in (0.6, 1.0)
    )
    assert (loose > 0).sum() > (strict > 0).sum() >= (painted > 0).sum()
    assert ((loose == truth) | (loose == 0)).mean() > 0.9


def test_the_gate_keeps_out_the_labels_of_a_forest_that_fails_the_held_out_painting():
    image, truth, painted = _truth_volume()
    held = np.zeros_like(painted)
    held[3] = painted[3]  # slice 3 held out whole, slice 15 trained on
    train = painted * (held == 0)
    gated = ForestConfig(enabled=True, slices=2, trees=8, gate=0.8)
    right = forest_labels([image], [train], [held], 0, (1.0, 2.0), gated, seed=0)
    assert right.held_out_dice > 0.9 and right.labels is not None
    swapped = np.where(held > 0, 3 - held, 0)  # the held-out painting says background where the disks are
    wrong = forest_labels([image], [train], [swapped], 0, (1.0, 2.0), gated, seed=0)
    assert wrong.held_out_dice < 0.2 and wrong.labels is None
    ungated = forest_labels([image], [train], [swapped], 0, (1.0, 2.0), replace(gated, gate=0.0), seed=0)
    assert ungated.held_out_dice == wrong.held_out_dice and ungated.labels is not None
    nothing_held = forest_labels([image], [painted], [np.zeros_like(painted)], 0, (1.0,), gated, seed=0)
    assert np.isnan(nothing_held.held_out_dice) and nothing_held.labels is None  # no evidence: not trusted


def test_forest_labels_refuse_3d_patches_and_bad_settings():
    image, _, painted = _truth_volume(16)
    free = np.zeros_like(painted)
    with pytest.raises(InputError, match="2D training"):
        forest_labels([image], [painted], [free], None, (1.0,), ForestConfig(), seed=0)
    with pytest.raises(InputError, match="confidence"):
        forest_labels([image], [painted], [free], 0, (1.0,), ForestConfig(confidence=0.3), seed=0)
    with pytest.raises(InputError, match="gate"):
        forest_labels([image], [painted], [free], 0, (1.0,), ForestConfig(gate=1.5), seed=0)


def test_training_with_forest_labels_learns_the_unpainted_slices(fast_config):
    image, painted = disk_columns()
    fast_config.forest = ForestConfig(enabled=True, slices=4, trees=8)
    fast_config.iterations = 40
    model = train_model(SegmentationData(image, painted), fast_config)
    assert model.info.training["config"]["forest"]["enabled"] is True
    assert model.info.training["forest"]["used"] is True  # no gate: the labels are used whatever the held-out Dice
    assert TrainConfig.from_dict(model.info.training["config"]).forest == fast_config.forest
    prediction = model.predict(image).labels
    truth = np.stack([disks_2d()[1]] * image.shape[0])
    assert (prediction[[8, 9, 10]] == truth[[8, 9, 10]]).mean() > 0.9  # never painted, never forest-labelled


def test_3d_patches_train_without_the_forest_and_2d_refuses_its_bad_settings(data_3d, fast_config):
    fast_config.forest = ForestConfig(enabled=True, confidence=0.2)  # a bad setting: refused only where it is used
    fast_config.dims = "3d"
    assert train_model(data_3d, fast_config).info.spatial_dims == 3
    fast_config.dims = "2d"
    with pytest.raises(TrainingError, match="confidence"):
        train_model(data_3d, fast_config)


def test_a_balanced_forest_learns_a_rare_class_that_a_uniform_draw_misses():
    rng = np.random.default_rng(0)
    image = rng.normal(0, 0.1, (1, 1, 64, 64)).astype(np.float32)
    painted = np.ones((1, 64, 64), np.int64)
    rare = (0, slice(30, 32), slice(30, 33))  # 6 bright pixels among 4096
    image[(0, *rare)] += 3
    painted[rare] = 2
    stack = (image, painted, np.zeros_like(painted))
    rare_probability = {}
    for balanced in (False, True):
        config = ForestConfig(trees=8, max_pixels=200, balanced=balanced)
        forest, _ = PixelForest.fit([stack], (1.0,), config, seed=0)
        rare_probability[balanced] = forest.probabilities(image[:, 0], 2)[1][rare[1:]].mean()
    assert rare_probability[False] < 0.5 < rare_probability[True]
