"""The "Model" panel: save the current model, load one, apply it to another image layer (an apply job)."""

from __future__ import annotations

from pathlib import Path

from napari.layers import Image
from napari.utils.notifications import show_error, show_info
from qtpy.QtWidgets import QComboBox, QFileDialog, QGridLayout, QLabel, QPushButton, QWidget

from ...core.errors import ContrastSegError
from ...core.files import check_output
from ...core.model import load_model
from ...core.model_io import model_path
from ..jobs import Jobs, Run
from ..layers import image_array, layer_named
from ..results import is_output
from ..state import DockState, describe_model
from ..workers.control import RunControl
from ..workers.prediction import apply_model_events

MODEL_FILTER = "ContrastSeg model (*.safetensors)"
NO_MODEL = "No model yet: train one, or load a .safetensors file (the CLI writes the same files)."


class ModelPanel(QWidget):
    """Save / Load / Apply. The settings of an apply job (device, threads) come from ``settings()``."""

    def __init__(self, viewer, state: DockState, jobs: Jobs, settings) -> None:
        super().__init__()
        self.viewer, self.state, self.jobs, self.settings = viewer, state, jobs, settings
        self.nice = None  # the work thread's niceness (None: the workers' default)
        self.info = QLabel(NO_MODEL)
        self.info.setWordWrap(True)
        self.save_button = QPushButton("Save model…")
        self.load_button = QPushButton("Load model…")
        self.target = QComboBox()
        self.target.setToolTip("Image layer to segment with the current model")
        self.apply_button = QPushButton("Apply")
        self.apply_button.setToolTip("Predict every voxel of the chosen image layer with the current model")
        layout = QGridLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.info, 0, 0, 1, 3)
        layout.addWidget(self.save_button, 1, 0)
        layout.addWidget(self.load_button, 1, 1, 1, 2)
        layout.addWidget(QLabel("Apply to"), 2, 0)
        layout.addWidget(self.target, 2, 1)
        layout.addWidget(self.apply_button, 2, 2)
        self.save_button.clicked.connect(self._ask_save)
        self.load_button.clicked.connect(self._ask_load)
        self.apply_button.clicked.connect(lambda: self.apply_model(self.target.currentText()))
        for emitter in (state.events.model, state.events.training, state.events.applying):
            emitter.connect(self._update)
        self._events = viewer.layers.events
        for emitter in (self._events.inserted, self._events.removed, self._events.reordered):
            emitter.connect(self._fill_targets)
        jobs.event_applied.connect(self._on_event)
        jobs.ended.connect(self._on_ended)
        self._fill_targets()

    def _fill_targets(self, *_args) -> None:
        names = [lay.name for lay in self.viewer.layers if isinstance(lay, Image) and not is_output(lay)]
        current = self.target.currentText()
        self.target.blockSignals(True)
        self.target.clear()
        self.target.addItems(names)
        self.target.setCurrentText(current if current in names else (names[0] if names else ""))
        self.target.blockSignals(False)
        self._update()

    def _update(self, *_args) -> None:
        model = self.state.model
        self.info.setText(NO_MODEL if model is None else describe_model(model, self.state.model_source))
        self.save_button.setEnabled(model is not None)
        self.load_button.setEnabled(not self.state.training)
        self.apply_button.setEnabled(model is not None and not self.state.applying and self.target.count() > 0)

    # ---------------------------------------------------------------- files
    def _ask_save(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save model", "model.safetensors", MODEL_FILTER)
        if path:  # the dialog has asked before replacing a file
            self.save_model(path, overwrite=True)

    def _ask_load(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load model", "", MODEL_FILTER)
        if path:
            self.load_model(path)

    def save_model(self, path: str | Path, overwrite: bool = False) -> Path | None:
        """Write the current model to ``path`` (``.safetensors`` added); an existing file only with ``overwrite``."""
        if self.state.model is None:
            show_error("There is no model to save yet: train one first.")
            return None
        try:
            target = check_output(model_path(path), [], overwrite, "")
            written = self.state.model.save(target)
        except (ContrastSegError, OSError) as err:
            show_error(f"The model could not be saved: {err}")
            return None
        show_info(f"Model saved to {written}. The command line reads the same file: contrastseg predict {written.name}")
        return written

    def load_model(self, path: str | Path):
        """Make the model in ``path`` the current one (its classes become the class list)."""
        if self.state.training:
            show_info("Wait until training ends (or press Stop) before loading a model.")
            return None
        try:
            model = load_model(path)
        except ContrastSegError as err:
            show_error(str(err))
            return None
        self.state.uncertainty = None
        self.state.slice_axis = model.info.slice_axis
        self.state.class_names = list(model.info.class_names)
        self.state.model_source = Path(path).name
        self.state.model = model
        show_info(f"Loaded {Path(path).name}. Apply it to an image, or paint and press Continue to refine it.")
        return model

    # ---------------------------------------------------------------- apply
    def apply_model(self, layer_name: str | None = None) -> bool:
        """Predict a whole image layer with the current model into '<name> prediction' / '<name> uncertainty'."""
        if self.jobs.closing:
            return False
        if self.state.model is None:
            show_error("There is no model yet: train one or load a model file first.")
            return False
        if self.jobs.running("apply") is not None:
            show_info("A prediction is already running; wait until it ends.")
            return False
        layer = layer_named(self.viewer, layer_name or self.target.currentText(), Image)
        if layer is None:
            show_error("Choose an image layer to apply the model to.")
            return False
        image, channel_axis = image_array(layer, lazy=True)  # dask / zarr data are predicted block by block
        settings, control = self.settings(), RunControl()
        options = {} if self.nice is None else {"nice": self.nice}
        generator = apply_model_events(self.state.model, image, channel_axis, settings.device, control,
                                       settings.cpu_threads, target=layer.name, **options)  # fmt: skip
        names = list(self.state.model.info.class_names)
        self.jobs.start(Run("apply", control, generator, layer.name, f"{layer.name} prediction",
                            f"{layer.name} uncertainty", names))  # fmt: skip
        self.state.applying = True
        return True

    def _on_event(self, run: Run, event) -> None:
        if run.kind == "apply" and event.kind == "whole_prediction":
            stored = f" The result is stored in {event.store} until napari closes." if event.store else ""
            self.state.status = f"Done: '{run.prediction_name}' predicted in {event.seconds:.1f} s.{stored}"
        elif run.kind == "apply" and event.kind == "predicting":
            self.state.status = f"Predicting '{run.image_name}' ({' x '.join(map(str, event.shape))})…"

    def _on_ended(self, run: Run) -> None:
        if run.kind == "apply":
            self.state.applying = False

    def release(self) -> None:
        for emitter in (self._events.inserted, self._events.removed, self._events.reordered):
            emitter.disconnect(self._fill_targets)
