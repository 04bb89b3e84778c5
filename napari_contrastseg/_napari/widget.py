"""The dock widget: pick layers, name classes, train / stop / continue with a live preview, save and apply models.

All layer changes happen here, on the main thread, in handlers of the events the workers yield. The scribbles
layer is only ever read (copied when Train is pressed); results go to separate ``prediction`` and ``uncertainty``
layers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from napari.layers import Image, Labels
from napari.qt.threading import create_worker
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import QEvent, QObject, Qt, QThreadPool, QTimer, Signal
from qtpy.QtWidgets import (
    QApplication,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
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
from .devices import cpu_cores, describe_cpu, device_choices
from .layers import (
    OUTPUT_KEY,
    current_index,
    geometry_kwargs,
    image_array,
    make_slider,
    same_layer,
    show_slice,
    spatial_shape,
)
from .layers import viewer_dim as _viewer_dim
from .loss_plot import LossPlot
from .model_panel import ModelPanel
from .next_slice import suggest_slice
from .settings import KNOWN_METHODS, NETWORK_PRESETS, TrainingSettings
from .workers.control import RunControl
from .workers.prediction import apply_model_events
from .workers.training import TrainingRequest, training_events

PREDICTION = "prediction"
UNCERTAINTY = "uncertainty"
PATCH_SIZES = (0, 32, 48, 64, 96, 128, 160, 192, 256)


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
    slots: list = field(default_factory=list)


def _relay(generator):
    """The worker's generator: forwards ``generator`` (kept by the widget so it can be closed on shutdown)."""
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
        self.preview_log: list[tuple[float, int, int | None]] = []
        self._run: _Run | None = None
        self._apply: _Run | None = None
        self._controls: list[RunControl] = []
        self._closing = False
        self._docked = False
        self._window: QWidget | None = None
        self._connected: list[tuple[Any, Any]] = []
        self._restore_offer: autosave_io.SavedScribbles | None = None
        self.autosave = ScribbleAutosave(self)
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
        self.method_combo = QComboBox()
        self._fill_methods()
        self.iterations_spin = QSpinBox()
        self.iterations_spin.setRange(1, 100_000)
        self.iterations_spin.setSingleStep(50)
        self.iterations_spin.setToolTip("Optimisation steps per run (Continue runs this many more)")
        self.device_combo = QComboBox()
        self.device_label = QLabel()
        self.device_label.setWordWrap(True)
        tform.addRow("Method", self.method_combo)
        tform.addRow("Iterations", self.iterations_spin)
        tform.addRow("Device", self.device_combo)
        tform.addRow(self.device_label)

        self.advanced = QCollapsible("Advanced options")
        adv = QWidget()
        aform = QFormLayout(adv)
        aform.setContentsMargins(0, 0, 0, 0)
        self.batch_spin = QSpinBox()
        self.batch_spin.setRange(1, 256)
        self.patch_combo = QComboBox()
        for size in PATCH_SIZES:
            self.patch_combo.addItem("auto" if size == 0 else str(size), size)
        self.network_combo = QComboBox()
        for name, widths in NETWORK_PRESETS.items():
            self.network_combo.addItem(f"{name} ({'-'.join(map(str, widths))})", name)
        self.lr_spin = QDoubleSpinBox()
        self.lr_spin.setDecimals(5)
        self.lr_spin.setRange(1e-5, 1.0)
        self.lr_spin.setSingleStep(5e-4)
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.dims_combo = QComboBox()
        for value, text in (("auto", "auto (2D slices)"), ("2d", "2D slices"), ("3d", "3D patches")):
            self.dims_combo.addItem(text, value)
        self.axis_combo = QComboBox()
        self.axis_combo.addItem("auto (the painted axis)", None)
        for a in range(3):
            self.axis_combo.addItem(f"axis {a}", a)
        self.preview_spin = QDoubleSpinBox()
        self.preview_spin.setRange(0, 600)
        self.preview_spin.setDecimals(1)
        self.preview_spin.setSuffix(" s")
        self.preview_spin.setToolTip("How often the viewed slice is re-predicted while training (0: only at the end)")
        self.threads_spin = QSpinBox()
        self.threads_spin.setRange(1, max(1, cpu_cores()))
        self.threads_spin.setToolTip("CPU threads for training; leaving one core free keeps the window responsive")
        aform.addRow("Batch size", self.batch_spin)
        aform.addRow("Patch size", self.patch_combo)
        aform.addRow("Network", self.network_combo)
        aform.addRow("Learning rate", self.lr_spin)
        aform.addRow("Seed", self.seed_spin)
        aform.addRow("Dimensions", self.dims_combo)
        aform.addRow("Slice axis", self.axis_combo)
        aform.addRow("Live preview every", self.preview_spin)
        aform.addRow("CPU threads", self.threads_spin)
        self.advanced.addWidget(adv)
        self.advanced.collapse(animate=False)
        tform.addRow(self.advanced)

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
        self.progress.setFormat("%v / %m")
        self.progress.setValue(0)
        self.status_label = QLabel("Pick an image and a scribbles layer, then press Train.")
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

        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(body)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)
        self.setMinimumWidth(330)

        self._fill_devices()
        self.apply_settings(TrainingSettings())
        self.image_combo.currentIndexChanged.connect(self._on_image_changed)
        self.scribbles_combo.currentIndexChanged.connect(self._on_scribbles_changed)
        self.new_scribbles_button.clicked.connect(self.new_scribbles)
        self.restore_button.clicked.connect(self.restore_scribbles)
        self.discard_button.clicked.connect(self.discard_autosave)
        self.class_list.class_chosen.connect(self._on_class_chosen)
        self.class_list.changed.connect(lambda: self.autosave.set_class_names(self.class_list.names()))
        self.device_combo.currentIndexChanged.connect(self._show_device)
        self.threads_spin.valueChanged.connect(self._fill_devices)
        self.train_button.clicked.connect(self.train)
        self.stop_button.clicked.connect(self.stop)
        self.continue_button.clicked.connect(self.continue_training)
        self.next_button.clicked.connect(self.next_slice)
        self.model_panel.save_requested.connect(self.save_model)
        self.model_panel.load_requested.connect(self.load_model)
        self.model_panel.apply_requested.connect(self.apply_model)
        self._update_buttons()

    def _fill_methods(self) -> None:
        from ..core.methods import METHODS

        names = [*KNOWN_METHODS, *sorted(set(METHODS) - set(KNOWN_METHODS))]
        for name in names:
            self.method_combo.addItem(name, name)
            if name not in METHODS:
                item = self.method_combo.model().item(self.method_combo.count() - 1)
                item.setEnabled(False)
                item.setToolTip("Not available in this installation")

    def _fill_devices(self, *_args) -> None:
        current = self.device_combo.currentData() or "auto"
        self.device_combo.blockSignals(True)
        self.device_combo.clear()
        for choice in device_choices(self.threads_spin.value()):
            self.device_combo.addItem(choice.label, choice.value)
        index = self.device_combo.findData(current)
        self.device_combo.setCurrentIndex(max(0, index))
        self.device_combo.blockSignals(False)
        self._show_device()

    def _show_device(self, *_args) -> None:
        text = self.device_combo.currentText().removeprefix("Auto: ").split(" - ")[0]
        self.device_label.setText(f"Will train on: {text}")

    # ------------------------------------------------------------- settings
    def read_settings(self) -> TrainingSettings:
        """The settings the controls show."""
        return TrainingSettings(
            method=self.method_combo.currentData() or "supervised",
            iterations=self.iterations_spin.value(),
            device=self.device_combo.currentData() or "auto",
            batch_size=self.batch_spin.value(),
            patch_size=int(self.patch_combo.currentData() or 0),
            dims=self.dims_combo.currentData() or "auto",
            slice_axis=self.axis_combo.currentData(),
            learning_rate=self.lr_spin.value(),
            seed=self.seed_spin.value(),
            network=self.network_combo.currentData() or "standard",
            preview_seconds=self.preview_spin.value(),
            cpu_threads=self.threads_spin.value(),
        )

    def apply_settings(self, settings: TrainingSettings) -> None:
        """Show ``settings`` in the controls (values not offered are added to the menus)."""
        self._set_combo(self.method_combo, settings.method)
        self.iterations_spin.setValue(settings.iterations)
        self.threads_spin.setValue(min(settings.cpu_threads, self.threads_spin.maximum()))
        self._set_combo(self.device_combo, settings.device)
        self.batch_spin.setValue(settings.batch_size)
        self._set_combo(self.patch_combo, settings.patch_size, str(settings.patch_size))
        self._set_combo(self.network_combo, settings.network)
        self.lr_spin.setValue(settings.learning_rate)
        self.seed_spin.setValue(settings.seed)
        self._set_combo(self.dims_combo, settings.dims)
        self._set_combo(self.axis_combo, settings.slice_axis, f"axis {settings.slice_axis}")
        self.preview_spin.setValue(settings.preview_seconds)

    @staticmethod
    def _set_combo(combo: QComboBox, value, text: str | None = None) -> None:
        index = combo.findData(value)
        if index < 0:
            combo.addItem(text or str(value), value)
            index = combo.count() - 1
        combo.setCurrentIndex(index)

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
            try:
                emitter.disconnect(slot)
            except Exception:  # noqa: BLE001 - the viewer may already be gone
                pass
        self._connected.clear()
        for layer in list(self.viewer.layers):
            try:
                layer.events.name.disconnect(self.refresh_layers)
            except Exception:  # noqa: BLE001
                pass

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
        image_choice = self._fill_combo(self.image_combo, [l.name for l in images if not _is_output(l)])
        target = self.model_panel.target.currentText()
        self._fill_combo(self.model_panel.target, [l.name for l in images if not _is_output(l)], target or None)
        self._fill_combo(self.scribbles_combo, [l.name for l in labels], self._scribbles_for(image_choice, labels))
        self._on_image_changed()
        self._update_buttons()

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
        if current in [l.name for l in labels]:
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
        self._check_autosave()

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
        self._ensure_outputs(image_layer, shape, names, PREDICTION, UNCERTAINTY, reset=not warm)
        request = TrainingRequest(
            data, config, initial, preview, settings.preview_seconds, settings.cpu_threads, predict_at_end=True
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
        self.progress.setRange(0, config.iterations)
        self.progress.setValue(0)
        self.status_label.setText("Starting…" + (" (continuing from the current weights)" if initial else ""))
        self._start_worker(run, settings)
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

    def _start_worker(self, run: _Run, settings: TrainingSettings | None = None) -> None:
        worker = create_worker(_relay, run.generator, _start_thread=False)
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
        """Stop training after the current step; the weights are kept (and the whole image still predicted)."""
        if self._run is not None and not self._run.control.stop.is_set():
            self._run.control.stop.set()
            self.status_label.setText("Stopping after the current step…")
        self._update_buttons()

    def _ensure_outputs(self, image_layer, shape, names, pred_name, unc_name, reset: bool) -> tuple:
        """The prediction (labels) and uncertainty (image) layers on the image's grid, created if missing.

        Only layers this plugin made (marked in their metadata) are reused; a user's own layer of the same name,
        and the scribbles layer above all, are never written.
        """
        scribbles = self.scribbles_layer()
        geometry = geometry_kwargs(image_layer, len(shape))
        meta = {**geometry.pop("metadata"), OUTPUT_KEY: True, "image": image_layer.name, "class_names": list(names)}
        pred = self._output_layer(pred_name, Labels, scribbles)
        if pred is None:
            pred = self.viewer.add_labels(
                np.zeros(shape, np.uint8), name=self._free_name(pred_name), opacity=0.55, **geometry
            )
        elif reset or pred.data.shape != tuple(shape):
            pred.data = np.zeros(shape, np.uint8)
        pred.metadata.update(meta)
        if scribbles is not None:
            try:
                pred.colormap = scribbles.colormap
            except Exception:  # noqa: BLE001 - colours only
                pass
        unc = self._output_layer(unc_name, Image, scribbles)
        if unc is None:
            unc = self.viewer.add_image(
                np.zeros(shape, np.float32),
                name=self._free_name(unc_name),
                colormap="magma",
                contrast_limits=(0.0, 1.0),
                opacity=0.6,
                blending="additive",
                visible=False,
                **geometry,
            )
        elif reset or unc.data.shape != tuple(shape):
            unc.data = np.zeros(shape, np.float32)
        unc.metadata.update(meta)
        if scribbles is not None and scribbles in self.viewer.layers:  # keep the painting on top of the results
            for layer in (unc, pred):
                index, below = self.viewer.layers.index(layer), self.viewer.layers.index(scribbles)
                if index > below:
                    self.viewer.layers.move(index, below)
        return pred, unc

    def _output_layer(self, name: str, kind, scribbles):
        """This plugin's output layer called ``name`` (or ``name [n]``), if there is one."""
        for layer in self.viewer.layers:
            base = layer.name.split(" [")[0]
            if base == name and isinstance(layer, kind) and _is_output(layer) and not same_layer(layer, scribbles):
                return layer
        return None

    def _free_name(self, name: str) -> str:
        n, candidate = 1, name
        while candidate in self.viewer.layers:
            n += 1
            candidate = f"{name} [{n}]"
        return candidate

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
        self.progress.setValue(event.iteration)
        speed = event.iterations_per_second
        left = (event.iterations - event.iteration) / speed if speed > 0 else float("nan")
        self.status_label.setText(
            f"Iteration {event.iteration} of {event.iterations} · {speed:.1f} it/s · about {left:.0f} s left · "
            f"loss {event.losses.get('total', float('nan')):.3f}"
        )
        self.loss_plot.add(run.offset + event.iteration, event.losses)

    def _on_preview(self, run: _Run, event) -> None:
        pred = self._output_layer(run.prediction_name, Labels, self.scribbles_layer())
        unc = self._output_layer(run.uncertainty_name, Image, self.scribbles_layer())
        if pred is None or unc is None or pred.data.shape != event_shape(pred.data.shape, event):
            return
        if event.axis is None:
            where = (Ellipsis,)
        else:
            where = tuple(event.index if a == event.axis else slice(None) for a in range(pred.ndim))
        pred.data[where] = event.labels
        unc.data[where] = event.uncertainty
        pred.refresh()
        unc.refresh()
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
        self.progress.setRange(0, 0)  # busy
        self.status_label.setText(f"Predicting the whole image ({' x '.join(map(str, event.shape))})…")

    def _on_whole_prediction(self, run: _Run, event) -> None:
        image = self._layer(run.image_name, Image)
        if image is None:
            show_warning(f"The image '{run.image_name}' was removed; its prediction is not shown.")
            return
        names = self.model.info.class_names if self.model is not None else self.class_list.names()
        pred, unc = self._ensure_outputs(
            image, event.labels.shape, names, run.prediction_name, run.uncertainty_name, reset=False
        )
        pred.data = event.labels
        unc.data = event.uncertainty
        unc.contrast_limits = (0.0, 1.0)
        if run.kind == "train":
            self.uncertainty_volume = event.uncertainty
            self._uncertainty_image = run.image_name
        self.timings["whole_prediction"] = time.perf_counter()
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        hint = " Press 'Next slice to paint' to see where more paint helps most." if event.labels.ndim == 3 else ""
        self.status_label.setText(f"Done: '{run.prediction_name}' predicted in {event.seconds:.1f} s.{hint}")

    def _on_failed(self, run: _Run, event) -> None:
        show_error(event.message)
        self.status_label.setText(f"Failed: {event.message}")

    def _on_worker_finished(self, run: _Run) -> None:
        for signal, slot in run.slots:  # the worker outlives this run in napari's task list: let go of the widget
            try:
                signal.disconnect(slot)
            except (TypeError, RuntimeError):
                pass
        run.slots = []
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
        self.stop_button.setEnabled(running and not self._run.control.stop.is_set())
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
        from ..core.model_io import load_model

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
        image, channel_axis = image_array(layer)
        control = RunControl()
        settings = self.read_settings()
        generator = apply_model_events(
            self.model, image, channel_axis, settings.device, control, settings.cpu_threads, layer.name
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
    def event(self, ev: QEvent) -> bool:  # noqa: D102 - Qt API
        if ev.type() == QEvent.Type.ParentChange:
            if self.parent() is None and self._docked:
                self.shutdown()  # the dock widget was closed (napari un-parents the widget)
            elif self.parent() is not None:
                self._docked = True
                QTimer.singleShot(0, self._watch_window)
        elif ev.type() == QEvent.Type.Show:
            self._watch_window()
        return super().event(ev)

    def _watch_window(self) -> None:
        window = self.window()
        if self._closing or window is self or window is self._window:
            return
        if self._window is not None:
            self._window.removeEventFilter(self)
        self._window = window
        window.installEventFilter(self)

    def eventFilter(self, obj: QObject, ev: QEvent) -> bool:  # noqa: N802 - Qt API
        if obj is self._window and ev.type() == QEvent.Type.Close:
            if ev.spontaneous():  # the user's close may still be refused (napari asks); check once it is done
                QTimer.singleShot(0, self._after_window_close)
            else:
                self.shutdown()
        return False

    def _after_window_close(self) -> None:
        if self._window is not None and not self._window.isVisible():
            self.shutdown()

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
                try:
                    signal.disconnect(slot)
                except (TypeError, RuntimeError):
                    pass
        for run in runs:
            if run.worker is not None and not run.control.started.is_set():
                QThreadPool.globalInstance().tryTake(run.worker)
                continue  # not started yet: if it ever starts, it returns at once (abort is set)
            run.control.wait_ended(timeout)
            if not run.control.done.is_set():
                run.generator.close()  # the worker left it mid-way (napari's cancel); finish it here
        self._run = self._apply = None
        self.autosave.close()
        if self._window is not None:
            try:
                self._window.removeEventFilter(self)
            except RuntimeError:
                pass
            self._window = None
        self._disconnect_viewer()
        app = QApplication.instance()
        if app is not None:
            try:
                app.aboutToQuit.disconnect(self.shutdown)
            except (TypeError, RuntimeError):
                pass


def event_shape(shape: tuple[int, ...], event) -> tuple[int, ...]:
    """The full shape a preview slice belongs to (``shape`` if it fits, else something that will not match)."""
    if event.axis is None:
        return tuple(event.labels.shape)
    expected = tuple(s for a, s in enumerate(shape) if a != event.axis)
    return tuple(shape) if expected == tuple(event.labels.shape) and event.index < shape[event.axis] else ()


def _is_output(layer) -> bool:
    return bool((layer.metadata or {}).get(OUTPUT_KEY))
