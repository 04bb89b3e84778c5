"""The trainer's event stream: start, steps, previews, checkpoints, cancel, warm start, determinism, OOM retry."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from napari_contrastseg.core.config import NetworkConfig
from napari_contrastseg.core.data import SegmentationData
from napari_contrastseg.core.events import Checkpoint, Failed, Finished, LossValues, Preview, Started, Step
from napari_contrastseg.core.methods import METHODS, Method, register
from napari_contrastseg.core.methods.supervised import Supervised
from napari_contrastseg.core.trainer import PreviewRequest, train, train_model


def test_event_stream_of_a_full_run(data_2d, fast_config, tmp_path):
    fast_config.checkpoint_every = 3
    events = list(train(data_2d, fast_config, preview=PreviewRequest(), checkpoint_dir=tmp_path))
    kinds = [e.kind for e in events]
    assert kinds[0] == "started" and kinds[-1] == "finished"
    started, finished = events[0], events[-1]
    assert isinstance(started, Started) and started.device.startswith("cpu") and started.n_parameters > 0
    steps = [e for e in events if isinstance(e, Step)]
    assert [s.iteration for s in steps] == list(range(1, 7))
    unread = [s.iteration for s in steps if not s.losses.read]
    assert unread == [1, 2, 4, 5]  # the trainer copies loss values to the host only for checkpoints (3, 6)
    assert set(steps[0].losses) == {"supervised", "total"} and all(np.isfinite(s.losses["total"]) for s in steps)
    previews = [e for e in events if isinstance(e, Preview)]
    assert [p.iteration for p in previews] == [2, 4, 6]
    assert previews[0].labels.shape == data_2d.labels.shape and set(np.unique(previews[0].labels)) <= {1, 2}
    assert previews[0].uncertainty.min() >= 0 and previews[0].uncertainty.max() <= 1
    checkpoints = [e for e in events if isinstance(e, Checkpoint)]
    assert [c.iteration for c in checkpoints] == [3, 6] and (tmp_path / "checkpoint.safetensors").is_file()
    assert isinstance(finished, Finished) and not finished.cancelled and finished.iteration == 6
    assert finished.summary["painted_voxels_per_class"]["background"] > 0
    for event in events:  # every event serialises for --events jsonl
        assert event.kind in event.to_json()


def test_loss_values_read_once_and_average_on_the_device():
    a, b = LossValues(["x", "total"], torch.tensor([1.0, 3.0])), LossValues(["x", "total"], torch.tensor([2.0, 5.0]))
    mean = LossValues.mean([a, b])
    assert isinstance(mean, LossValues) and not mean.read and "x" in mean and not mean.read
    assert dict(mean) == {"x": 1.5, "total": 4.0} and mean.read and not a.read
    assert dict(LossValues.mean([{"x": 1.0}, a])) == {"x": 1.0, "total": 3.0}  # plain dicts mix in
    assert '"total": 3.0' in Step(1, 1, a, 0.1, 1.0, 1).to_json()


def test_training_does_not_modify_the_users_arrays(data_2d, fast_config):
    image, labels = data_2d.image.copy(), data_2d.labels.copy()
    train_model(data_2d, fast_config)
    assert np.array_equal(image, data_2d.image) and np.array_equal(labels, data_2d.labels)


def test_cancel_keeps_the_last_weights(data_2d, fast_config):
    cancel = threading.Event()
    fast_config.iterations = 100
    events = []
    for event in train(data_2d, fast_config, cancel=cancel):
        events.append(event)
        if isinstance(event, Step) and event.iteration == 3:
            cancel.set()
    finished = events[-1]
    assert isinstance(finished, Finished) and finished.cancelled and finished.iteration == 3
    assert finished.model.predict(data_2d.image).labels.shape == data_2d.labels.shape


def test_same_seed_gives_identical_weights_on_cpu(data_2d, fast_config):
    a = train_model(data_2d, fast_config).network.state_dict()
    b = train_model(data_2d, fast_config).network.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    fast_config.seed = 1
    c = train_model(data_2d, fast_config).network.state_dict()
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_warm_start_continues_from_given_weights(data_2d, fast_config):
    first = train_model(data_2d, fast_config)
    fast_config.iterations, fast_config.learning_rate, fast_config.weight_decay = 1, 0.0, 0.0
    events = list(train(data_2d, fast_config, initial_model=first))
    assert events[0].warm_start == "full"
    same = dict(events[-1].model.network.named_parameters())  # BatchNorm's running statistics still move
    assert all(torch.equal(v, same[k]) for k, v in first.network.named_parameters())


def test_warm_start_with_a_new_class_keeps_all_but_the_head(data_2d, fast_config):
    first = train_model(data_2d, fast_config)
    labels = data_2d.labels.copy()
    labels[20, 20:25] = 3
    fast_config.iterations = 1
    events = list(train(SegmentationData(data_2d.image, labels), fast_config, initial_model=first))
    assert events[0].warm_start == "partial (new classes)"
    assert events[-1].model.info.n_classes == 3


def test_warm_start_refuses_a_model_with_another_normalisation(data_2d, fast_config):
    fast_config.network = NetworkConfig(fast_config.network.features, norm="batch")
    first = train_model(data_2d, fast_config)
    fast_config.network = NetworkConfig(fast_config.network.features, norm="group")
    events = list(train(data_2d, fast_config, initial_model=first))
    assert isinstance(events[-1], Failed)
    assert "uses batch normalisation and this run asks for group" in events[-1].message
    assert not any(isinstance(e, Step) for e in events)


def test_3d_volume_trains_slicewise_along_the_painted_axis_and_previews_a_slice(data_3d, fast_config):
    events = list(train(data_3d, fast_config, preview=PreviewRequest(index=4)))
    assert events[0].slice_axis == 0 and events[0].dims == "2d"
    preview = next(e for e in events if isinstance(e, Preview))
    assert preview.axis == 0 and preview.index == 4 and preview.labels.shape == (48, 56)


def test_3d_patch_training(data_3d, fast_config):
    fast_config.dims = "3d"
    fast_config.patch_size = 16
    fast_config.iterations = 2
    events = list(train(data_3d, fast_config, preview=PreviewRequest(index=2, axis=0)))
    assert events[0].dims == "3d" and events[0].patch_size == (8, 16, 16)
    model = events[-1].model
    assert model.info.spatial_dims == 3
    assert model.predict(data_3d.image).labels.shape == data_3d.labels.shape


@pytest.fixture
def oom_method():
    """A method whose step runs out of memory above a given batch size, as CUDA would."""

    @register
    class OutOfMemoryAbove(Supervised):
        name = "test-oom"
        defaults = {"limit": 1}

        def losses(self, network, batch, progress):
            if batch.images.shape[0] > self.options["limit"]:
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
            return super().losses(network, batch, progress)

    yield OutOfMemoryAbove
    del METHODS["test-oom"]


def test_out_of_memory_retries_with_a_smaller_batch(data_2d, fast_config, oom_method):
    fast_config.method, fast_config.batch_size, fast_config.method_options = "test-oom", 4, {"limit": 2}
    events = list(train(data_2d, fast_config))
    assert isinstance(events[-1], Finished)
    assert {e.batch_size for e in events if isinstance(e, Step)} == {2}


def test_out_of_memory_at_batch_one_gives_a_clear_message(data_2d, fast_config, oom_method):
    fast_config.method, fast_config.method_options = "test-oom", {"limit": 0}
    events = list(train(data_2d, fast_config))
    assert isinstance(events[-1], Failed) and "Out of GPU memory" in events[-1].message


def test_unknown_method_and_option_are_explained(data_2d, fast_config):
    fast_config.method = "magic"
    assert "Unknown method 'magic'" in list(train(data_2d, fast_config))[-1].message
    fast_config.method, fast_config.method_options = "supervised", {"nope": 1}
    assert "Unknown option" in list(train(data_2d, fast_config))[-1].message


def test_methods_are_strategies_on_one_loop():
    assert "supervised" in METHODS and issubclass(METHODS["supervised"], Method)


@pytest.mark.slow
def test_compiled_network_trains_with_the_same_losses(data_2d, fast_config):
    fast_config.iterations = 3

    def losses() -> list[float]:
        return [e.losses["total"] for e in train(data_2d, fast_config) if isinstance(e, Step)]

    eager = losses()
    fast_config.compile = True
    compiled = losses()
    assert len(compiled) == 3
    np.testing.assert_allclose(compiled, eager, rtol=2e-3)  # same function, same updates, up to float rounding
