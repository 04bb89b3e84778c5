"""The suite's ``--pretrain``: a seed method pre-trained on the unpainted image, the painting's run starting from it."""

from __future__ import annotations

import numpy as np
from benchmark_scripts import load
from conftest import disk_columns

from napari_contrastseg.core.events import Started
from napari_contrastseg.core.trainer import train

suite = load("suite")


def _volume() -> suite.Volume:
    image, painted = disk_columns(depth=16)
    truth = np.stack([painted[3]] * len(image))  # slices along axis 0: not where an unpainted volume's would be
    return suite.Volume("disks", image, truth, (1.0, 1.0, 1.0), np.eye(4), ["background", "disk"], slice_axis=0)


def test_pretraining_learns_no_label_along_the_task_axis_and_the_painted_run_resumes_from_it(fast_config) -> None:
    vol = _volume()
    fast_config.method, fast_config.method_options = "semicontrast", {"local_mode": "exact", "chunk_size": 256}
    fast_config.slice_axis = None  # the painted run finds its axis from the painting, as the suite's runs do
    model = suite.pretrain(vol, fast_config)
    assert model.info.training["config"]["pretrain"] and model.info.slice_axis == 0
    painted = np.zeros_like(vol.ground_truth)
    painted[6] = vol.ground_truth[6]
    started = next(e for e in train(suite.SegmentationData(vol.image, painted, vol.class_names), fast_config,
                                    initial_model=model) if isinstance(e, Started))  # fmt: skip
    assert started.warm_start == "full"
    result = suite.run_network(vol, painted, fast_config, initial_model=model)
    assert result["iterations"] == fast_config.iterations and result["prediction"].shape == vol.image.shape
