"""Applying a model to a dask-backed image layer in a real napari viewer: predicted block by block into zarr, shown
from there (run under ``xvfb-run`` on Linux)."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
from conftest import disk_columns

pytest.importorskip("napari")
pytest.importorskip("pytestqt")
da = pytest.importorskip("dask.array")

pytestmark = [
    pytest.mark.gui,
    pytest.mark.usefixtures("one_torch_thread"),
    pytest.mark.skipif(
        sys.platform.startswith("linux")
        and not os.environ.get("DISPLAY")
        and os.environ.get("QT_QPA_PLATFORM") not in ("offscreen", "minimal"),
        reason="GUI test: needs a display (run under xvfb-run)",
    ),
]


def test_apply_model_to_a_dask_layer_predicts_into_zarr(make_napari_viewer, qtbot, tmp_path, monkeypatch):
    import zarr

    from napari_contrastseg._napari.settings import TrainingSettings
    from napari_contrastseg.core.config import HoldoutConfig, NetworkConfig, TrainConfig
    from napari_contrastseg.core.data import SegmentationData
    from napari_contrastseg.core.trainer import train_model

    monkeypatch.setenv("CONTRASTSEG_AUTOSAVE_DIR", str(tmp_path / "autosave"))
    monkeypatch.setenv("CONTRASTSEG_PREDICTION_DIR", str(tmp_path / "predictions"))
    image, painted = disk_columns()
    config = TrainConfig(iterations=40, batch_size=2, patch_size=32, device="cpu", network=NetworkConfig((8, 16, 32)),
                         holdout=HoldoutConfig(fraction=0.0))  # fmt: skip
    model = train_model(SegmentationData(image, painted), config)
    path = model.save(tmp_path / "model.safetensors")
    source = zarr.create_array(store=str(tmp_path / "image.zarr"), data=image, chunks=(4, 16, 16))

    viewer = make_napari_viewer()
    viewer.add_image(da.from_zarr(source), name="lazy", scale=(2.0, 1.0, 1.0))
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-contrastseg", "Scribble segmentation")
    widget.apply_settings(TrainingSettings(device="cpu", cpu_threads=1))
    assert widget.model_panel.load_model(path) is not None
    assert widget.apply_model("lazy")
    qtbot.waitUntil(lambda: "lazy prediction" in viewer.layers and not widget.is_applying, timeout=90_000)

    prediction, uncertainty = viewer.layers["lazy prediction"], viewer.layers["lazy uncertainty"]
    assert isinstance(prediction.data, zarr.Array) and isinstance(uncertainty.data, zarr.Array)
    assert prediction.data.shape == image.shape and tuple(prediction.scale) == (2.0, 1.0, 1.0)
    assert isinstance(viewer.layers["lazy"].data, da.Array)  # the image layer was never replaced by a copy
    expected = model.predict(image, device="cpu", probabilities=False)
    assert len(np.unique(expected.labels)) == 2
    np.testing.assert_array_equal(prediction.data[:], expected.labels)
    assert str(tmp_path / "predictions") in widget.status_label.text()
    uncertainty.visible = True
    viewer.dims.set_current_step(0, 10)  # the viewer draws slices read from the store
    qtbot.wait(50)
    widget.shutdown()
