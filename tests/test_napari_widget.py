"""The dock widget in a real napari viewer (pytest-qt + ``make_napari_viewer``; run under ``xvfb-run`` on Linux)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from napari_helpers import FAST, TIMEOUT_MS, needs_display, wait_idle  # noqa: E402

from napari_contrastseg.core.config import TrainConfig  # noqa: E402

pytestmark = [pytest.mark.gui, needs_display]


def _events(widget) -> list:
    seen: list = []
    widget.event_applied.connect(lambda e: seen.append((e, threading.current_thread() is threading.main_thread())))
    return seen


def _our_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("contrastseg-")]


def test_first_launch_shows_layers_classes_and_device(session):
    viewer, widget, _ = session
    assert widget.layers.image_combo.currentText() == "colin27-deep"
    assert widget.layers.scribbles_combo.currentText() == "scribbles"
    names = widget.state.class_names
    assert names[0] == "background" and len(names) == 13  # from the sample's metadata
    assert "CPU" in widget.training.form.device_label.value or "GPU" in widget.training.form.device_label.value
    assert widget.training.train_button.isEnabled() and not widget.training.stop_button.isEnabled()
    assert not widget.training.continue_button.isEnabled()
    assert not widget.training.form.advanced.isExpanded()
    assert not widget.layers.restore_frame.isVisible()
    assert widget.training.form["method"].value == "supervised"


def test_normalisation_choice_reaches_the_engine_config(session):
    _, widget, _ = session
    widget.apply_settings(FAST.copy(norm="batch"))
    assert widget.training.form["norm"].value == "batch"
    assert widget.read_settings().to_config().network.norm == "batch"
    widget.apply_settings(FAST)
    assert widget.read_settings().to_config().network.norm == "group" == TrainConfig().network.norm


def test_train_previews_then_predicts_whole_image_without_touching_scribbles(session):
    viewer, widget, qtbot = session
    scribbles = np.array(viewer.layers["scribbles"].data, copy=True)
    events = _events(widget)
    assert widget.train()
    wait_idle(widget, qtbot)
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
    assert widget.model is not None and widget.training.continue_button.isEnabled()
    assert widget.jobs.timings["first_preview"] - widget.jobs.timings["train_pressed"] < 30

    # Next slice to paint: an unpainted slice along the painted axis (2), the viewer moves there
    painted = set(np.flatnonzero((scribbles > 0).any(axis=(0, 1))))
    index = widget.guidance.next_slice()
    assert index is not None and index not in painted
    from napari_contrastseg.core.suggest import suggest_slices

    assert index == suggest_slices(widget.model, image.data, scribbles, device="cpu")[0].index  # as the CLI says
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
    wait_idle(widget, qtbot)
    assert any(e.kind == "preview" and e.index == 7 and e.axis == 2 for e, _ in events)


def test_stop_keeps_a_usable_model_and_continue_warm_starts(session, notes):
    viewer, widget, qtbot = session
    widget.apply_settings(FAST.copy(iterations=100_000, time_budget=0))
    events = _events(widget)
    assert widget.train()
    assert not widget.train()  # pressing Train twice does not start a second run
    assert any("already running" in m for _, m in notes)
    qtbot.waitUntil(lambda: any(e.kind == "step" for e, _ in events), timeout=TIMEOUT_MS)
    assert widget.training.stop_button.isEnabled() and not widget.training.train_button.isEnabled()
    widget.stop()
    wait_idle(widget, qtbot)
    assert sum(e.kind == "started" for e, _ in events) == 1
    finished = [e for e, _ in events if e.kind == "finished"][0]
    assert finished.cancelled and finished.iteration < 100_000
    assert widget.model.info.training["cancelled"]
    assert any("Stopped after" in m for _, m in notes)
    assert viewer.layers["prediction"].data.min() >= 1  # the whole image was still predicted
    predicted = widget.model.predict(viewer.layers["colin27-deep"].data[:, :, 30:34], probabilities=False)
    assert predicted.labels.shape == (90, 78, 4)

    widget.apply_settings(FAST.copy(iterations=4, norm="batch"))
    events.clear()
    assert widget.continue_training()
    wait_idle(widget, qtbot)
    started = [e for e, _ in events if e.kind == "started"][0]
    assert started.warm_start == "full"
    assert widget.model.info.network.norm == "group", "Continue keeps the current model's normalisation layer"


def test_errors_become_notifications(session, notes):
    viewer, widget, qtbot = session
    image = viewer.layers["colin27-deep"]

    empty = viewer.add_labels(np.zeros(image.data.shape, np.uint8), name="empty")
    widget.layers.select(scribbles="empty")
    assert not widget.train()
    one = viewer.add_labels(np.zeros(image.data.shape, np.uint8), name="one class")
    one.data[40, 30:40, 20] = 1
    widget.layers.select(scribbles="one class")
    assert not widget.train()
    viewer.add_labels(np.zeros((10, 10, 10), np.uint8), name="small")
    widget.layers.select(scribbles="small")
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
    wait_idle(widget, qtbot)
    assert any(s == "error" and "Out of memory" in m for s, m in notes)
    assert widget.training.train_button.isEnabled()


def test_no_scribbles_layer_and_new_scribbles(session, notes):
    viewer, widget, qtbot = session
    viewer.layers.remove("scribbles")
    assert widget.layers.scribbles_combo.currentText() == ""
    assert not widget.train()
    assert any("click New" in m for s, m in notes if s == "error")
    layer = widget.layers.new_scribbles()
    assert layer.data.shape == viewer.layers["colin27-deep"].data.shape and not layer.data.any()
    assert widget.layers.scribbles_combo.currentText() == layer.name and layer.mode == "paint"


def test_closing_the_widget_during_training_stops_it(session):
    from qtpy.QtCore import QThreadPool

    viewer, widget, qtbot = session
    widget.apply_settings(FAST.copy(iterations=100_000, time_budget=0))
    events = _events(widget)
    assert widget.train()
    control = widget.jobs.running("train").control
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
    widget.apply_settings(FAST.copy(iterations=100_000, time_budget=0))
    events = _events(widget)
    assert widget.train()
    control = widget.jobs.running("train").control
    qtbot.waitUntil(lambda: any(e.kind == "step" for e, _ in events), timeout=TIMEOUT_MS)
    viewer.close()
    assert control.abort.is_set() and control.done.is_set()
    assert not _our_threads()
    qtbot.waitUntil(lambda: QThreadPool.globalInstance().activeThreadCount() == 0, timeout=10_000)


def test_scribbles_are_autosaved_and_offered_back(session):
    viewer, widget, qtbot = session
    layer = viewer.layers["scribbles"]
    layer.paint((45, 40, 10), 3, refresh=False)  # a stroke on a new slice, as the brush does
    qtbot.waitUntil(lambda: widget.layers.autosave.last_path is not None, timeout=10_000)
    painted = np.array(layer.data, copy=True)
    viewer.layers.clear()  # napari crashed; the user opens the same image again ...
    assert not widget.layers.restore_frame.isVisibleTo(widget)
    viewer.open_sample("napari-contrastseg", "colin27-deep")
    assert widget.layers.restore_frame.isVisibleTo(widget)  # ... and is offered the lost painting
    assert "painted voxels" in widget.layers.restore_label.text()
    restored = widget.layers.restore_scribbles()
    assert np.array_equal(restored.data, painted)
    assert widget.layers.scribbles_combo.currentText() == restored.name
    assert not widget.layers.restore_frame.isVisibleTo(widget)


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
    scribbles = widget.layers.new_scribbles()
    assert "press Train" in widget.status_label.text()
    assert tuple(scribbles.scale) == (0.5, 0.5)
    scribbles.data[5, 5:20] = 1
    scribbles.data[30, 35:45] = 2
    widget.apply_settings(FAST.copy(iterations=4))
    events = _events(widget)
    assert widget.train()
    wait_idle(widget, qtbot)
    assert viewer.layers["prediction"].data.shape == (64, 80)
    assert [e.kind for e, _ in events if e.kind in ("preview", "whole_prediction")][-1] == "whole_prediction"
    widget.shutdown()


def test_model_save_load_and_apply_to_another_image(session, tmp_path):
    from napari_contrastseg.core.model import load_model

    viewer, widget, qtbot = session
    assert widget.model_panel.save_model(tmp_path / "none.safetensors") is None  # no model yet: a message, not a crash
    widget.apply_settings(FAST.copy(iterations=4, preview_seconds=0))
    assert widget.train()
    wait_idle(widget, qtbot)
    path = widget.model_panel.save_model(tmp_path / "model")
    assert path.suffix == ".safetensors" and path.is_file()
    cli_model = load_model(path)  # the CLI reads the same file
    assert cli_model.info.class_names == widget.model.info.class_names

    trained = widget.model
    widget.state.model = None
    assert widget.model_panel.load_model(path) is not None
    crop = viewer.layers["colin27-deep"].data[:, :, 28:36]
    assert np.array_equal(
        widget.model.predict(crop, probabilities=False).labels, trained.predict(crop, probabilities=False).labels
    )
    viewer.add_image(crop.copy(), name="other")
    assert widget.apply_model("other")
    qtbot.waitUntil(lambda: "other prediction" in viewer.layers and not widget.is_applying, timeout=TIMEOUT_MS)
    assert viewer.layers["other prediction"].data.shape == crop.shape
    assert viewer.layers["other uncertainty"].data.shape == crop.shape
