"""The CUDA paths: run where a GPU is present (skipped elsewhere, e.g. in CI).

A training step must not wait for the GPU, bf16 training must learn, memory must go back after training, and
predictions on the GPU must agree with the CPU's.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_contrastseg.core.events import Failed, Finished, Step
from napari_contrastseg.core.trainer import train, train_model

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

STRICT_FROM, STRICT_UNTIL = 3, 10  # steps run with host waits turned into errors


@pytest.fixture
def gpu_config(fast_config):
    fast_config.device, fast_config.iterations, fast_config.preview_every = "cuda", 12, 0
    return fast_config


def test_supervised_steps_never_wait_for_the_gpu(data_2d, gpu_config):
    failures = []
    for event in train(data_2d, gpu_config):
        if isinstance(event, Step) and event.iteration == STRICT_FROM:
            torch.cuda.set_sync_debug_mode("error")  # any host wait inside the next steps raises
        elif isinstance(event, Step) and event.iteration == STRICT_UNTIL:
            torch.cuda.set_sync_debug_mode("default")
        failures += [event.message] if isinstance(event, Failed) else []
    torch.cuda.set_sync_debug_mode("default")
    assert failures == []


@pytest.mark.parametrize("method", ["supervised", "semicontrast", "action"])
@pytest.mark.parametrize("dims", ["2d", "3d"])
def test_bf16_training_learns_and_gives_memory_back(data_3d, gpu_config, method, dims):
    gpu_config.method, gpu_config.dims, gpu_config.iterations = method, dims, 30
    gpu_config.patch_size = 16 if dims == "3d" else 32
    if method != "supervised":
        gpu_config.method_options = {"global_fraction": 0.1, "local_fraction": 0.3}
    list(train(data_3d, gpu_config))  # a first run creates the libraries' lasting workspaces (cuBLAS)
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    events = list(train(data_3d, gpu_config))
    assert not [e.message for e in events if isinstance(e, Failed)]
    losses = [dict(e.losses) for e in events if isinstance(e, Step)]
    assert all(np.isfinite(v) for step in losses for v in step.values())
    assert losses[-1]["supervised"] < losses[0]["supervised"]
    assert isinstance(events[-1], Finished) and events[-1].summary["device"].startswith("cuda")
    del events, losses
    assert torch.cuda.memory_allocated() <= before  # the second run left nothing behind


def test_gpu_prediction_matches_the_cpu(data_3d, gpu_config):
    gpu_config.iterations = 40
    model = train_model(data_3d, gpu_config)
    on_gpu, on_cpu = model.predict(data_3d.image, device="cuda"), model.predict(data_3d.image, device="cpu")
    assert np.mean(on_gpu.labels == on_cpu.labels) > 0.995
    np.testing.assert_allclose(on_gpu.uncertainty, on_cpu.uncertainty, atol=0.05)
