"""The "Training" panel: the settings form, Train / Stop / Continue, progress, losses and the estimated Dice.

Train and Continue build a request from the chosen layers (:mod:`..request`) and start a training job; the
panel shows the job's events, follows the viewed slice with the live preview, and puts the finished model (and its
held-out estimate) into the dock state.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
from napari.layers import Image, Labels
from napari.utils.notifications import show_error, show_info
from qtpy.QtWidgets import QFormLayout, QGroupBox, QHBoxLayout, QLabel, QProgressBar, QPushButton

from ...core.errors import ContrastSegError
from ..devices import describe_cpu
from ..jobs import Jobs, Run
from ..layers import current_index, layer_named, make_slider, show_slice, viewer_dim
from ..loss_plot import LossPlot
from ..request import Extras, build_request, names_for, painted_count, pretrain_request
from ..results import PREDICTION, UNCERTAINTY
from ..settings import TrainingSettings
from ..settings_form import SettingsForm
from ..state import DockState, PaintedEstimate, UncertaintyMap
from ..workers.control import RunControl
from ..workers.training import training_events

#: The progress bar counts the budget in this many parts.
BAR_UNITS = 1000


class TrainingPanel(QGroupBox):
    """Settings, the training buttons and what a running training shows."""

    def __init__(self, viewer, state: DockState, jobs: Jobs) -> None:
        super().__init__("Training")
        self.viewer, self.state, self.jobs = viewer, state, jobs
        self.extras = Extras()
        form = QFormLayout(self)
        self.form = SettingsForm()
        form.addRow(self.form)
        buttons = QHBoxLayout()
        self.train_button = QPushButton("Train")
        self.train_button.setToolTip("Train a new model on your scribbles")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop after the current step; the model keeps the best weights it has learned")
        self.continue_button = QPushButton("Continue")
        self.continue_button.setToolTip("Paint more, then continue training from the current weights")
        self.pretrain_button = QPushButton("Pre-train")
        self.pretrain_button.setToolTip(
            "Before or while you paint: semicontrast and action learn the image's features without any paint; "
            "the next Train on this image starts from them"
        )
        for b in (self.train_button, self.stop_button, self.continue_button, self.pretrain_button):
            buttons.addWidget(b)
        form.addRow(buttons)
        self.progress = QProgressBar()
        self.progress.setRange(0, BAR_UNITS)
        self.progress.setValue(0)
        self.estimate_label = QLabel("")
        self.estimate_label.setWordWrap(True)
        self.estimate_label.setToolTip(
            "Dice of the current weights on the share of your painting kept out of training (no ground truth "
            "needed). It tends to be higher than on slices you never painted; it ranks models and runs well."
        )
        self.loss_plot = LossPlot()
        for w in (self.progress, self.estimate_label, self.loss_plot):
            form.addRow(w)
        self.train_button.clicked.connect(self.train)
        self.stop_button.clicked.connect(self.stop)
        self.continue_button.clicked.connect(self.continue_training)
        self.pretrain_button.clicked.connect(self.pretrain)
        jobs.event_applied.connect(self._on_event)
        jobs.ended.connect(self._on_ended)
        state.events.model.connect(self._update_buttons)
        state.events.training.connect(self._update_buttons)
        self._dims = viewer.dims.events.current_step
        self._dims.connect(self._follow_slice)
        self._update_buttons()

    # ------------------------------------------------------------- settings
    def read_settings(self) -> TrainingSettings:
        return self.form.read()

    def apply_settings(self, settings: TrainingSettings) -> None:
        self.form.apply(settings)

    # --------------------------------------------------------------- start
    def train(self) -> bool:
        """Train a new model from the current scribbles (the Train button). False if nothing started."""
        return self._start(warm=False)

    def continue_training(self) -> bool:
        """Continue from the current weights with the scribbles as they are now (the Continue button)."""
        return self._start(warm=True)

    def _start(self, warm: bool) -> bool:
        if self.jobs.closing:
            return False
        if self.jobs.running("train") is not None:
            show_info("Training is already running: press Stop first, or wait until it ends.")
            return False
        image, labels = (
            layer_named(self.viewer, self.state.image, Image),
            layer_named(self.viewer, self.state.scribbles, Labels),
        )
        if labels is not None:
            names = names_for(np.asarray(labels.data), self.state.class_names)
            if names != self.state.class_names:
                top = len(names)
                self.state.class_names = names
                show_info(f"The scribbles use label {top}: added class names up to 'class {top}' (rename them).")
        if warm and self.state.model is None:
            show_info("There is no model yet, so training starts from scratch.")
        model = self.state.model if warm else self._pretrained_for(image)
        try:
            request = build_request(image, labels, self.state.class_names, self.read_settings(), model, self.extras)
        except ContrastSegError as err:
            show_error(str(err))
            return False
        axis = request.preview.axis
        if axis is not None:
            self.state.slice_axis = axis
            if make_slider(self.viewer, viewer_dim(self.viewer, image, axis)):
                painted = np.flatnonzero((request.data.labels > 0).any(axis=tuple(a for a in range(3) if a != axis)))
                show_slice(self.viewer, image, axis, int(painted[len(painted) // 2]))
            request.preview.index = current_index(self.viewer, image, axis)
        self.jobs.results.ensure(image, request.data.labels.shape, self.state.class_names, labels, reset=not warm)
        offset = int(self.loss_plot.last_iteration) if model is not None else 0
        if offset:
            self.loss_plot.mark(offset)
        else:
            self.loss_plot.clear()
        control = RunControl()
        run = Run("train", control, training_events(request, control), image.name, PREDICTION, UNCERTAINTY,
                  list(self.state.class_names), labels.name, request, offset)  # fmt: skip
        self.progress.setFormat("%p%")
        self.progress.setValue(0)
        self.estimate_label.setText("")
        said = "continuing from the current weights" if warm else "from the pre-trained weights"
        self.state.status = "Starting…" + (f" ({said})" if model is not None else "")
        self.jobs.start(run)
        self.state.training = True
        return True

    def _pretrained_for(self, image):
        """The pre-trained model of ``image``, if Pre-train ran on it."""
        ok = image is not None and self.state.pretrained is not None and self.state.pretrained_image == image.name
        return self.state.pretrained if ok else None

    def pretrain(self) -> bool:
        """Label-free pre-training of the chosen image (the Pre-train button); False if nothing started."""
        if self.jobs.closing or self.jobs.running("train") is not None:
            show_info("Training is already running: press Stop first, or wait until it ends.")
            return False
        image = layer_named(self.viewer, self.state.image, Image)
        axis = None
        if image is not None and image.ndim == 3:  # slices along the axis the viewer slides through
            axis = int(next(d for d in self.viewer.dims.order if d not in self.viewer.dims.displayed))
            axis -= self.viewer.dims.ndim - image.ndim
        try:
            request = pretrain_request(image, axis, self.read_settings(), self.extras)
        except ContrastSegError as err:
            show_error(str(err))
            return False
        control = RunControl()
        run = Run("train", control, training_events(request, control), image.name, PREDICTION, UNCERTAINTY,
                  list(self.state.class_names), "", request)  # fmt: skip
        self.progress.setFormat("%p%")
        self.progress.setValue(0)
        self.state.status = "Pre-training on the image (no paint needed)…"
        self.jobs.start(run)
        self.state.training = True
        return True

    def stop(self) -> None:
        """Stop after the current step (the best weights are kept, the whole image still predicted); pressed
        again while the whole image is predicted, skip that prediction."""
        said = self.jobs.stop("train")
        if said:
            self.state.status = said
        self._update_buttons()

    # --------------------------------------------------------------- events
    def _on_event(self, run: Run, event) -> None:
        if run.kind != "train":
            return
        handler = getattr(self, f"_on_{event.kind}", None)
        if handler is not None:
            handler(run, event)

    def _on_started(self, run: Run, event) -> None:
        device = event.device
        if device.startswith("cpu"):
            device = describe_cpu(run.request.cpu_threads)
        elif device.startswith("cuda"):
            device = f"GPU {device}"
        self.form.device_label.value = f"Training on: {device}"
        where = f"2D slices along axis {event.slice_axis}" if event.slice_axis is not None else event.dims
        warm = {"none": "", "full": "; continuing from the current weights"}.get(
            event.warm_start, f"; warm start: {event.warm_start}"
        )
        held = f"; {event.held_out_voxels} painted voxels held out to estimate Dice" if event.held_out_voxels else ""
        self.state.status = (
            f"{event.method}: {where}, {event.n_parameters / 1e6:.2f} M parameters, patches {event.patch_size}"
            f"{warm}{held}"
        )

    def _on_step(self, run: Run, event) -> None:
        self.progress.setUpdatesEnabled(False)  # one window redraw per event, not two
        self.progress.setValue(round(event.progress * BAR_UNITS))
        self.progress.setUpdatesEnabled(True)
        speed, done = event.iterations_per_second, event.progress
        left = event.seconds * (1 - done) / done if done > 0 else math.nan
        self.state.status = (
            f"Iteration {event.iteration} · {speed:.1f} it/s · at most {left:.0f} s left · "
            f"loss {event.losses.get('total', math.nan):.3f}"
        )
        self.loss_plot.add(run.offset + event.iteration, event.losses)

    def _on_estimate(self, run: Run, event) -> None:
        if math.isfinite(event.mean):
            said = f"Estimated Dice {event.mean:.2f} (held-out painting, iteration {event.iteration})"
            self.estimate_label.setText(with_note(said, event.note))

    def _on_finished(self, run: Run, event) -> None:
        if run.request.config.pretrain:
            self.state.pretrained_image, self.state.pretrained = run.image_name, event.model
            self.state.status = (
                f"Pre-trained for {event.seconds:.0f} s ({event.iteration} steps): the next Train on "
                f"'{run.image_name}' starts from these weights."
            )
            return
        self.state.model_source = "trained here"
        self.state.model = event.model
        if event.model.info.slice_axis is not None:
            self.state.slice_axis = event.model.info.slice_axis
        estimate = event.estimate
        self.state.estimate = estimate
        if estimate is not None and math.isfinite(estimate.mean):
            painted = painted_count(run.request.data.labels, event.model.info.slice_axis)
            self.state.estimates = (*self.state.estimates, PaintedEstimate(painted, estimate.mean))
            said = f"Estimated Dice {estimate.mean:.2f} ({event.stop_reason})"
            self.estimate_label.setText(with_note(said, estimate.note))
        if event.cancelled:
            show_info(
                f"Stopped after {event.iteration} iterations. The model keeps the best weights it learned: "
                "Continue, Save it, or paint more."
            )

    def _on_predicting(self, run: Run, event) -> None:
        self.progress.setRange(0, 0)  # busy
        self._update_buttons()
        self.state.status = f"Predicting the whole image ({' x '.join(map(str, event.shape))})…"

    def _on_whole_prediction(self, run: Run, event) -> None:
        self._done_bar()
        if not event.store:  # in memory: the map "Next slice to paint" scores slices by
            self.state.uncertainty = UncertaintyMap(
                run.image_name, np.asarray(event.uncertainty), np.asarray(event.labels)
            )
        hint = " Press 'Next slice to paint' to see where more paint helps most." if event.labels.ndim == 3 else ""
        if event.store:
            hint += f" The result is stored in {event.store} until napari closes."
        self.state.status = f"Done: '{run.prediction_name}' predicted in {event.seconds:.1f} s.{hint}"

    def _on_failed(self, run: Run, event) -> None:
        self.state.status = f"Failed: {event.message}"

    def _on_ended(self, run: Run) -> None:
        if run.kind != "train":
            return
        if self.progress.maximum() == 0:
            self.progress.setRange(0, BAR_UNITS)
            self.progress.setValue(0)
        if run.control.skip_prediction.is_set():
            self.state.status = "Whole-image prediction skipped; the model is kept (Save it, or Apply it later)."
        self.state.training = False

    def _done_bar(self) -> None:
        self.progress.setRange(0, BAR_UNITS)
        self.progress.setValue(BAR_UNITS)
        self.progress.setFormat("done")

    def _follow_slice(self, *_args) -> None:
        """The live preview follows the slice the user is looking at."""
        run = self.jobs.running("train")
        if run is None or run.request.preview is None or self.state.slice_axis is None:
            return
        image = layer_named(self.viewer, run.image_name, Image)
        if image is not None and image.ndim == 3:
            run.request.preview.index = current_index(self.viewer, image, self.state.slice_axis)

    def _update_buttons(self, *_args) -> None:
        run = self.jobs.running("train")
        self.train_button.setEnabled(run is None)
        self.pretrain_button.setEnabled(run is None)
        self.continue_button.setEnabled(run is None and self.state.model is not None)
        flag = None if run is None else run.control.skip_prediction if run.predicting else run.control.stop
        self.stop_button.setEnabled(flag is not None and not flag.is_set())
        self.stop_button.setText("Skip" if run is not None and run.predicting else "Stop")

    def release(self) -> None:
        with contextlib.suppress(Exception):
            self._dims.disconnect(self._follow_slice)


def with_note(said: str, note: str) -> str:
    """An estimate's text and, on a line of its own, its note (what it cannot see), if it has one."""
    return f"{said}\n{note[:1].upper()}{note[1:]}." if note else said
