"""Intensity normalisation: robust percentiles by default, a fixed window for CT."""

from __future__ import annotations

import numpy as np
import pytest

from napari_contrastseg.core.config import NormalizationConfig
from napari_contrastseg.core.errors import InputError
from napari_contrastseg.core.normalization import normalize


def test_percentile_normalisation_ignores_outliers_per_channel():
    rng = np.random.default_rng(0)
    image = np.stack([rng.normal(100, 10, (64, 64)), rng.normal(-5, 1, (64, 64))])
    image[0, 0, 0] = 1e6  # a hot pixel must not squash the rest
    out = normalize(image, NormalizationConfig())
    assert out.dtype == np.float32
    for channel in out:
        inner = channel[channel < 10]
        assert abs(np.percentile(inner, 1)) < 0.02 and abs(np.percentile(inner, 99) - 1) < 0.02


def test_window_maps_the_window_to_unit_range():
    image = np.array([[[-1000.0, 0.0, 1000.0]]])
    out = normalize(image, NormalizationConfig(mode="window", window_min=-1000, window_max=1000))
    np.testing.assert_allclose(out[0, 0], [0, 0.5, 1])


@pytest.mark.parametrize("config", [NormalizationConfig(mode="window"), NormalizationConfig(mode="zscore")])
def test_bad_normalisation_settings_are_explained(config):
    with pytest.raises(InputError):
        normalize(np.random.rand(1, 4, 4), config)
