"""Pseudo-labels grown outward from the painted slices: nearest slices first, never on paint, ramped into training."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import disk_columns, disks_2d

from napari_contrastseg.core.config import ForestConfig, GrowthConfig, HoldoutConfig, TrainConfig
from napari_contrastseg.core.data import SegmentationData
from napari_contrastseg.core.errors import TrainingError
from napari_contrastseg.core.growth import GrownLabels, _outward_order, grown_labels
from napari_contrastseg.core.model import TrainedModel
from napari_contrastseg.core.normalization import normalize
from napari_contrastseg.core.setup import plan_training
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
    labels = grown.sampler.labels[0]  # slice axis 0 first, no padding: the volume's own layout
    assert set(np.flatnonzero((labels > 0).any(axis=(1, 2)))) == {2, 4, 14, 16}  # next to the painted 3 and 15
    assert voxels == grown.summary()["voxels"] == (labels > 0).sum() > 0.3 * 4 * truth[0].size
    assert (labels[labels > 0] == truth[labels > 0]).mean() > 0.97
    assert not labels[[3, 15]].any()  # never over the painting
    assert grown.extras[0][1] == pytest.approx(0.25)  # ramped: half the share after the first growth
    crops, crop_labels = grown.sampler.labelled(8)  # drawn from the pseudo-labels, centred on them
    assert crops.shape[0] == 8 and (crop_labels > 0).any(axis=(1, 2)).all()
    assert not grown.due(0.3) and grown.due(0.375)
    grown.grow(model.network, torch.device("cpu"))
    assert set(np.flatnonzero((labels > 0).any(axis=(1, 2)))) == {1, 2, 4, 5, 13, 14, 16, 17}
    assert sum(idx.size for holders in grown.sampler.painted.values() for _, idx in holders) == (labels > 0).sum()
    assert grown.extras[0][1] == pytest.approx(0.5)
    strict = GrownLabels([image], [painted], model.info, GrowthConfig(confidence=1.0), 0.0, None, 0.5)
    assert strict.grow(model.network, torch.device("cpu")) < voxels / 2


def test_growth_counts_from_the_last_stage_and_caps_the_pixels_of_a_growth(fast_config):
    model, image, painted = _trained(fast_config)
    grown = GrownLabels([image], [painted], model.info, GrowthConfig(), 0.5, None, 0.5)
    assert not grown.due(0.6) and grown.due(0.625)  # a quarter into the second half of the budget
    grown.growths = 1  # as after the first growth
    assert not grown.due(0.68) and grown.due(0.6875)  # every eighth of that half
    assert not grown.due(1.0)  # the budget is spent: no growth that nothing would learn from
    grown.pending = []
    assert not grown.due(0.9)  # nothing left to grow into
    assert grown.per_growth == 8
    for pixels, slices in ((3 * 48 * 56 + 1, 3), (1, 1)):  # slices of 48 x 56: three fit; at least one
        assert (
            GrownLabels([image], [painted], model.info, GrowthConfig(pixels=pixels), 0.0, None, 0.5).per_growth
            == slices
        )


def test_training_with_growth_records_it_and_grows_around_the_whole_painting(fast_config):
    image, painted = disk_columns()
    fast_config.iterations = 40
    fast_config.holdout = HoldoutConfig(fraction=0.15, earliest=1.0)  # held out, never stopped early
    fast_config.growth = GrowthConfig(enabled=True, slices=2)
    data = SegmentationData(image, painted)
    plan = plan_training(data, fast_config)
    grown = grown_labels(plan, fast_config, 0.0, np.random.default_rng(0))
    assert {z for _, z in grown.pending}.isdisjoint({3, 15})  # painted slices, held-out share included
    model = train_model(data, fast_config)
    assert model.info.training["growth"]["growths"] == 6  # at 25, 37.5, ..., 87.5 % of 40 steps
    assert model.info.training["growth"]["voxels"] > 0
    assert TrainConfig.from_dict(model.info.training["config"]).growth == fast_config.growth
    truth = np.stack([disks_2d()[1]] * image.shape[0])
    assert (model.predict(image).labels[[8, 9, 10]] == truth[[8, 9, 10]]).mean() > 0.9


def test_growth_and_forest_labels_together_leave_the_painting_a_crop(fast_config):
    image, painted = disk_columns()
    fast_config.iterations = 12
    fast_config.forest = ForestConfig(enabled=True, slices=2, trees=4, share=0.5)
    fast_config.growth = GrowthConfig(enabled=True, share=0.5)
    model = train_model(SegmentationData(image, painted), fast_config)  # 2 crops: 1 + 1 + 0 from the painting
    assert model.info.training["growth"]["growths"] > 2 and model.info.training["forest"]["used"]


def test_nothing_grows_on_2d_images_or_when_off_and_bad_settings_are_refused(fast_config, data_3d):
    image, truth = disks_2d()
    fast_config.growth = GrowthConfig(enabled=True)
    assert "growth" not in train_model(SegmentationData(image, truth), fast_config).info.training
    fast_config.growth = GrowthConfig(enabled=False, confidence=0.3)  # off: its settings are not used
    assert "growth" not in train_model(data_3d, fast_config).info.training
    for bad in ({"confidence": 0.3}, {"share": 1.0}, {"slices": 0}):
        fast_config.growth = GrowthConfig(enabled=True, **bad)
        with pytest.raises(TrainingError, match="Grown pseudo-labels need"):
            train_model(SegmentationData(image, truth), fast_config)  # refused even where nothing would grow
