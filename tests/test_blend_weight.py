"""The forest's weight in the blend, chosen run by run on the held-out painting (core/blend_weight.py)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from conftest import disk_columns

from napari_contrastseg.core import blend_weight
from napari_contrastseg.core.blend_weight import choose_weight, chosen_weight
from napari_contrastseg.core.config import ForestConfig, HoldoutConfig
from napari_contrastseg.core.data import SegmentationData, as_channels_first
from napari_contrastseg.core.errors import TrainingError
from napari_contrastseg.core.inference import SliceInputs
from napari_contrastseg.core.model import TrainedModel, load_model
from napari_contrastseg.core.normalization import normalize
from napari_contrastseg.core.trainer import train_model


def _dice(a: np.ndarray, b: np.ndarray, c: int) -> float:
    return 2 * ((a == c) & (b == c)).sum() / ((a == c).sum() + (b == c).sum())


def test_picked_slices_come_with_their_neighbours_in_the_order_asked():
    stack = np.random.default_rng(0).normal(size=(6, 1, 8, 8)).astype(np.float32)
    every = SliceInputs(stack, 1)
    picked = SliceInputs(stack, 1, picked=np.array([4, 0]))
    assert len(picked) == 2
    np.testing.assert_array_equal(picked.batch(0, 2), np.concatenate([every.batch(4, 5), every.batch(0, 1)]))
    np.testing.assert_array_equal(picked.slices(0, 2), stack[[4, 0]])


def test_the_weight_is_the_one_whose_blend_scores_best_on_the_held_out_painting():
    truth = np.array([1, 1, 2, 2])
    trees = np.array([[0.9, 0.9, 0.1, 0.1], [0.1, 0.1, 0.9, 0.9]])  # (K, N): right everywhere

    def network(background: float) -> np.ndarray:  # background everywhere, this sure of it
        return np.array([[background] * 4, [1 - background] * 4])

    assert chosen_weight([(network(0.8), trees, truth)], (0.5, 0.25, 0.75)) == (0.5, {0.5: 1, 0.25: 0, 0.75: 1})
    assert chosen_weight([(network(0.9), trees, truth)], (0.5, 0.75))[0] == 0.75  # at 0.5 class 2 is lost too
    assert chosen_weight([], (0.5, 0.75)) == (0.5, {})  # nothing held out: the configured weight


def test_each_weight_is_scored_as_the_model_would_predict_the_held_out_slice(fast_config):
    image, painted = disk_columns()
    fast_config.forest = ForestConfig(blend=0.5, trees=8)
    fast_config.network.through_plane = False  # the choice scores single slices, unsmoothed (docs/methods.md)
    model = train_model(SegmentationData(image, painted), fast_config)
    volume = normalize(as_channels_first(image, None), model.info.normalization)
    held = np.zeros_like(painted)
    held[15] = painted[15]
    weight, scores = choose_weight(model.network, model.info, [volume], [held], model.forest, (0.5, 1.0),
                                   torch.device("cpu"))  # fmt: skip
    where = held[15] > 0
    for w in (0.5, 1.0):
        labels = TrainedModel(model.network, replace(model.info, forest_weight=w), model.forest).predict(image).labels
        assert scores[w] == pytest.approx(_dice(labels[15][where], held[15][where], 2))
    assert weight == max((0.5, 1.0), key=lambda w: (scores[w], w == 0.5))


def test_a_run_saves_the_weight_it_chose(fast_config, tmp_path, monkeypatch):
    image, painted = disk_columns()
    fast_config.forest = ForestConfig(blend=0.5, trees=8, weights=[0.25, 0.75])  # a list, as from JSON
    fast_config.holdout = HoldoutConfig(fraction=0.25)
    assert fast_config.forest.weights == (0.25, 0.75)
    offered, real = [], blend_weight.chosen_weight

    def last_weight(parts, weights):  # the real scores, but always the last weight: not the configured one
        offered.append(tuple(weights))
        return weights[-1], real(parts, weights)[1]

    monkeypatch.setattr(blend_weight, "chosen_weight", last_weight)
    model = train_model(SegmentationData(image, painted), fast_config)
    assert offered == [(0.5, 0.25, 0.75)]  # the configured weight first: it wins ties
    found = model.info.training["forest_blend"]
    assert found["weight"] == model.info.forest_weight == 0.75 and set(found["held_out_dice"]) == {
        "0.5",
        "0.25",
        "0.75",
    }
    assert load_model(model.save(tmp_path / "m.safetensors")).info.forest_weight == 0.75


def test_with_nothing_held_out_the_configured_weight_is_kept(fast_config):
    image, painted = disk_columns()
    fast_config.forest = ForestConfig(blend=0.4, trees=8, weights=(0.9,))
    model = train_model(SegmentationData(image, painted), fast_config)  # fast_config holds nothing out
    assert model.info.forest_weight == 0.4 and model.info.training["forest_blend"]["held_out_dice"] == {}


def test_weights_outside_the_open_unit_interval_are_refused_and_ignored_without_a_forest(fast_config):
    image, painted = disk_columns()
    fast_config.forest = ForestConfig(blend=0.0)  # the default weights: nothing to choose, no error
    assert train_model(SegmentationData(image, painted), fast_config).forest is None
    fast_config.forest = ForestConfig(weights=(0.0, 0.5))
    with pytest.raises(TrainingError, match="weights to choose among"):
        train_model(SegmentationData(image, painted), fast_config)
