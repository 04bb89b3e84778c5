"""Pseudo-labels grown outward from the painted slices: nearest slices first, never on paint, ramped into training."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import disk_columns, disks_2d

from napari_contrastseg.core.config import GrowthConfig, HoldoutConfig, TrainConfig
from napari_contrastseg.core.data import SegmentationData
from napari_contrastseg.core.errors import TrainingError
from napari_contrastseg.core.growth import GrownLabels, _outward_order
from napari_contrastseg.core.model import TrainedModel
from napari_contrastseg.core.normalization import normalize
from napari_contrastseg.core.trainer import train_model


def test_slices_are_grown_into_nearest_to_the_painting_first():
    painting = np.zeros((10, 4, 4), np.int64)
    painting[2, 0, 0] = 1
    painting[7, 1, 1] = 2
    other = np.zeros((5, 4, 4), np.int64)  # no paint: nothing to grow from
    order = _outward_order([painting, other], axis=0)
    assert order[:4] == [(0, 1), (0, 3), (0, 6), (0, 8)]
    assert [z for _, z in order[4:]] == [0, 4, 5, 9]
    assert np.moveaxis(painting, 0, 2).shape == (4, 4, 10)
    assert _outward_order([np.moveaxis(painting, 0, 2)], axis=2) == order[:8]  # the slice axis is respected


def _trained(fast_config: TrainConfig) -> tuple[TrainedModel, np.ndarray, np.ndarray]:
    """A model of :func:`disk_columns`, the volume as it trained on ``(1, Z, Y, X)`` and its painting."""
    image, painted = disk_columns()
    fast_config.iterations = 40
    model = train_model(SegmentationData(image, painted), fast_config)
    return model, normalize(image[None], model.info.normalization), painted.astype(np.int64)


def test_a_growth_labels_the_nearest_unpainted_slices_where_the_network_is_sure(fast_config):
    model, image, painted = _trained(fast_config)
    truth = np.stack([disks_2d()[1]] * image.shape[1]).astype(np.int64)
    config = GrowthConfig(enabled=True, slices=4, confidence=0.8)
    grown = GrownLabels([image], [painted], model.info, config, 0.0, np.random.default_rng(0), 0.5)
    assert grown.extras == [] and grown.due(0.25) and not grown.due(0.2)
    voxels = grown.grow(model.network, torch.device("cpu"))
    (labels,) = grown.labels
    assert set(np.flatnonzero((labels > 0).any(axis=(1, 2)))) == {2, 4, 14, 16}  # next to the painted 3 and 15
    assert voxels == (labels > 0).sum() > 0.3 * 4 * truth[0].size  # sure of a good share after 40 steps
    assert (labels[labels > 0] == truth[labels > 0]).mean() > 0.97
    assert not labels[[3, 15]].any()  # never over the painting
    assert grown.extras[0][1] == pytest.approx(0.25)  # ramped: half the share after the first growth
    assert not grown.due(0.3) and grown.due(0.375)
    grown.grow(model.network, torch.device("cpu"))
    assert set(np.flatnonzero((grown.labels[0] > 0).any(axis=(1, 2)))) == {1, 2, 4, 5, 13, 14, 16, 17}
    assert grown.extras[0][1] == pytest.approx(0.5)
    strict = GrownLabels([image], [painted], model.info, GrowthConfig(confidence=1.0), 0.0, None, 0.5)
    assert strict.grow(model.network, torch.device("cpu")) < voxels


def test_growth_counts_from_the_last_stage():
    image, painted = disk_columns()
    info = type("Info", (), {"slice_axis": 0})()  # only the slice axis is read before a growth
    grown = GrownLabels([image[None]], [painted.astype(np.int64)], info, GrowthConfig(), 0.5, None, 0.5)
    assert not grown.due(0.6) and grown.due(0.625)  # a quarter into the second half of the budget
    grown.growths = 1  # as after the first growth
    assert not grown.due(0.68) and grown.due(0.6875)  # every eighth of that half
    assert not grown.due(1.0)  # the budget is spent: no growth that nothing would learn from
    grown.pending = []
    assert not grown.due(0.9)  # nothing left to grow into
    capped = GrownLabels([image[None]], [painted.astype(np.int64)], info, GrowthConfig(pixels=3 * 48 * 56 + 1), 0.0,
                         None, 0.5)  # fmt: skip
    assert capped.per_growth == 3  # slices of 48 x 56: three fit the pixels of a growth
    assert (
        GrownLabels([image[None]], [painted.astype(np.int64)], info, GrowthConfig(pixels=1), 0.0, None, 0.5).per_growth
        == 1
    )


def test_training_with_growth_records_it_and_keeps_held_out_slices_out(fast_config):
    image, painted = disk_columns()
    fast_config.iterations = 40
    fast_config.holdout = HoldoutConfig(fraction=0.15)
    fast_config.growth = GrowthConfig(enabled=True, slices=4)
    model = train_model(SegmentationData(image, painted), fast_config)
    assert model.info.training["growth"]["growths"] == 5  # at 25, 37.5, 50, 62.5 and 75 % of 40 steps
    assert model.info.training["growth"]["voxels"] > 0
    assert TrainConfig.from_dict(model.info.training["config"]).growth == fast_config.growth
    truth = np.stack([disks_2d()[1]] * image.shape[0])
    assert (model.predict(image).labels[[8, 9, 10]] == truth[[8, 9, 10]]).mean() > 0.9


def test_nothing_grows_on_2d_images_or_when_off_and_bad_settings_are_refused(fast_config, data_3d):
    image, truth = disks_2d()
    fast_config.growth = GrowthConfig(enabled=True)
    assert "growth" not in train_model(SegmentationData(image, truth), fast_config).info.training
    fast_config.growth = GrowthConfig(enabled=False)
    assert "growth" not in train_model(data_3d, fast_config).info.training
    fast_config.growth = GrowthConfig(enabled=True, confidence=0.3)
    with pytest.raises(TrainingError, match="confidence"):
        train_model(data_3d, fast_config)
