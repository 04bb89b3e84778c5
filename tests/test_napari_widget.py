"""The dock widget in a real napari viewer (pytest-qt + ``make_napari_viewer``; run under ``xvfb-run`` on Linux)."""

from __future__ import annotations

import os
import sys
import threading

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

needs_display = pytest.mark.skipif(
    sys.platform.startswith("linux")
    and not os.environ.get("DISPLAY")
    and os.environ.get("QT_QPA_PLATFORM") not in ("offscreen", "minimal"),
    reason="GUI test: needs a display (run under xvfb-run)",
)
pytestmark = [pytest.mark.gui, needs_display]

from napari_contrastseg._napari.settings import TrainingSettings  # noqa: E402

#: A tiny network and few steps: a run takes a few seconds on a 2-core CPU.
FAST = TrainingSettings(
    iterations=8, batch_size=2, patch_size=32, network="small", preview_seconds=0.2, device="cpu", cpu_threads=1
)
TIMEOUT_MS = 90_000


@pytest.fixture
def notes(monkeypatch):
    """Messages shown as napari notifications during the test: list of (severity, message)."""
    from napari.utils.notifications import notification_manager

    seen: list[tuple[str, str]] = []

    def record(notification):
        seen.append((str(notification.severity), str(notification.message)))

    notification_manager.notification_ready.connect(record)
    yield seen
    notification_manager.notification_ready.disconnect(record)


@pytest.fixture
def session(make_napari_viewer, qtbot, tmp_path, monkeypatch):
    """A viewer with the colin27-deep sample open and the widget docked through the plugin menu entry."""
    monkeypatch.setenv("CONTRASTSEG_AUTOSAVE_DIR", str(tmp_path / "autosave"))
    viewer = make_napari_viewer()
    viewer.open_sample("napari-contrastseg", "colin27-deep")
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-contrastseg", "Scribble segmentation")
    widget.apply_settings(FAST)
    yield viewer, widget, qtbot
    widget.shutdown()


def _events(widget) -> list:
    seen: list = []
    widget.event_applied.connect(lambda e: seen.append((e, threading.current_thread() is threading.main_thread())))
    return seen


def _our_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("contrastseg-")]


def _wait_idle(widget, qtbot) -> None:
    qtbot.waitUntil(lambda: not widget.is_running, timeout=TIMEOUT_MS)
    qtbot.wait(20)


def test_first_launch_shows_layers_classes_and_device(session):
    viewer, widget, _ = session
    assert widget.image_combo.currentText() == "colin27-deep"
    assert widget.scribbles_combo.currentText() == "scribbles"
    names = widget.class_list.names()
    assert names[0] == "background" and len(names) == 13  # from the sample's metadata
    assert "CPU" in widget.device_label.text() or "GPU" in widget.device_label.text()
    assert widget.train_button.isEnabled() and not widget.stop_button.isEnabled()
    assert not widget.continue_button.isEnabled()
    assert not widget.advanced.isExpanded()
    assert not widget.restore_frame.isVisible()
    assert widget.controls.method_combo.currentText() == "supervised"


def test_normalisation_choice_reaches_the_engine_config(session):
    _, widget, _ = session
    widget.apply_settings(FAST.copy(norm="group"))
    assert widget.controls.norm_combo.currentData() == "group"
    assert widget.read_settings().to_config().network.norm == "group"
    widget.apply_settings(FAST)
    assert widget.read_settings().to_config().network.norm == "batch"


def test_train_previews_then_predicts_whole_image_without_touching_scribbles(session):
    viewer, widget, qtbot = session
    scribbles = np.array(viewer.layers["scribbles"].data, copy=True)
    events = _events(widget)
    assert widget.train()
    _wait_idle(widget, qtbot)
    kinds = [e.kind for e, _ in events]
    assert kinds[0] == "started" and "preview" in kinds and "finished" in kinds and kinds[-1] == "whole_prediction"
    assert all(on_main for _, on_main in events), "layers must be changed on the main thread only"
    image = viewer.layers["colin27-deep"]
    prediction, uncertainty = viewer.layers["prediction"], viewer.layers["uncertainty"]
    assert prediction.data.shape == image.data.shape and uncertainty.data.shape == image.data.shape
    assert tuple(prediction.scale) == tuple(image.scale)
    assert prediction.data.min() >= 1 and prediction.data.max() <= 13
    assert float(uncertainty.data.min()) >= 0.0 and float(uncertainty.data.max()) <= 1.0
    assert np.array_equal(viewer.layers["scribbles"].data, scribbles)
    names = [layer.name for layer in viewer.layers]
    assert names.index("scribbles") > names.index("prediction")  # the painting stays on top
    assert widget.model is not None and widget.continue_button.isEnabled()
    assert widget.timings["first_preview"] - widget.timings["train_pressed"] < 30

    # Next slice to paint: an unpainted slice along the painted axis (2), the viewer moves there
    painted = set(np.flatnonzero((scribbles > 0).any(axis=(0, 1))))
    index = widget.next_slice()
    assert index is not None and index not in painted
    dim = viewer.dims.ndim - image.ndim + 2
    assert viewer.dims.current_step[dim] == index
    assert dim not in viewer.dims.displayed


def test_preview_follows_the_viewed_slice(session):
    viewer, widget, qtbot = session
    widget.apply_settings(FAST.copy(iterations=60, preview_seconds=0.05))
    events = _events(widget)
    assert widget.train()
    qtbot.waitUntil(lambda: any(e.kind == "started" for e, _ in events), timeout=TIMEOUT_MS)
    dim = viewer.dims.ndim - 3 + 2
    viewer.dims.set_current_step(dim, 7)
    qtbot.waitUntil(
        lambda: any(e.kind == "preview" and e.index == 7 for e, _ in events) or not widget.is_running,
        timeout=TIMEOUT_MS,
    )
    widget.stop()
    _wait_idle(widget, qtbot)
    assert any(e.kind == "preview" and e.index == 7 and e.axis == 2 for e, _ in events)


def test_stop_keeps_a_usable_model_and_continue_warm_starts(session, notes):
    viewer, widget, qtbot = session
    widget.apply_settings(FAST.copy(iterations=100_000))
    events = _events(widget)
    assert widget.train()
    assert not widget.train()  # pressing Train twice does not start a second run
    assert any("already running" in m for _, m in notes)
    qtbot.waitUntil(lambda: any(e.kind == "step" for e, _ in events), timeout=TIMEOUT_MS)
    assert widget.stop_button.isEnabled() and not widget.train_button.isEnabled()
    widget.stop()
    _wait_idle(widget, qtbot)
    assert sum(e.kind == "started" for e, _ in events) == 1
    finished = [e for e, _ in events if e.kind == "finished"][0]
    assert finished.cancelled and finished.iteration < 100_000
    assert widget.model.info.training["cancelled"]
    assert any("Stopped after" in m for _, m in notes)
    assert viewer.layers["prediction"].data.min() >= 1  # the whole image was still predicted
    predicted = widget.model.predict(viewer.layers["colin27-deep"].data[:, :, 30:34], probabilities=False)
    assert predicted.labels.shape == (90, 78, 4)

    widget.apply_settings(FAST.copy(iterations=4, norm="group"))
    events.clear()
    assert widget.continue_training()
    _wait_idle(widget, qtbot)
    started = [e for e, _ in events if e.kind == "started"][0]
    assert started.warm_start == "full"
    assert widget.model.info.network.norm == "batch", "Continue keeps the current model's normalisation layer"


def test_errors_become_notifications(session, notes):
    viewer, widget, qtbot = session
    image = viewer.layers["colin27-deep"]

    empty = viewer.add_labels(np.zeros(image.data.shape, np.uint8), name="empty")
    widget.select_layers(scribbles="empty")
    assert not widget.train()
    one = viewer.add_labels(np.zeros(image.data.shape, np.uint8), name="one class")
    one.data[40, 30:40, 20] = 1
    widget.select_layers(scribbles="one class")
    assert not widget.train()
    viewer.add_labels(np.zeros((10, 10, 10), np.uint8), name="small")
    widget.select_layers(scribbles="small")
    assert not widget.train()
    viewer.layers.remove(empty)
    errors = [m for s, m in notes if s == "error"]
    assert any("Nothing is painted" in m for m in errors)
    assert any("Only class 1 is painted" in m for m in errors)
    assert any("has shape (10, 10, 10)" in m for m in errors)
    assert not widget.is_running


def test_out_of_memory_in_the_worker_is_a_message(session, notes, monkeypatch):
    from napari_contrastseg._napari.workers import training

    def out_of_memory(*_args, **_kwargs):
        raise MemoryError
        yield  # pragma: no cover - makes this a generator

    monkeypatch.setattr(training, "train", out_of_memory)
    viewer, widget, qtbot = session
    assert widget.train()
    _wait_idle(widget, qtbot)
    assert any(s == "error" and "Out of memory" in m for s, m in notes)
    assert widget.train_button.isEnabled()


def test_no_scribbles_layer_and_new_scribbles(session, notes):
    viewer, widget, qtbot = session
    viewer.layers.remove("scribbles")
    assert widget.scribbles_combo.currentText() == ""
    assert not widget.train()
    assert any("click New" in m for s, m in notes if s == "error")
    layer = widget.new_scribbles()
    assert layer.data.shape == viewer.layers["colin27-deep"].data.shape and not layer.data.any()
    assert widget.scribbles_combo.currentText() == layer.name and layer.mode == "paint"


def test_closing_the_widget_during_training_stops_it(session):
    from qtpy.QtCore import QThreadPool

    viewer, widget, qtbot = session
    widget.apply_settings(FAST.copy(iterations=100_000))
    events = _events(widget)
    assert widget.train()
    control = widget._run.control
    qtbot.waitUntil(lambda: any(e.kind == "step" for e, _ in events), timeout=TIMEOUT_MS)
    viewer.window.remove_dock_widget(widget)  # the dock's close button does this
    assert control.abort.is_set() and control.done.is_set()
    assert not widget.is_running
    assert not _our_threads()
    qtbot.waitUntil(lambda: QThreadPool.globalInstance().activeThreadCount() == 0, timeout=10_000)


def test_closing_the_viewer_during_training_stops_it(make_napari_viewer, qtbot, tmp_path, monkeypatch):
    from qtpy.QtCore import QThreadPool

    from napari_contrastseg._napari.widget import ContrastSegWidget

    monkeypatch.setenv("CONTRASTSEG_AUTOSAVE_DIR", str(tmp_path))
    viewer = make_napari_viewer()
    viewer.open_sample("napari-contrastseg", "colin27-deep")
    widget = ContrastSegWidget(viewer)
    viewer.window.add_dock_widget(widget)
    qtbot.wait(10)  # the widget finds its window
    widget.apply_settings(FAST.copy(iterations=100_000))
    events = _events(widget)
    assert widget.train()
    control = widget._run.control
    qtbot.waitUntil(lambda: any(e.kind == "step" for e, _ in events), timeout=TIMEOUT_MS)
    viewer.close()
    assert control.abort.is_set() and control.done.is_set()
    assert not _our_threads()
    qtbot.waitUntil(lambda: QThreadPool.globalInstance().activeThreadCount() == 0, timeout=10_000)


def test_scribbles_are_autosaved_and_offered_back(session):
    viewer, widget, qtbot = session
    layer = viewer.layers["scribbles"]
    layer.paint((45, 40, 10), 3, refresh=False)  # a stroke on a new slice, as the brush does
    qtbot.waitUntil(lambda: widget.autosave.last_path is not None, timeout=10_000)
    painted = np.array(layer.data, copy=True)
    viewer.layers.clear()  # napari crashed; the user opens the same image again ...
    assert not widget.restore_frame.isVisibleTo(widget)
    viewer.open_sample("napari-contrastseg", "colin27-deep")
    assert widget.restore_frame.isVisibleTo(widget)  # ... and is offered the lost painting
    assert "painted voxels" in widget.restore_label.text()
    restored = widget.restore_scribbles()
    assert np.array_equal(restored.data, painted)
    assert widget.scribbles_combo.currentText() == restored.name
    assert not widget.restore_frame.isVisibleTo(widget)


def test_empty_viewer_says_what_to_do_and_trains_a_2d_image(make_napari_viewer, qtbot, tmp_path, monkeypatch):
    from napari_contrastseg._napari.widget import ContrastSegWidget

    monkeypatch.setenv("CONTRASTSEG_AUTOSAVE_DIR", str(tmp_path))
    viewer = make_napari_viewer()
    widget = ContrastSegWidget(viewer)
    viewer.window.add_dock_widget(widget)
    assert "Open an image" in widget.status_label.text()
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:64, :80]
    disk = (yy - 30) ** 2 + (xx - 40) ** 2 < 15**2
    viewer.add_image((disk + rng.normal(0, 0.3, disk.shape)).astype(np.float32), name="cells", scale=(0.5, 0.5))
    assert "Click New" in widget.status_label.text()
    scribbles = widget.new_scribbles()
    assert "press Train" in widget.status_label.text()
    assert tuple(scribbles.scale) == (0.5, 0.5)
    scribbles.data[5, 5:20] = 1
    scribbles.data[30, 35:45] = 2
    widget.apply_settings(FAST.copy(iterations=4))
    events = _events(widget)
    assert widget.train()
    _wait_idle(widget, qtbot)
    assert viewer.layers["prediction"].data.shape == (64, 80)
    assert [e.kind for e, _ in events if e.kind in ("preview", "whole_prediction")][-1] == "whole_prediction"
    widget.shutdown()


def test_model_save_load_and_apply_to_another_image(session, tmp_path):
    from napari_contrastseg.core.model import load_model

    viewer, widget, qtbot = session
    assert widget.save_model(tmp_path / "none.safetensors") is None  # no model yet: a message, not a crash
    widget.apply_settings(FAST.copy(iterations=4, preview_seconds=0))
    assert widget.train()
    _wait_idle(widget, qtbot)
    path = widget.save_model(tmp_path / "model")
    assert path.suffix == ".safetensors" and path.is_file()
    cli_model = load_model(path)  # the CLI reads the same file
    assert cli_model.info.class_names == widget.model.info.class_names

    trained = widget.model
    widget.model = None
    assert widget.load_model(path) is not None
    crop = viewer.layers["colin27-deep"].data[:, :, 28:36]
    assert np.array_equal(
        widget.model.predict(crop, probabilities=False).labels, trained.predict(crop, probabilities=False).labels
    )
    viewer.add_image(crop.copy(), name="other")
    assert widget.apply_model("other")
    qtbot.waitUntil(lambda: "other prediction" in viewer.layers and widget._apply is None, timeout=TIMEOUT_MS)
    assert viewer.layers["other prediction"].data.shape == crop.shape
    assert viewer.layers["other uncertainty"].data.shape == crop.shape
