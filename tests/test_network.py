"""The U-Net's normalisation layers: BatchNorm folds away at inference, GroupNorm keeps each crop on its own."""

from __future__ import annotations

import pytest
import torch

from napari_contrastseg.core.config import GROUPS, NetworkConfig
from napari_contrastseg.core.events import Failed, Finished
from napari_contrastseg.core.network import UNet, fold_batch_norm
from napari_contrastseg.core.trainer import train


def _unet(norm: str, features=(8, 16, 32)) -> UNet:
    torch.manual_seed(0)
    return UNet(2, 1, 3, NetworkConfig(features, norm=norm))


def test_group_norm_uses_each_crops_own_statistics_in_training():
    net = _unet("group").train()
    groups = [m for m in net.modules() if isinstance(m, torch.nn.GroupNorm)]
    assert groups and all(m.num_groups == GROUPS for m in groups)
    x = torch.rand(3, 1, 32, 32)
    alone = net(x[:1]).logits
    with_others = net(torch.cat([x[:1], 10 * x[1:]])).logits[:1]
    torch.testing.assert_close(alone, with_others)  # the other crops of the batch change nothing
    batch = _unet("batch").train()
    assert not torch.allclose(batch(x[:1]).logits, batch(torch.cat([x[:1], 10 * x[1:]])).logits[:1])


def test_folding_leaves_group_norm_in_place_and_outputs_unchanged():
    net = _unet("group").eval()
    x = torch.rand(2, 1, 32, 32)
    folded = fold_batch_norm(net)
    assert any(isinstance(m, torch.nn.GroupNorm) for m in folded.modules())
    torch.testing.assert_close(folded(x).logits, net(x).logits)


def test_group_norm_trains_and_the_model_predicts(data_2d, fast_config):
    fast_config.network = NetworkConfig((8, 16, 32), norm="group")
    events = list(train(data_2d, fast_config))
    assert isinstance(events[-1], Finished), events[-1]
    assert events[-1].model.info.network.norm == "group"
    assert events[-1].model.predict(data_2d.image).labels.shape == data_2d.labels.shape


@pytest.mark.parametrize(
    ("network", "message"),
    [
        (NetworkConfig((8, 16, 32), norm="layer"), "norm must be one of batch, group, instance, not 'layer'"),
        (NetworkConfig((6, 12), norm="group"), f"every width must be a multiple of {GROUPS}"),
    ],
)
def test_bad_norm_is_refused_before_training(network, message, data_2d, fast_config):
    fast_config.network = network
    events = list(train(data_2d, fast_config))
    assert isinstance(events[-1], Failed) and message in events[-1].message
    assert len(events) == 1  # refused before any step
