"""Estimates of the returned model (core/estimate.py): the blended prediction on held-out painting, and how far the
network and the forest agree where nobody painted."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from conftest import disk_columns, disks_2d, strokes

from napari_contrastseg.core import estimate
from napari_contrastseg.core.config import ForestConfig, HoldoutConfig
from napari_contrastseg.core.data import SegmentationData, as_channels_first
from napari_contrastseg.core.errors import TrainingError
from napari_contrastseg.core.estimate import MAX_SLICES, _chosen_weight, estimate_returned
from napari_contrastseg.core.inference import SliceInputs
from napari_contrastseg.core.model import TrainedModel, load_model
from napari_contrastseg.core.normalization import normalize
from napari_contrastseg.core.trainer import train_model

CPU = torch.device("cpu")


def _dice(a: np.ndarray, b: np.ndarray, c: int) -> float:
    return 2 * ((a == c) & (b == c)).sum() / max(1, (a == c).sum() + (b == c).sum())


def _trained(fast_config, image, painted, fraction=0.0):
    fast_config.forest = ForestConfig(blend=0.5, trees=8)
    fast_config.holdout = HoldoutConfig(fraction=fraction)
    return train_model(SegmentationData(image, painted), fast_config)


def test_picked_slices_come_with_their_neighbours_in_the_order_asked():
    stack = np.random.default_rng(0).normal(size=(6, 1, 8, 8)).astype(np.float32)
    every = SliceInputs(stack, 1)
    picked = SliceInputs(stack, 1, picked=np.array([4, 0]))
    assert len(picked) == 2
    np.testing.assert_array_equal(picked.batch(0, 2), np.concatenate([every.batch(4, 5), every.batch(0, 1)]))
    np.testing.assert_array_equal(picked.slices(0, 2), stack[[4, 0]])


def test_a_run_with_a_forest_records_both_estimates_of_the_returned_model(fast_config):
    image, painted = disk_columns()
    model = _trained(fast_config, image, painted, fraction=0.25)
    found = model.info.training["returned_estimate"]
    assert set(found) == {"held_out", "held_out_mean", "agreement", "agreement_mean", "min_mean"}
    assert found["held_out"] and found["agreement"]  # something was held out, and slices were left unpainted
    for key in ("held_out_mean", "agreement_mean", "min_mean"):
        assert 0 <= found[key] <= 1
    assert found["min_mean"] <= min(found["held_out_mean"], found["agreement_mean"]) + 1e-4


def test_without_a_forest_there_is_no_estimate_of_a_blend(fast_config):
    image, painted = disk_columns()
    fast_config.forest = ForestConfig(blend=0.0)
    model = train_model(SegmentationData(image, painted), fast_config)
    assert "returned_estimate" not in model.info.training


def test_the_figures_are_those_of_the_model_s_own_predictions(fast_config):
    image, painted = disk_columns()
    model = _trained(fast_config, image, painted)
    volume = normalize(as_channels_first(image, None), model.info.normalization)
    held = np.zeros_like(painted)
    held[15] = painted[15]
    found = estimate_returned(model.network, model.info, [volume], [painted], [held], (model.forest, model.forest),
                              (0.5,), CPU)  # fmt: skip
    blended = model.predict(image).labels
    assert found.held_out[2] == pytest.approx(_dice(blended[15][held[15] > 0], held[15][held[15] > 0], 2))
    network = TrainedModel(model.network, replace(model.info, forest_weight=0.0)).predict(image).labels
    trees = np.stack([model.forest.probabilities(volume[:, z], 2) for z in range(image.shape[0])]).argmax(1) + 1
    unpainted = np.flatnonzero(~(painted > 0).any(axis=(1, 2)))
    picked = unpainted[np.linspace(0, unpainted.size - 1, MAX_SLICES).round().astype(int)]
    for c in (1, 2):
        assert found.agreement[c] == pytest.approx(_dice(network[picked], trees[picked], c), abs=1e-6)


def test_on_a_2d_image_only_the_unpainted_pixels_are_compared(fast_config):
    image, truth = disks_2d()
    painted = strokes(truth)
    model = _trained(fast_config, image, painted)
    volume = normalize(as_channels_first(image, None), model.info.normalization)
    found = estimate_returned(model.network, model.info, [volume], [painted], [np.zeros_like(painted)],
                              (None, model.forest), (0.5,), CPU)  # fmt: skip
    assert found.held_out == {}
    network = TrainedModel(model.network, replace(model.info, forest_weight=0.0)).predict(image).labels
    trees = model.forest.probabilities(volume, 2).argmax(0) + 1
    free = painted == 0
    assert found.agreement[2] == pytest.approx(_dice(network[free], trees[free], 2), abs=1e-6)


def test_the_weight_is_the_one_whose_blend_scores_best_on_the_held_out_painting():
    truth = np.array([1, 1, 2, 2])
    trees = np.array([[0.9, 0.9, 0.1, 0.1], [0.1, 0.1, 0.9, 0.9]])  # (K, N): right everywhere

    def network(background: float) -> np.ndarray:  # background everywhere, this sure of it
        return np.array([[background] * 4, [1 - background] * 4])

    assert _chosen_weight([(network(0.8), trees, truth)], (0.5, 0.25, 0.75)) == (0.5, {1: 1.0, 2: 1.0})  # a tie
    assert _chosen_weight([(network(0.8), trees, truth)], (0.25, 0.5))[0] == 0.5  # at 0.25 class 2 is lost
    assert _chosen_weight([(network(0.9), trees, truth)], (0.5, 0.75))[0] == 0.75  # at 0.5 too
    assert _chosen_weight([], (0.5, 0.75)) == (0.5, {})  # nothing held out


def test_a_run_saves_the_weight_it_chose(fast_config, tmp_path, monkeypatch):
    image, painted = disk_columns()
    fast_config.forest = ForestConfig(blend=0.5, trees=8, weights=[0.25, 0.75])  # a list, as from JSON
    fast_config.holdout = HoldoutConfig(fraction=0.25)
    assert fast_config.forest.weights == (0.25, 0.75)
    offered, real = [], estimate._chosen_weight

    def last_weight(parts, weights):  # the real scores, but always the last weight: not the default
        offered.append(tuple(weights))
        return weights[-1], real(parts, weights)[1]

    monkeypatch.setattr(estimate, "_chosen_weight", last_weight)
    model = train_model(SegmentationData(image, painted), fast_config)
    assert offered == [(0.5, 0.25, 0.75)]  # the default first: it wins ties
    assert model.info.training["forest_blend"]["weight"] == model.info.forest_weight == 0.75
    assert load_model(model.save(tmp_path / "m.safetensors")).info.forest_weight == 0.75


def test_weights_outside_the_open_unit_interval_are_refused(fast_config):
    image, painted = disk_columns()
    fast_config.forest = ForestConfig(weights=(0.0, 0.5))
    with pytest.raises(TrainingError, match="weights to choose among"):
        train_model(SegmentationData(image, painted), fast_config)
