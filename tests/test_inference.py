"""Sliding-window prediction: shapes, class values, probabilities, uncertainty, channels, tiny images."""

from __future__ import annotations

import numpy as np
import pytest

from napari_contrastseg.core.config import ForestConfig
from napari_contrastseg.core.data import SegmentationData
from napari_contrastseg.core.errors import InputError
from napari_contrastseg.core.trainer import train_model


@pytest.fixture
def model_2d(data_2d, fast_config):
    return train_model(data_2d, fast_config)


def test_prediction_of_a_2d_image(model_2d, data_2d):
    result = model_2d.predict(data_2d.image, tile_size=32, overlap=0.5)
    assert result.labels.shape == data_2d.labels.shape and result.labels.dtype == np.uint8
    assert set(np.unique(result.labels)) <= {1, 2}
    assert result.probabilities.shape == (2, *data_2d.labels.shape)
    np.testing.assert_allclose(result.probabilities.sum(0), 1, atol=1e-5)
    np.testing.assert_array_equal(result.labels, result.probabilities.argmax(0) + 1)
    p = result.probabilities
    entropy = -(p * np.log(np.clip(p, 1e-8, 1))).sum(0) / np.log(2)
    np.testing.assert_allclose(result.uncertainty, entropy, atol=1e-4)


def test_2d_model_predicts_a_volume_slice_by_slice_along_its_axis(data_3d, fast_config):
    fast_config.forest = ForestConfig(blend=0.0)  # the network's own answer: a forest's thresholds amplify the
    fast_config.network.through_plane = False  # normalisation's difference; no smoothing (test_through_plane.py)
    model = train_model(data_3d, fast_config)
    assert model.info.slice_axis == 0
    result = model.predict(data_3d.image, probabilities=False)
    assert result.labels.shape == data_3d.labels.shape and result.probabilities is None
    one = model.predict(data_3d.image[2])  # the same network on one slice gives the same answer
    whole = model.predict(data_3d.image).probabilities
    # up to the intensity normalisation (percentiles of the slice, not of the volume): 1e-3 here
    np.testing.assert_allclose(whole[:, 2], one.probabilities, atol=5e-3)
    assert (result.labels[2] == one.labels).mean() > 0.999


def test_image_smaller_than_the_network_minimum_is_padded(fast_config):
    image = np.zeros((5, 7), np.float32)
    image[:, 3:] = 1
    labels = np.zeros((5, 7), np.uint8)
    labels[0, 0], labels[0, 6] = 1, 2
    model = train_model(SegmentationData(image, labels), fast_config)
    assert model.predict(image).labels.shape == (5, 7)


def test_wrong_number_of_channels_is_explained(model_2d, data_2d):
    rgb = np.stack([data_2d.image] * 3, axis=-1)
    with pytest.raises(InputError, match="expects 1 channel"):
        model_2d.predict(rgb, channel_axis=-1)


def test_progress_is_reported(data_3d, fast_config):
    model = train_model(data_3d, fast_config)
    seen = []
    model.predict(data_3d.image, batch_size=2, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 6), (3, 6), (5, 6), (6, 6)]  # smoothing gives a slice out once its next one is in
    model.info.network.through_plane = False
    seen.clear()
    model.predict(data_3d.image, batch_size=2, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(2, 6), (4, 6), (6, 6)]


def test_tile_size_must_fit_the_pooling_steps(model_2d, data_2d):
    with pytest.raises(InputError, match="tile_size must be a multiple of 4"):
        model_2d.predict(data_2d.image, tile_size=30)
    assert model_2d.predict(data_2d.image, tile_size=24).labels.shape == data_2d.image.shape
