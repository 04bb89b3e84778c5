"""The dock widget: pick layers, name classes, train / stop / continue with a live preview, save and apply models.

All layer changes happen here, on the main thread, in handlers of the events the workers yield. The scribbles
layer is only ever read (copied when Train is pressed); results go to separate ``prediction`` and ``uncertainty``
layers.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from napari.layers import Image, Labels
from napari.qt.threading import create_worker
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import Qt, QThreadPool, Signal
from qtpy.QtWidgets import (
    QApplication,
    QComboBox,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)
from superqt import QCollapsible

from ..core.data import SegmentationData, painted_slice_axis
from ..core.errors import ContrastSegError
from ..core.trainer import PreviewRequest
from . import autosave as autosave_io
from .autosave import ScribbleAutosave
from .class_list import ClassList
from .closing import CloseWatcher
from .devices import describe_cpu
from .layers import (
    OUTPUT_KEY,
    current_index,
    geometry_kwargs,
    image_array,
    make_slider,
    show_slice,
    spatial_shape,
)
from .layers import viewer_dim as _viewer_dim
from .loss_plot import LossPlot
from .model_panel import ModelPanel
from .next_slice import suggest_slice
from .results import PREDICTION, UNCERTAINTY, ResultLayers, is_output
from .settings import TrainingSettings
from .settings_form import SettingsForm
from .workers.background import DEFAULT_NICE
from .workers.control import RunControl
from .workers.prediction import apply_model_events
from .workers.training import TrainingRequest, training_events


@dataclass
class _Run:
    """One worker (training, or applying a model) and where its results go."""

    kind: str  # "train" or "apply"
    worker: Any
    control: RunControl
    generator: Any
    image_name: str
    prediction_name: str
    uncertainty_name: str
    request: TrainingRequest | None = None
    offset: int = 0  # iterations done before this run (Continue), for the loss plot
    predicting: bool = False  # training is over, the whole image is being predicted
    slots: list = field(default_factory=list)


def contrastseg_worker(generator):
    """The worker's generator (named for napari's task list): forwards ``generator``, which the widget keeps so it
    can close it on shutdown."""
    yield from generator


def _abort_all(controls: list[RunControl]) -> None:
    """Last resort when the widget's C++ object is destroyed: tell running workers to end."""
    for control in controls:
        control.abort.set()


class ContrastSegWidget(QWidget):
    """Scribble segmentation dock widget (Plugins > ContrastSeg > Scribble segmentation)."""

    #: emitted on the main thread after an event from a worker has been applied to the layers (tests, benchmarks)
    event_applied = Signal(object)
    #: emitted when a worker has ended and the buttons are usable again
    run_ended = Signal(str)

    def __init__(self, napari_viewer, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer = napari_viewer
        self.model = None
        self.slice_axis: int | None = None
        self.uncertainty_volume: np.ndarray | None = None
        self._uncertainty_image: str | None = None
        self.timings: dict[str, float] = {}
        #: intermediate models: every ``checkpoint_every`` steps to ``checkpoint_dir`` (off unless both are set)
        self.checkpoint_dir: Path | None = None
        self.checkpoint_every = 0
        #: how much lower the work threads' priority is (Linux; 0 = same as the GUI), see workers/background.py
        self.worker_nice = DEFAULT_NICE
        self.preview_log: list[tuple[float, int, int | None]] = []
        self._run: _Run | None = None
        self._apply: _Run | None = None
        self._controls: list[RunControl] = []
        self._closing = False
        self._connected: list[tuple[Any, Any]] = []
        self._restore_offer: autosave_io.SavedScribbles | None = None
        self._image_key: tuple | None = None
        self.autosave = ScribbleAutosave(self)
        self.results = ResultLayers(napari_viewer)
        self.close_watcher = CloseWatcher(self, self.shutdown)
        self._build_ui()
        self._connect_viewer()
        self.refresh_layers()
        self.destroyed.connect(partial(_abort_all, self._controls))
        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)

    # ------------------------------------------------------------------ UI
    def _build_ui(self) -> None:
        body = QWidget()
        col = QVBoxLayout(body)
        col.setContentsMargins(6, 6, 6, 6)

        layers = QGroupBox("Layers")
        form = QFormLayout(layers)
        self.image_combo = QComboBox()
        self.image_combo.setToolTip("The image to segment")
        self.scribbles_combo = QComboBox()
        self.scribbles_combo.setToolTip("Your painting: 1 = background, 2, 3, ... = the classes below. Never modified.")
        self.new_scribbles_button = QPushButton("New")
        self.new_scribbles_button.setToolTip("Create an empty scribbles layer on the image's grid and start painting")
        row = QHBoxLayout()
        row.addWidget(self.scribbles_combo, 1)
        row.addWidget(self.new_scribbles_button)
        form.addRow("Image", self.image_combo)
        form.addRow("Scribbles", row)
        self.restore_frame = QFrame()
        self.restore_frame.setFrameShape(QFrame.Shape.StyledPanel)
        restore_row = QHBoxLayout(self.restore_frame)
        self.restore_label = QLabel()
        self.restore_label.setWordWrap(True)
        self.restore_button = QPushButton("Restore")
        self.restore_button.setToolTip("Open the autosaved scribbles as a new labels layer")
        self.discard_button = QPushButton("Discard")
        restore_row.addWidget(self.restore_label, 1)
        restore_row.addWidget(self.restore_button)
        restore_row.addWidget(self.discard_button)
        self.restore_frame.setVisible(False)
        form.addRow(self.restore_frame)
        col.addWidget(layers)

        classes = QGroupBox("Classes (label 1, 2, 3, ...; background first)")
        QVBoxLayout(classes).addWidget(class_list := ClassList())
        self.class_list = class_list
        col.addWidget(classes)

        training = QGroupBox("Training")
        tform = QFormLayout(training)
        self.controls = SettingsForm()
        tform.addRow(self.controls)
        self.device_label = self.controls.device_label
        self.advanced = self.controls.advanced

        buttons = QHBoxLayout()
        self.train_button = QPushButton("Train")
        self.train_button.setToolTip("Train a new model on your scribbles")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop after the current step; the model keeps what it has learned")
        self.continue_button = QPushButton("Continue")
        self.continue_button.setToolTip("Paint more, then continue training from the current weights")
        for b in (self.train_button, self.stop_button, self.continue_button):
            buttons.addWidget(b)
        tform.addRow(buttons)
        self.progress = QProgressBar()
        self.progress.setFormat("%v / %m iterations")
        self.progress.setValue(0)
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        self.loss_plot = LossPlot()
        tform.addRow(self.progress)
        tform.addRow(self.status_label)
        tform.addRow(self.loss_plot)
        col.addWidget(training)

        paint = QGroupBox("Where to paint next")
        pcol = QVBoxLayout(paint)
        self.next_button = QPushButton("Next slice to paint")
        self.next_button.setToolTip("Go to the unpainted slice where the model is least certain")
        self.next_label = QLabel("")
        self.next_label.setWordWrap(True)
        pcol.addWidget(self.next_button)
        pcol.addWidget(self.next_label)
        col.addWidget(paint)

        self.model_section = QCollapsible("Model: save, load, apply to another image")
        self.model_panel = ModelPanel()
        self.model_section.addWidget(self.model_panel)
        self.model_section.expand(animate=False)
        col.addWidget(self.model_section)
        col.addStretch(1)

        for combo in body.findChildren(QComboBox):  # long layer names or device names must not widen the dock
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(8)
        scroll = QScrollArea()
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(body)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)
        self.setMinimumWidth(360)

        self.image_combo.currentIndexChanged.connect(self._on_image_changed)
        self.scribbles_combo.currentIndexChanged.connect(self._on_scribbles_changed)
        self.new_scribbles_button.clicked.connect(self.new_scribbles)
        self.restore_button.clicked.connect(self.restore_scribbles)
        self.discard_button.clicked.connect(self.discard_autosave)
        self.class_list.class_chosen.connect(self._on_class_chosen)
        self.class_list.changed.connect(lambda: self.autosave.set_class_names(self.class_list.names()))
        self.train_button.clicked.connect(self.train)
        self.stop_button.clicked.connect(self.stop)
        self.continue_button.clicked.connect(self.continue_training)
        self.next_button.clicked.connect(self.next_slice)
        self.model_panel.save_requested.connect(self.save_model)
        self.model_panel.load_requested.connect(self.load_model)
        self.model_panel.apply_requested.connect(self.apply_model)
        self._update_buttons()

    # ------------------------------------------------------------- settings
    def read_settings(self) -> TrainingSettings:
        """The settings the controls show."""
        return self.controls.read()

    def apply_settings(self, settings: TrainingSettings) -> None:
        """Show ``settings`` in the controls."""
        self.controls.apply(settings)

    # ---------------------------------------------------------------- layers
    def _connect_viewer(self) -> None:
        events = self.viewer.layers.events
        for emitter, slot in (
            (events.inserted, self.refresh_layers),
            (events.removed, self.refresh_layers),
            (events.reordered, self.refresh_layers),
            (self.viewer.dims.events.current_step, self._on_dims_step),
        ):
            emitter.connect(slot)
            self._connected.append((emitter, slot))

    def _disconnect_viewer(self) -> None:
        for emitter, slot in self._connected:
            with contextlib.suppress(Exception):  # the viewer may already be gone
                emitter.disconnect(slot)
        self._connected.clear()
        for layer in list(self.viewer.layers):
            with contextlib.suppress(Exception):
                layer.events.name.disconnect(self.refresh_layers)

    def refresh_layers(self, *_args) -> None:
        """Fill the layer menus from the viewer, keeping the current choices where they still exist."""
        if self._closing:
            return
        images = [layer for layer in self.viewer.layers if isinstance(layer, Image)]
        labels = [
            layer
            for layer in self.viewer.layers
            if isinstance(layer, Labels) and not (layer.metadata or {}).get(OUTPUT_KEY)
        ]
        for layer in self.viewer.layers:
            layer.events.name.connect(self.refresh_layers)
        image_choice = self._fill_combo(self.image_combo, [lay.name for lay in images if not is_output(lay)])
        target = self.model_panel.target.currentText()
        self._fill_combo(self.model_panel.target, [lay.name for lay in images if not is_output(lay)], target or None)
        self._fill_combo(self.scribbles_combo, [lay.name for lay in labels], self._scribbles_for(image_choice, labels))
        self._on_scribbles_changed()
        image = self.image_layer()
        key = (image.name, spatial_shape(image)) if image is not None else None
        if key != self._image_key:  # another image: is there autosaved painting to offer back?
            self._image_key = key
            self._check_autosave()
        self._update_buttons()
        self._show_hint()

    def _show_hint(self) -> None:
        """While nothing has been trained, the status line says what to do next."""
        if self._run is not None or self.model is not None:
            return
        if self.image_layer() is None:
            text = "Open an image (File > Open), or try File > Open Sample > ContrastSeg."
        elif self.scribbles_layer() is None:
            text = "Click New to make a scribbles layer; paint background (1) and each class (2, 3, ...); then Train."
        else:
            text = "Ready: press Train. Keep painting while it trains; Continue uses the new strokes."
        self.status_label.setText(text)

    @staticmethod
    def _fill_combo(combo: QComboBox, names: list[str], prefer: str | None = None) -> str | None:
        """Refill ``combo``; keep its choice if still there, else ``prefer``, else the first name."""
        current = combo.currentText()
        choice = current if current in names else prefer if prefer in names else (names[0] if names else "")
        combo.blockSignals(True)
        combo.clear()
        combo.addItems(names)
        combo.setCurrentText(choice)
        combo.blockSignals(False)
        return combo.currentText() or None

    def _scribbles_for(self, image_name: str | None, labels: list) -> str | None:
        """The labels layer that belongs to ``image_name``: current choice, else one made for it, else 'scribbles'."""
        current = self.scribbles_combo.currentText()
        if current in [lay.name for lay in labels]:
            return current
        for layer in labels:
            if image_name and (layer.metadata or {}).get("image") == image_name:
                return layer.name
        for layer in labels:
            if layer.name.startswith("scribbles"):
                return layer.name
        return labels[0].name if labels else None

    def _layer(self, name: str | None, kind=None):
        if not name or name not in self.viewer.layers:
            return None
        layer = self.viewer.layers[name]
        return layer if kind is None or isinstance(layer, kind) else None

    def image_layer(self):
        return self._layer(self.image_combo.currentText(), Image)

    def scribbles_layer(self):
        return self._layer(self.scribbles_combo.currentText(), Labels)

    def select_layers(self, image: str | None = None, scribbles: str | None = None) -> None:
        """Choose layers by name (as if picked in the menus)."""
        if image is not None:
            self.image_combo.setCurrentText(image)
        if scribbles is not None:
            self.scribbles_combo.setCurrentText(scribbles)
        self._on_scribbles_changed()

    def _on_image_changed(self, *_args) -> None:
        if self._closing:
            return
        self._on_scribbles_changed()
        image = self.image_layer()
        self._image_key = (image.name, spatial_shape(image)) if image is not None else None
        self._check_autosave()
        self._show_hint()

    def _on_scribbles_changed(self, *_args) -> None:
        if self._closing:
            return
        layer = self.scribbles_layer()
        image = self.image_layer()
        names = list((layer.metadata or {}).get("class_names") or []) if layer is not None else []
        if names and names != self.class_list.names() and self.model is None:
            self.class_list.set_names(names)
        self.class_list.set_color_source(getattr(layer, "get_color", None))
        self.autosave.watch(layer, image.name if image is not None else "", self.class_list.names())

    def _on_class_chosen(self, value: int) -> None:
        layer = self.scribbles_layer()
        if layer is not None:
            layer.selected_label = value

    def new_scribbles(self) -> Labels | None:
        """Add an empty labels layer on the image's grid, select it for painting, and return it."""
        image = self.image_layer()
        if image is None:
            show_error("Open an image first (File > Open, or File > Open Sample > ContrastSeg), then click New.")
            return None
        shape = spatial_shape(image)
        geometry = geometry_kwargs(image, len(shape))
        names = self.class_list.names()
        geometry["metadata"].update({"image": image.name, "class_names": names})
        name = "scribbles" if "scribbles" not in self.viewer.layers else f"scribbles ({image.name})"
        layer = self.viewer.add_labels(np.zeros(shape, np.uint8), name=name, opacity=0.8, **geometry)
        layer.brush_size = max(3, min(shape[-2:]) // 25)
        layer.selected_label = 1
        layer.mode = "paint"
        self.viewer.layers.selection.active = layer
        self.select_layers(scribbles=layer.name)
        show_info(
            f"Paint background with label 1 and each class with its own label (1 = {names[0]}, 2 = {names[1]}, ...). "
            "A few strokes on two or three slices are enough; then press Train."
        )
        return layer

    # -------------------------------------------------------------- autosave
    def _check_autosave(self) -> None:
        image = self.image_layer()
        offer = None
        if image is not None:
            saved = autosave_io.find_saved(image.name, spatial_shape(image))
            layer = self.scribbles_layer()
            current = np.asarray(layer.data) if layer is not None else None
            if saved is not None and saved.painted > 0:
                same = (
                    current is not None and current.shape == saved.shape and autosave_io.same_painting(saved, current)
                )
                offer = None if same else saved
        self._restore_offer = offer
        if offer is not None:
            self.restore_label.setText(
                f"Autosaved scribbles for '{offer.image_name}' from {offer.age_in_words()} "
                f"({offer.painted} painted voxels)."
            )
        self.restore_frame.setVisible(offer is not None)

    def restore_scribbles(self) -> Labels | None:
        """Open the autosaved scribbles of the current image as a new labels layer (never over an existing one)."""
        offer, image = self._restore_offer, self.image_layer()
        if offer is None or image is None:
            return None
        data = autosave_io.load_scribbles(offer)
        geometry = geometry_kwargs(image, data.ndim)
        geometry["metadata"].update({"image": image.name, "class_names": offer.class_names})
        layer = self.viewer.add_labels(data, name=f"{offer.labels_name} (restored)", opacity=0.8, **geometry)
        if offer.class_names:
            self.class_list.set_names(offer.class_names)
        self.select_layers(scribbles=layer.name)
        self.restore_frame.setVisible(False)
        self._restore_offer = None
        show_info(f"Restored {offer.painted} painted voxels into the layer '{layer.name}'.")
        return layer

    def discard_autosave(self) -> None:
        if self._restore_offer is not None:
            self._restore_offer.path.unlink(missing_ok=True)
        self._restore_offer = None
        self.restore_frame.setVisible(False)

    # ---------------------------------------------------------------- train
    def train(self) -> bool:
        """Train a new model from the current scribbles (the Train button). False if nothing started."""
        return self._start(warm=False)

    def continue_training(self) -> bool:
        """Continue from the current weights with the scribbles as they are now (the Continue button)."""
        return self._start(warm=True)

    @property
    def is_running(self) -> bool:
        return self._run is not None

    @property
    def is_applying(self) -> bool:
        return self._apply is not None

    def _start(self, warm: bool) -> bool:
        if self._closing:
            return False
        if self._run is not None:
            show_info("Training is already running: press Stop first, or wait until it ends.")
            return False
        image_layer, labels_layer = self.image_layer(), self.scribbles_layer()
        if image_layer is None:
            show_error("Choose the image to segment in the Image menu (or open one: File > Open Sample > ContrastSeg).")
            return False
        if labels_layer is None:
            show_error(
                "There is no scribbles layer yet: click New next to Scribbles, paint a few strokes of each class "
                "(background included), then press Train."
            )
            return False
        try:
            image, channel_axis = image_array(image_layer)
        except Exception as err:  # noqa: BLE001 - e.g. a remote or lazy array that cannot be read
            show_error(f"The image layer '{image_layer.name}' cannot be read into memory: {err}")
            return False
        shape = spatial_shape(image_layer)
        labels = np.array(labels_layer.data, copy=True)  # a snapshot: the scribbles layer is never written
        if labels.shape != shape:
            show_error(
                f"The scribbles layer '{labels_layer.name}' has shape {labels.shape} but the image "
                f"'{image_layer.name}' has shape {shape}. Choose the scribbles painted on this image, or click New."
            )
            return False
        names = self._names_for(labels)
        spacing = tuple(float(s) for s in image_layer.scale)[-len(shape) :]
        data = SegmentationData(image, labels, names, spacing, channel_axis)
        try:
            data.validate()
        except ContrastSegError as err:
            show_error(str(err))
            return False
        settings = self.read_settings()
        config = settings.to_config()
        initial = None
        if warm and self.model is None:
            show_info("There is no model yet, so training starts from scratch.")
        elif warm:
            initial = self.model
            info = initial.info
            config.network = info.network
            config.normalization = info.normalization
            config.dims = "3d" if info.spatial_dims == 3 else "2d"
            if info.slice_axis is not None and labels.ndim == 3:
                config.slice_axis = info.slice_axis
        self.autosave.save_now()  # what is trained on is on disk before anything else happens
        axis = self._expected_slice_axis(labels, config)
        preview = PreviewRequest()
        if axis is not None:
            self.slice_axis = axis
            if make_slider(self.viewer, _viewer_dim(self.viewer, image_layer, axis)):
                painted = np.flatnonzero((labels > 0).any(axis=tuple(a for a in range(3) if a != axis)))
                show_slice(self.viewer, image_layer, axis, int(painted[len(painted) // 2]))
            preview.index = current_index(self.viewer, image_layer, axis)
            preview.axis = axis
        self.results.ensure(image_layer, shape, names, labels_layer, reset=not warm)
        if self.checkpoint_dir is not None and self.checkpoint_every > 0:
            config.checkpoint_every = int(self.checkpoint_every)
        request = TrainingRequest(
            data,
            config,
            initial,
            preview,
            settings.preview_seconds,
            settings.cpu_threads,
            predict_at_end=True,
            checkpoint_dir=self.checkpoint_dir if config.checkpoint_every else None,
            nice=self.worker_nice,
        )
        control = RunControl()
        generator = training_events(request, control)
        offset = int(self.loss_plot.last_iteration) if warm and initial is not None else 0
        if not offset:
            self.loss_plot.clear()
        else:
            self.loss_plot.mark(offset)
        run = _Run("train", None, control, generator, image_layer.name, PREDICTION, UNCERTAINTY, request, offset)
        self._run = run
        self.timings = {"train_pressed": time.perf_counter()}
        self.preview_log = []
        self.progress.setFormat("%v / %m iterations")
        self.progress.setRange(0, config.iterations)
        self.progress.setValue(0)
        self.status_label.setText("Starting…" + (" (continuing from the current weights)" if initial else ""))
        self._start_worker(run)
        self._update_buttons()
        return True

    def _names_for(self, labels: np.ndarray) -> list[str]:
        """The class names, extended (with a notice) when the scribbles use more label values than named."""
        names = self.class_list.names()
        top = int(labels.max()) if labels.size else 0
        if top > len(names):
            names = [*names, *[f"class {k}" for k in range(len(names) + 1, top + 1)]]
            self.class_list.set_names(names)
            show_info(
                f"The scribbles use label {top}: added class names up to 'class {top}' (rename them if you like)."
            )
        return names

    @staticmethod
    def _expected_slice_axis(labels: np.ndarray, config) -> int | None:
        if labels.ndim != 3:
            return None
        if config.slice_axis is not None:
            return int(config.slice_axis) % 3
        return painted_slice_axis(labels)

    def _start_worker(self, run: _Run) -> None:
        worker = create_worker(contrastseg_worker, run.generator, _start_thread=False)
        run.worker = worker
        on_event = partial(self._on_event, run)
        on_finished = partial(self._on_worker_finished, run)
        worker.yielded.connect(on_event)
        worker.finished.connect(on_finished)
        worker.finished.connect(run.control.worker_ended.set, Qt.ConnectionType.DirectConnection)
        run.slots = [(worker.yielded, on_event), (worker.finished, on_finished)]
        self._controls.append(run.control)
        worker.start()

    def stop(self) -> None:
        """Stop training after the current step; the weights are kept and the whole image is still predicted.

        Pressed while the whole image is being predicted, it skips that prediction.
        """
        run = self._run
        if run is None:
            return
        if run.predicting:
            run.control.skip_prediction.set()
            self.status_label.setText("Skipping the whole-image prediction…")
        elif not run.control.stop.is_set():
            run.control.stop.set()
            self.status_label.setText("Stopping after the current step…")
        self._update_buttons()

    # --------------------------------------------------------------- events
    def _on_event(self, run: _Run, event) -> None:
        if self._closing:
            return
        handler = getattr(self, f"_on_{event.kind}", None)
        if handler is not None:
            handler(run, event)
        self.event_applied.emit(event)

    def _on_started(self, run: _Run, event) -> None:
        self.timings["started"] = time.perf_counter()
        if event.slice_axis is not None:
            self.slice_axis = event.slice_axis
        self.progress.setRange(0, event.iterations)
        device = event.device
        if device.startswith("cpu"):
            device = describe_cpu(run.request.cpu_threads if run.request else 1)
        elif device.startswith("cuda"):
            device = f"GPU {device}"
        self.device_label.setText(f"Training on: {device}")
        where = f"2D slices along axis {event.slice_axis}" if event.slice_axis is not None else event.dims
        warm = {"none": "", "full": "; continuing from the current weights"}.get(
            event.warm_start, f"; warm start: {event.warm_start}"
        )
        self.status_label.setText(
            f"{event.method}: {where}, {event.n_parameters / 1e6:.2f} M parameters, patches {event.patch_size}{warm}"
        )

    def _on_step(self, run: _Run, event) -> None:
        self._set_progress(event.iteration)
        speed = event.iterations_per_second
        left = (event.iterations - event.iteration) / speed if speed > 0 else float("nan")
        self.status_label.setText(
            f"Iteration {event.iteration} of {event.iterations} · {speed:.1f} it/s · about {left:.0f} s left · "
            f"loss {event.losses.get('total', float('nan')):.3f}"
        )
        self.loss_plot.add(run.offset + event.iteration, event.losses)

    def _set_progress(self, value: int) -> None:
        """Update the bar without QProgressBar's immediate repaint (one window redraw per event, not two)."""
        self.progress.setUpdatesEnabled(False)
        self.progress.setValue(value)
        self.progress.setUpdatesEnabled(True)  # schedules a normal, coalesced update

    def _on_preview(self, run: _Run, event) -> None:
        shown = self.results.show_preview(event, self.scribbles_layer(), run.prediction_name, run.uncertainty_name)
        if shown:
            now = time.perf_counter()
            self.timings.setdefault("first_preview", now)
            self.preview_log.append((now, event.iteration, event.index))

    def _on_checkpoint(self, run: _Run, event) -> None:
        pass

    def _on_finished(self, run: _Run, event) -> None:
        self.timings["finished"] = time.perf_counter()
        self.model = event.model
        self.slice_axis = event.model.info.slice_axis if event.model.info.slice_axis is not None else self.slice_axis
        self.model_panel.set_model_info(self._describe_model(event.model, "trained here"))
        if event.cancelled:
            show_info(
                f"Stopped after {event.iteration} iterations. The model keeps what it learned: "
                "Continue, Save it, or paint more."
            )

    def _on_predicting(self, run: _Run, event) -> None:
        run.predicting = True
        self._update_buttons()
        self.progress.setRange(0, 0)  # busy
        self.status_label.setText(f"Predicting the whole image ({' x '.join(map(str, event.shape))})…")

    def _on_whole_prediction(self, run: _Run, event) -> None:
        image = self._layer(run.image_name, Image)
        if image is None:
            show_warning(f"The image '{run.image_name}' was removed; its prediction is not shown.")
            return
        names = self.model.info.class_names if self.model is not None else self.class_list.names()
        scribbles = self.scribbles_layer()
        self.results.show_whole(event, image, names, scribbles, run.prediction_name, run.uncertainty_name)
        if run.kind == "train":
            self.uncertainty_volume = event.uncertainty
            self._uncertainty_image = run.image_name
        self.timings["whole_prediction"] = time.perf_counter()
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        self.progress.setFormat("done")
        hint = " Press 'Next slice to paint' to see where more paint helps most." if event.labels.ndim == 3 else ""
        if event.store:
            hint += f" The result is stored in {event.store} until napari closes."
        self.status_label.setText(f"Done: '{run.prediction_name}' predicted in {event.seconds:.1f} s.{hint}")

    def _on_failed(self, run: _Run, event) -> None:
        show_error(event.message)
        self.status_label.setText(f"Failed: {event.message}")

    def _on_worker_finished(self, run: _Run) -> None:
        for signal, slot in run.slots:  # the worker outlives this run in napari's task list: let go of the widget
            with contextlib.suppress(TypeError, RuntimeError):
                signal.disconnect(slot)
        run.slots = []
        if not run.control.done.is_set():  # the worker was told to quit (napari's task cancel) mid-run
            run.control.abort.set()
            run.generator.close()  # ends the work thread after its current step
        if self._run is run:
            self._run = None
        if self._apply is run:
            self._apply = None
        if run.control in self._controls:
            self._controls.remove(run.control)
        if self._closing:
            return
        if self.progress.maximum() == 0:
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
        if run.control.skip_prediction.is_set():
            self.status_label.setText("Whole-image prediction skipped; the model is kept (Save it, or Apply it later).")
        self._update_buttons()
        self.run_ended.emit(run.kind)

    def _on_dims_step(self, *_args) -> None:
        """The live preview follows the slice the user is looking at."""
        run = self._run
        if run is None or run.request is None or run.request.preview is None or self.slice_axis is None:
            return
        image = self._layer(run.image_name, Image)
        if image is not None and image.ndim == 3:
            run.request.preview.index = current_index(self.viewer, image, self.slice_axis)

    def _update_buttons(self) -> None:
        running = self._run is not None
        self.train_button.setEnabled(not running)
        self.continue_button.setEnabled(not running and self.model is not None)
        run = self._run
        self.stop_button.setEnabled(
            running and not (run.control.skip_prediction.is_set() if run.predicting else run.control.stop.is_set())
        )
        self.stop_button.setText("Skip" if running and run.predicting else "Stop")
        self.model_panel.load_button.setEnabled(not running)
        self.model_panel.set_model_info(None if self.model is None else self.model_panel.info.text())
        self.model_panel.apply_button.setEnabled(
            self.model is not None and self._apply is None and self.model_panel.target.count() > 0
        )

    # ----------------------------------------------------------- next slice
    def next_slice(self) -> int | None:
        """Move the viewer to the unpainted slice where the model is least certain; returns its index."""
        image, labels_layer = self.image_layer(), self.scribbles_layer()
        if image is None or labels_layer is None:
            show_info("Choose the image and its scribbles layer first.")
            return None
        unc = self.uncertainty_volume
        if unc is None or self._uncertainty_image != image.name or unc.shape != spatial_shape(image):
            show_info("Train a model on this image first: the suggestion comes from its uncertainty.")
            return None
        labels = np.asarray(labels_layer.data)
        if labels.ndim != 3:
            show_info("On a 2D image, paint where the 'uncertainty' layer is brightest.")
            return None
        axis = self.slice_axis if self.slice_axis is not None else painted_slice_axis(labels)
        suggestion = suggest_slice(unc, labels, axis)
        if suggestion is None:
            show_info(f"Every slice along axis {axis} has paint already.")
            return None
        show_slice(self.viewer, image, axis, suggestion.index)
        labels_layer.mode = "paint"
        self.viewer.layers.selection.active = labels_layer
        self.next_label.setText(
            f"Slice {suggestion.index} along axis {axis}: mean uncertainty {suggestion.mean_uncertainty:.2f}, the "
            f"highest of {suggestion.unpainted_slices} unpainted slices. Paint it, then press Continue."
        )
        return suggestion.index

    # ---------------------------------------------------------------- models
    def save_model(self, path: str | Path) -> Path | None:
        if self.model is None:
            show_error("There is no model to save yet: train one first.")
            return None
        try:
            written = self.model.save(path)
        except (ContrastSegError, OSError) as err:
            show_error(f"The model could not be saved: {err}")
            return None
        show_info(
            f"Model saved to {written}. The command line uses the same file: contrastseg predict {written.name} …"
        )
        return written

    def load_model(self, path: str | Path):
        from ..core.model import load_model

        if self._run is not None:
            show_info("Wait until training ends (or press Stop) before loading a model.")
            return None
        try:
            model = load_model(path)
        except ContrastSegError as err:
            show_error(str(err))
            return None
        self.model = model
        self.slice_axis = model.info.slice_axis
        self.uncertainty_volume = None
        self.class_list.set_names(list(model.info.class_names))
        self.model_panel.set_model_info(self._describe_model(model, Path(path).name))
        self._update_buttons()
        show_info(f"Loaded {Path(path).name}. Apply it to an image, or paint and press Continue to refine it.")
        return model

    def apply_model(self, layer_name: str | None = None) -> bool:
        """Predict a whole image layer with the current model into '<name> prediction' / '<name> uncertainty'."""
        if self._closing:
            return False
        if self.model is None:
            show_error("There is no model yet: train one or load a model file first.")
            return False
        if self._apply is not None:
            show_info("A prediction is already running; wait until it ends.")
            return False
        layer = self._layer(layer_name or self.model_panel.target.currentText(), Image)
        if layer is None:
            show_error("Choose an image layer to apply the model to.")
            return False
        image, channel_axis = image_array(layer, lazy=True)  # dask / zarr data are predicted block by block
        control = RunControl()
        settings = self.read_settings()
        generator = apply_model_events(
            self.model,
            image,
            channel_axis,
            settings.device,
            control,
            settings.cpu_threads,
            target=layer.name,
            nice=self.worker_nice,
        )
        run = _Run(
            "apply", None, control, generator, layer.name, f"{layer.name} prediction", f"{layer.name} uncertainty"
        )
        self._apply = run
        self._start_worker(run)
        self._update_buttons()
        return True

    @staticmethod
    def _describe_model(model, source: str) -> str:
        info = model.info
        names = info.class_names
        shown = ", ".join(names[:4]) + (f", … ({len(names)} classes)" if len(names) > 4 else "")
        where = f"2D along axis {info.slice_axis}" if info.slice_axis is not None else f"{info.spatial_dims}D"
        t = info.training or {}
        done = f", {t.get('iterations', '?')} iterations" + (" (stopped early)" if t.get("cancelled") else "")
        return f"Model ({source}): {shown}; {where}; {info.method}{done}."

    # -------------------------------------------------------------- closing
    def closeEvent(self, ev) -> None:  # noqa: N802 - Qt API
        self.shutdown()
        super().closeEvent(ev)

    def shutdown(self, timeout: float = 30.0) -> None:
        """Stop any worker (after its current step), wait for it, save the scribbles, let go of the viewer.

        Called when the dock widget or the viewer closes; safe to call more than once.
        """
        if self._closing:
            return
        self._closing = True
        runs = [run for run in (self._run, self._apply) if run is not None]
        for run in runs:
            run.control.abort.set()
            for signal, slot in run.slots:
                with contextlib.suppress(TypeError, RuntimeError):
                    signal.disconnect(slot)
        for run in runs:
            if run.worker is not None and not run.control.started.is_set():
                QThreadPool.globalInstance().tryTake(run.worker)
                continue  # not started yet: if it ever starts, it returns at once (abort is set)
            run.control.wait_ended(timeout)
            if not run.control.done.is_set():
                run.generator.close()  # the worker left it mid-way (napari's cancel); finish it here
        self._run = self._apply = None
        self.autosave.close()
        self.close_watcher.release()
        self._disconnect_viewer()
        app = QApplication.instance()
        if app is not None:
            with contextlib.suppress(TypeError, RuntimeError):
                app.aboutToQuit.disconnect(self.shutdown)
