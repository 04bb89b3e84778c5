"""The fixed filter bank in front of the U-Net: correct features, kept in model files, refused when mismatched."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from monai.networks.layers.simplelayers import separable_filtering
from safetensors import safe_open

from napari_contrastseg.core.config import ForestConfig, NetworkConfig, TrainConfig, network_from_dict
from napari_contrastseg.core.errors import InputError
from napari_contrastseg.core.events import Failed, Finished
from napari_contrastseg.core.filters import FilterBank, gaussian_kernels, symmetric_eigenvalues
from napari_contrastseg.core.model import load_model
from napari_contrastseg.core.model_io import METADATA_KEY, read_model_info
from napari_contrastseg.core.network import UNet
from napari_contrastseg.core.trainer import train, train_model


@pytest.mark.parametrize("dims", [2, 3])
def test_one_grouped_convolution_per_axis_gives_every_separable_derivative(dims):
    x = torch.rand(2, 3, *([20] * dims))
    bank = FilterBank(dims, 3, (1.0, 1.5))
    kernels = gaussian_kernels(1.5)
    derivatives = bank.derivatives(x, 1)
    assert len(derivatives) == (6 if dims == 2 else 10)  # orders summing to at most 2
    for orders, value in derivatives.items():
        expected = separable_filtering(x, [kernels[o] for o in orders], mode="replicate")
        torch.testing.assert_close(value, expected, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("dims", [2, 3])
def test_closed_form_eigenvalues_match_a_solver(dims):
    a = torch.randn(500, dims, dims, dtype=torch.float64)
    a = a + a.transpose(1, 2)
    upper = {(i, j): a[:, i, j] for i in range(dims) for j in range(i, dims)}
    got = torch.stack(symmetric_eigenvalues(upper, dims), dim=-1)
    torch.testing.assert_close(got, torch.linalg.eigvalsh(a), atol=1e-8, rtol=1e-8)
    flat = (0.5 * torch.eye(dims) + 1e-4 * a[:, :dims, :dims]).float()  # nearly equal eigenvalues, float32
    upper = {(i, j): flat[:, i, j] for i in range(dims) for j in range(i, dims)}
    got = torch.stack(symmetric_eigenvalues(upper, dims), dim=-1)
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got, torch.linalg.eigvalsh(flat.double()).float(), atol=2e-4, rtol=0)


def test_features_of_a_ramp_and_a_paraboloid_are_the_known_derivatives():
    sigma = 2.0
    bank = FilterBank(2, 1, (sigma,))
    y, x = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    ramp = bank((0.01 * x)[None, None])[0, :, 32, 32]
    slopes = bank.derivatives((0.01 * x)[None, None], 0)
    assert slopes[0, 1][0, 0, 32, 32] == pytest.approx(0.01 * sigma, rel=1e-3)  # +sigma * df/dx: rising to the right
    assert slopes[1, 0][0, 0, 32, 32] == pytest.approx(0.0, abs=1e-6)
    # the input, smoothed intensity, gradient magnitude (scale-normalised: sigma * slope), Hessian eigenvalues
    torch.testing.assert_close(ramp, torch.tensor([0.32, 0.32, 0.01 * sigma, 0.0, 0.0]), atol=1e-4, rtol=1e-3)
    bowl = bank((1e-3 * (x - 32) ** 2 + 3e-3 * (y - 32) ** 2)[None, None])[0, :, 32, 32]
    # second derivatives 2e-3 and 6e-3, times sigma**2
    torch.testing.assert_close(bowl[3:], torch.tensor([2e-3, 6e-3]) * sigma**2, atol=2e-4, rtol=0.05)


def test_bank_shape_and_a_network_that_stores_no_kernels():
    bank = FilterBank(3, 2, (1, 2))
    assert bank(torch.rand(1, 2, 12, 12, 12)).shape == (1, bank.out_channels, 12, 12, 12)
    assert bank.out_channels == 2 * (1 + 2 * (2 + 3))
    net = UNet(2, 1, 3, NetworkConfig((8, 16), filters=(1.0, 4.0)))
    plain = UNet(2, 1, 3, NetworkConfig((8, 16), filters=()))
    assert not any(k.startswith("filters.") for k in net.state_dict())  # rebuilt from the sigmas, not stored
    assert net.stem.conv_0.conv.in_channels == 1 + 2 * 4 and plain.stem.conv_0.conv.in_channels == 1
    assert net(torch.rand(2, 1, 16, 16)).logits.shape == (2, 3, 16, 16)
    for bad in [(0.0,), (float("nan"),), (float("inf"),), ()]:
        with pytest.raises(InputError, match="positive and finite"):
            FilterBank(2, 1, bad)


def test_model_files_from_before_the_filter_bank_have_none_and_models_without_it_are_written_as_then(
    data_2d, fast_config, tmp_path
):
    old = {"features": [8, 16], "dropout": 0.0, "norm": "batch", "context": 0}
    assert network_from_dict(old).filters == () and not network_from_dict(old).through_plane
    fast_config.network = NetworkConfig((8, 16, 32), filters=(), through_plane=False)
    fast_config.forest = ForestConfig(blend=0.0)  # no forest in the file either
    path = train_model(data_2d, fast_config).save(tmp_path / "plain")
    with safe_open(path, "pt") as stored:
        header = json.loads(stored.metadata()[METADATA_KEY])
    assert header["format_version"] == 1 and "filters" not in header["network"]  # older versions read it
    assert read_model_info(path).network.filters == ()
    config = TrainConfig.from_dict({"network": {**old, "filters": [1, 2]}})
    assert config.network.filters == (1.0, 2.0)


def test_a_model_with_filters_trains_saves_and_predicts_the_same(data_3d, fast_config, tmp_path):
    fast_config.network = NetworkConfig((8, 16, 32), filters=(1.0, 2.0), through_plane=False)
    fast_config.forest = ForestConfig(blend=0.0)  # format 2: a bank, no forest, no smoothing
    model = train_model(data_3d, fast_config)
    loaded = load_model(model.save(tmp_path / "model"))
    assert loaded.info.network.filters == (1.0, 2.0) and loaded.info.format_version == 2
    assert read_model_info(tmp_path / "model.safetensors").to_dict()["network"]["filters"] == (1.0, 2.0)
    a, b = model.predict(data_3d.image), loaded.predict(data_3d.image)
    np.testing.assert_array_equal(a.labels, b.labels)


def test_bad_scales_fail_before_training_with_a_plain_message(data_2d, fast_config):
    fast_config.network = NetworkConfig((8, 16, 32), filters=(2.0, -1.0))
    events = list(train(data_2d, fast_config))
    assert len(events) == 1 and isinstance(events[0], Failed) and events[0].error == "InputError"
    assert "Filter-bank scales must be positive and finite" in events[0].message


def test_continuing_with_other_filters_is_refused_with_the_way_out(data_2d, fast_config):
    fast_config.network = NetworkConfig((8, 16, 32), filters=(1.0, 2.0))
    model = train_model(data_2d, fast_config)
    fast_config.network = NetworkConfig((8, 16, 32), filters=())
    events = list(train(data_2d, fast_config, initial_model=model))
    assert isinstance(events[-1], Failed)
    assert "filter bank has scales 1,2 and this run asks for none" in events[-1].message
    fast_config.network = NetworkConfig((8, 16, 32), filters=(1.0, 2.0))
    assert isinstance(list(train(data_2d, fast_config, initial_model=model))[-1], Finished)


def test_features_are_float32_under_mixed_precision_and_in_a_half_network():
    bank = FilterBank(3, 1, (1.0, 2.0))
    x = torch.rand(1, 1, 10, 10, 10)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = bank(x)
    assert mixed.dtype == torch.float32 and torch.isfinite(mixed).all()
    torch.testing.assert_close(mixed, bank(x))
    assert torch.isfinite(bank.half()(torch.zeros(1, 1, 10, 10, 10, dtype=torch.half))).all()  # flat: no NaN
