"""The dock's panels in a real viewer: colour layers, the estimated Dice and the painting-gain signal, refusals,
and the panels' independence (each talks to the state and the jobs, never to another panel)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("napari")
from napari_helpers import FAST, needs_display, wait_idle  # noqa: E402

pytestmark = [pytest.mark.gui, needs_display]


def test_an_rgb_layer_trains_and_predicts(make_napari_viewer, qtbot, tmp_path, monkeypatch):
    from napari_contrastseg._napari.widget import ContrastSegWidget

    monkeypatch.setenv("CONTRASTSEG_AUTOSAVE_DIR", str(tmp_path))
    viewer = make_napari_viewer()
    yy, xx = np.mgrid[:64, :80]
    disk = ((yy - 30) ** 2 + (xx - 40) ** 2 < 15**2).astype(np.float32)
    rgb = (np.stack([disk, 0.5 * disk, 1 - disk], -1) * 200 + 20).astype(np.uint8)
    layer = viewer.add_image(rgb, name="photo", rgb=True)
    assert layer.rgb
    widget = ContrastSegWidget(viewer)
    viewer.window.add_dock_widget(widget)
    scribbles = widget.layers.new_scribbles()
    assert scribbles.data.shape == (64, 80)  # the picture's grid, without the colour axis
    scribbles.data[3, 5:30] = 1
    scribbles.data[30, 35:45] = 2
    widget.apply_settings(FAST.copy(iterations=4))
    assert widget.train()
    wait_idle(widget, qtbot)
    assert viewer.layers["prediction"].data.shape == (64, 80)
    assert widget.model.info.in_channels == 3
    widget.shutdown()


def test_estimated_dice_and_the_gain_of_more_paint_are_shown(session):
    viewer, widget, qtbot = session
    widget.apply_settings(FAST.copy(iterations=12, holdout=0.3))
    assert widget.train()
    wait_idle(widget, qtbot)
    assert "Estimated Dice" in widget.training.estimate_label.text()
    assert "only painted slice" not in widget.training.estimate_label.text()  # 3 painted slices: no note
    assert "estimated Dice" in widget.model_panel.info.text()
    first = widget.state.estimates[-1]
    assert first.painted == 3 and "with 3 painted" in widget.guidance.progress_label.text()
    layer = viewer.layers["scribbles"]
    painted = np.flatnonzero(layer.data.any(axis=(0, 1)))
    new = int(next(z for z in range(layer.data.shape[2]) if z not in painted))
    layer.data[:, :, new] = layer.data[:, :, painted[0]]  # the user paints one more slice, then presses Continue
    layer.refresh()
    assert widget.continue_training()
    wait_idle(widget, qtbot)
    assert widget.state.estimates[-1].painted == 4
    assert "the last painting added" in widget.guidance.progress_label.text()


def test_an_estimate_from_one_painted_slice_says_what_it_cannot_see(session):
    viewer, widget, qtbot = session
    layer = viewer.layers["scribbles"]
    painted = np.flatnonzero(layer.data.any(axis=(0, 1)))
    layer.data[:, :, painted[1:]] = 0  # the user painted one slice only
    layer.refresh()
    widget.apply_settings(FAST.copy(iterations=8, holdout=0.3))
    assert widget.train()
    wait_idle(widget, qtbot)
    said = widget.training.estimate_label.text()
    assert said.startswith("Estimated Dice") and "Held out on the only painted slice" in said


def test_saving_never_replaces_a_file_unasked(session, notes, tmp_path):
    viewer, widget, qtbot = session
    widget.apply_settings(FAST.copy(iterations=3))
    assert widget.train()
    wait_idle(widget, qtbot)
    existing = tmp_path / "model.safetensors"
    existing.write_bytes(b"another model")
    assert widget.model_panel.save_model(existing) is None
    assert any("exists already" in m for s, m in notes if s == "error")
    assert existing.read_bytes() == b"another model"
    assert widget.model_panel.save_model(existing, overwrite=True) == existing  # what the save dialog confirms
    assert existing.read_bytes() != b"another model"


def test_a_run_without_any_limit_is_refused_with_a_message(session, notes):
    viewer, widget, qtbot = session
    widget.apply_settings(FAST.copy(iterations=0, time_budget=0))
    assert not widget.train()
    assert any("time budget or a number of iterations" in m for s, m in notes if s == "error")
    assert widget.training.train_button.isEnabled() and not widget.is_running


def test_the_settings_form_is_generated_from_the_settings_fields(session):
    from dataclasses import fields

    from napari_contrastseg._napari.settings import TrainingSettings
    from napari_contrastseg.core.config import TrainConfig

    _, widget, _ = session
    form = widget.training.form
    assert set(form.widgets) == {f.name for f in fields(TrainingSettings)}
    assert type(form["time_budget"]).__module__.startswith("magicgui")
    defaults = TrainingSettings()
    engine = TrainConfig()
    assert defaults.time_budget == engine.time_budget and defaults.holdout == engine.holdout.fraction  # CLI's rule
    assert defaults.to_config().network.filters == engine.network.filters  # the engine's filter bank, or none
    assert defaults.copy(filters=False).to_config().network.filters == ()
    assert defaults.to_config().forest == engine.forest and defaults.copy(forest=True).to_config().forest.enabled
    form.apply(defaults.copy(filters=True))
    assert form.read().to_config().network.filters and form["filters"].label == "Filter bank"
    form.apply(defaults.copy(slice_axis=2, method="semicontrast"))
    assert form.read().slice_axis == 2 and form.read().method == "semicontrast"
    form.apply(defaults)
    assert form.read().slice_axis is None


def test_pretrain_needs_no_paint_and_train_starts_from_it(session):
    viewer, widget, qtbot = session
    widget.apply_settings(FAST.copy(method="semicontrast", iterations=3))
    events = []
    widget.event_applied.connect(lambda e: events.append(e))
    assert widget.training.pretrain()
    wait_idle(widget, qtbot)
    assert widget.state.pretrained is not None and widget.state.pretrained_image == "colin27-deep"
    assert widget.model is None  # a starting point, not a model to apply
    steps = [e for e in events if e.kind == "step"]
    assert steps and all("supervised" not in e.losses for e in steps)
    events.clear()
    assert widget.train()
    assert "from the pre-trained weights" in widget.status_label.text()
    wait_idle(widget, qtbot)
    started = next(e for e in events if e.kind == "started")
    assert started.warm_start.startswith("partial") and widget.model is not None
