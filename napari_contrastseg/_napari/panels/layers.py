"""The "Layers" panel: which image to segment and which labels layer holds the painting; new scribbles; restoring
autosaved scribbles. It writes ``state.image`` / ``state.scribbles`` and autosaves the painting."""

from __future__ import annotations

import contextlib

import numpy as np
from napari.layers import Image, Labels
from napari.utils.notifications import show_error, show_info
from qtpy.QtWidgets import QComboBox, QFormLayout, QFrame, QGroupBox, QHBoxLayout, QLabel, QPushButton

from .. import autosave as autosave_io
from ..autosave import ScribbleAutosave
from ..layers import OUTPUT_KEY, geometry_kwargs, layer_named, spatial_shape
from ..results import is_output
from ..state import DockState


class LayersPanel(QGroupBox):
    """Image and scribbles menus (kept in step with the viewer), New, and the autosave offer."""

    def __init__(self, viewer, state: DockState) -> None:
        super().__init__("Layers")
        self.viewer, self.state = viewer, state
        self.autosave = ScribbleAutosave(self)
        self._offer: autosave_io.SavedScribbles | None = None
        self._image_key: tuple | None = None
        self._connected: list[tuple] = []
        form = QFormLayout(self)
        self.image_combo = QComboBox()
        self.image_combo.setToolTip("The image to segment")
        self.scribbles_combo = QComboBox()
        self.scribbles_combo.setToolTip("Your painting: 1 = background, 2, 3, ... = the classes below. Never modified.")
        self.new_button = QPushButton("New")
        self.new_button.setToolTip("Create an empty scribbles layer on the image's grid and start painting")
        row = QHBoxLayout()
        row.addWidget(self.scribbles_combo, 1)
        row.addWidget(self.new_button)
        form.addRow("Image", self.image_combo)
        form.addRow("Scribbles", row)
        self.restore_frame = QFrame()
        self.restore_frame.setFrameShape(QFrame.Shape.StyledPanel)
        offer = QHBoxLayout(self.restore_frame)
        self.restore_label = QLabel()
        self.restore_label.setWordWrap(True)
        self.restore_button = QPushButton("Restore")
        self.restore_button.setToolTip("Open the autosaved scribbles as a new labels layer")
        self.discard_button = QPushButton("Discard")
        for w in (self.restore_label, self.restore_button, self.discard_button):
            offer.addWidget(w, 1 if w is self.restore_label else 0)
        self.restore_frame.setVisible(False)
        form.addRow(self.restore_frame)
        self.image_combo.currentIndexChanged.connect(self._on_image_changed)
        self.scribbles_combo.currentIndexChanged.connect(self._on_scribbles_changed)
        self.new_button.clicked.connect(self.new_scribbles)
        self.restore_button.clicked.connect(self.restore_scribbles)
        self.discard_button.clicked.connect(self.discard_autosave)
        state.events.class_names.connect(self.autosave.set_class_names)
        state.events.training.connect(self._save_when_training_starts)
        events = viewer.layers.events
        for emitter in (events.inserted, events.removed, events.reordered):
            emitter.connect(self.refresh)
            self._connected.append((emitter, self.refresh))
        self.refresh()

    def _save_when_training_starts(self, running: bool) -> None:
        if running:  # what is trained on is on disk before anything else happens
            self.autosave.save_now()

    # -------------------------------------------------------------- choices
    def image_layer(self):
        return layer_named(self.viewer, self.image_combo.currentText(), Image)

    def scribbles_layer(self):
        return layer_named(self.viewer, self.scribbles_combo.currentText(), Labels)

    def select(self, image: str | None = None, scribbles: str | None = None) -> None:
        """Choose layers by name (as if picked in the menus)."""
        if image is not None:
            self.image_combo.setCurrentText(image)
        if scribbles is not None:
            self.scribbles_combo.setCurrentText(scribbles)
        self._on_scribbles_changed()

    def refresh(self, *_args) -> None:
        """Fill the menus from the viewer, keeping the current choices where they still exist."""
        images = [lay.name for lay in self.viewer.layers if isinstance(lay, Image) and not is_output(lay)]
        labels = [
            lay for lay in self.viewer.layers if isinstance(lay, Labels) and not (lay.metadata or {}).get(OUTPUT_KEY)
        ]
        for layer in self.viewer.layers:
            layer.events.name.connect(self.refresh)
        image = _fill(self.image_combo, images)
        _fill(self.scribbles_combo, [lay.name for lay in labels], self._scribbles_for(image, labels))
        self._on_scribbles_changed()
        self._on_image_changed()

    def _scribbles_for(self, image_name: str | None, labels: list) -> str | None:
        """The labels layer that belongs to ``image_name``: current choice, else one made for it, else 'scribbles'."""
        current = self.scribbles_combo.currentText()
        if current in [lay.name for lay in labels]:
            return current
        for layer in labels:
            if image_name and (layer.metadata or {}).get("image") == image_name:
                return layer.name
        return next(
            (lay.name for lay in labels if lay.name.startswith("scribbles")), labels[0].name if labels else None
        )

    def _on_image_changed(self, *_args) -> None:
        image = self.image_layer()
        self.state.image = image.name if image is not None else ""
        key = (image.name, spatial_shape(image)) if image is not None else None
        if key != self._image_key:  # another image: is there autosaved painting to offer back?
            self._image_key = key
            self._check_autosave()

    def _on_scribbles_changed(self, *_args) -> None:
        layer, image = self.scribbles_layer(), self.image_layer()
        self.state.scribbles = layer.name if layer is not None else ""
        names = list((layer.metadata or {}).get("class_names") or []) if layer is not None else []
        if names and names != self.state.class_names and self.state.model is None:
            self.state.class_names = names
        self.autosave.watch(layer, image.name if image is not None else "", self.state.class_names)

    def new_scribbles(self) -> Labels | None:
        """Add an empty labels layer on the image's grid, select it for painting, and return it."""
        image = self.image_layer()
        if image is None:
            show_error("Open an image first (File > Open, or File > Open Sample > ContrastSeg), then click New.")
            return None
        shape = spatial_shape(image)
        geometry = geometry_kwargs(image, len(shape))
        names = self.state.class_names
        geometry["metadata"].update({"image": image.name, "class_names": names})
        name = "scribbles" if "scribbles" not in self.viewer.layers else f"scribbles ({image.name})"
        layer = self.viewer.add_labels(np.zeros(shape, np.uint8), name=name, opacity=0.8, **geometry)
        layer.brush_size = max(3, min(shape[-2:]) // 25)
        layer.selected_label = 1
        layer.mode = "paint"
        self.viewer.layers.selection.active = layer
        self.select(scribbles=layer.name)
        show_info(
            f"Paint background with label 1 and each class with its own label (1 = {names[0]}, 2 = {names[1]}, ...). "
            "A few strokes on two or three slices are enough; then press Train."
        )
        return layer

    # -------------------------------------------------------------- autosave
    def _check_autosave(self) -> None:
        image, offer = self.image_layer(), None
        if image is not None:
            saved = autosave_io.find_saved(image.name, spatial_shape(image))
            layer = self.scribbles_layer()
            current = np.asarray(layer.data) if layer is not None else None
            if saved is not None and saved.painted > 0:
                same = (
                    current is not None and current.shape == saved.shape and autosave_io.same_painting(saved, current)
                )
                offer = None if same else saved
        self._offer = offer
        if offer is not None:
            self.restore_label.setText(
                f"Autosaved scribbles for '{offer.image_name}' from {offer.age_in_words()} "
                f"({offer.painted} painted voxels)."
            )
        self.restore_frame.setVisible(offer is not None)

    def restore_scribbles(self) -> Labels | None:
        """Open the autosaved scribbles of the current image as a new labels layer (never over an existing one)."""
        offer, image = self._offer, self.image_layer()
        if offer is None or image is None:
            return None
        data = autosave_io.load_scribbles(offer)
        geometry = geometry_kwargs(image, data.ndim)
        geometry["metadata"].update({"image": image.name, "class_names": offer.class_names})
        layer = self.viewer.add_labels(data, name=f"{offer.labels_name} (restored)", opacity=0.8, **geometry)
        if offer.class_names:
            self.state.class_names = list(offer.class_names)
        self.select(scribbles=layer.name)
        self.restore_frame.setVisible(False)
        self._offer = None
        show_info(f"Restored {offer.painted} painted voxels into the layer '{layer.name}'.")
        return layer

    def discard_autosave(self) -> None:
        if self._offer is not None:
            self._offer.path.unlink(missing_ok=True)
        self._offer = None
        self.restore_frame.setVisible(False)

    def release(self) -> None:
        """Save pending scribbles and let go of the viewer."""
        self.autosave.close()
        for emitter, slot in self._connected:
            with contextlib.suppress(Exception):  # the viewer may already be gone
                emitter.disconnect(slot)
        self._connected.clear()
        for layer in list(self.viewer.layers):
            with contextlib.suppress(Exception):
                layer.events.name.disconnect(self.refresh)


def _fill(combo: QComboBox, names: list[str], prefer: str | None = None) -> str | None:
    """Refill ``combo``; keep its choice if still there, else ``prefer``, else the first name."""
    current = combo.currentText()
    choice = current if current in names else prefer if prefer in names else (names[0] if names else "")
    combo.blockSignals(True)
    combo.clear()
    combo.addItems(names)
    combo.setCurrentText(choice)
    combo.blockSignals(False)
    return combo.currentText() or None
