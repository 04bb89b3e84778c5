"""The weight average: a warm-up momentum, a restart per stage, and the averaged weights as what a run returns."""

from __future__ import annotations

import pytest
import torch

from napari_contrastseg.core.averaging import WeightAverage
from napari_contrastseg.core.errors import InputError, TrainingError
from napari_contrastseg.core.trainer import train_model


def test_the_average_warms_up_then_moves_by_one_minus_the_momentum():
    raw = torch.nn.Linear(2, 1)
    torch.nn.init.zeros_(raw.weight)
    average = WeightAverage(raw, momentum=0.5)
    with torch.no_grad():
        raw.weight.fill_(1.0)
    average.update(raw)  # step 0: momentum min(0.5, 1/10) = 0.1
    assert torch.allclose(average.network.weight, torch.full((1, 2), 0.9))
    for _ in range(20):
        average.update(raw)
    with torch.no_grad():
        raw.weight.fill_(3.0)
    before = average.network.weight.clone()
    average.update(raw)  # late steps: the momentum itself
    assert torch.allclose(average.network.weight, 0.5 * before + 0.5 * 3.0)
    average.restart(raw)
    assert torch.equal(average.network.weight, raw.weight) and average.steps == 0
    with pytest.raises(InputError, match="between 0 and 1"):
        WeightAverage(raw, momentum=1.0)


def test_a_run_with_an_average_returns_the_averaged_weights(data_2d, fast_config):
    fast_config.iterations = 12
    raw = train_model(data_2d, fast_config)
    fast_config.ema = 0.9
    averaged = train_model(data_2d, fast_config)
    assert averaged.info.training["config"]["ema"] == 0.9
    # the same raw trajectory (the average draws nothing at random), a different network returned
    different = [
        not torch.equal(a, b) for a, b in zip(raw.network.parameters(), averaged.network.parameters(), strict=True)
    ]
    assert all(different)
    fast_config.ema = 1.5
    with pytest.raises(TrainingError, match="between 0 and 1"):
        train_model(data_2d, fast_config)
