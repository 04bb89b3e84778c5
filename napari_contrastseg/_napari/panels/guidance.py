"""The "Where to paint next" panel: the unpainted slice where more paint should help most, and whether the last
painting still helped (the held-out estimate after each training)."""

from __future__ import annotations

import numpy as np
from napari.layers import Image, Labels
from napari.utils.notifications import show_info
from qtpy.QtWidgets import QGroupBox, QLabel, QPushButton, QVBoxLayout

from ...core.data import painted_slice_axis
from ...core.errors import ContrastSegError
from ...core.suggest import suggest_slices
from ..layers import layer_named, show_slice, spatial_shape
from ..state import DockState, PaintedEstimate

#: A painting round that raised the estimate by less than this is said to have helped little.
SMALL_GAIN = 0.01


class GuidancePanel(QGroupBox):
    """ "Next slice to paint" (:func:`~napari_contrastseg.core.suggest.suggest_slices`, as the CLI) and the gain of
    the last painting."""

    def __init__(self, viewer, state: DockState) -> None:
        super().__init__("Where to paint next")
        self.viewer, self.state = viewer, state
        column = QVBoxLayout(self)
        self.next_button = QPushButton("Next slice to paint")
        self.next_button.setToolTip(
            "Go to the unpainted slice that best evens out the painting over the slices where the model finds "
            "structures"
        )
        self.next_label = QLabel("")
        self.progress_label = QLabel("")
        for label in (self.next_label, self.progress_label):
            label.setWordWrap(True)
        for w in (self.next_button, self.next_label, self.progress_label):
            column.addWidget(w)
        self.next_button.clicked.connect(self.next_slice)
        state.events.estimates.connect(self._show_gain)

    def next_slice(self) -> int | None:
        """Move the viewer to the suggested slice and select the scribbles for painting; returns its index."""
        image, labels_layer = (
            layer_named(self.viewer, self.state.image, Image),
            layer_named(self.viewer, self.state.scribbles, Labels),
        )
        if image is None or labels_layer is None:
            show_info("Choose the image and its scribbles layer first.")
            return None
        unc = self.state.uncertainty
        if (
            self.state.model is None
            or unc is None
            or unc.image != image.name
            or unc.volume.shape != spatial_shape(image)
        ):
            show_info("Train a model on this image first: the suggestion comes from its prediction.")
            return None
        labels = np.asarray(labels_layer.data)
        if labels.ndim != 3:
            show_info("On a 2D image, paint where the 'uncertainty' layer is brightest.")
            return None
        axis = self.state.slice_axis if self.state.slice_axis is not None else painted_slice_axis(labels)
        try:
            picks = suggest_slices(
                self.state.model, None, labels, 1, axis=axis, uncertainty=unc.volume, predicted=unc.labels
            )
        except ContrastSegError as err:
            show_info(str(err))
            return None
        if not picks:
            show_info(f"Every slice along axis {axis} has paint already.")
            return None
        pick = picks[0]
        show_slice(self.viewer, image, axis, pick.index)
        labels_layer.mode = "paint"
        self.viewer.layers.selection.active = labels_layer
        self.next_label.setText(
            f"Slice {pick.index} along axis {axis}: {pick.distance} slices from the nearest painted one, mean "
            f"uncertainty {pick.uncertainty:.2f}. Paint it, then press Continue."
        )
        return pick.index

    def _show_gain(self, estimates: tuple[PaintedEstimate, ...]) -> None:
        if not estimates:
            self.progress_label.setText("")
            return
        last = estimates[-1]
        text = f"Estimated Dice {last.mean:.2f} with {last.painted} painted"
        earlier = [e for e in estimates[:-1] if e.painted < last.painted]
        if earlier:
            gain = last.mean - earlier[-1].mean
            text += f"; the last painting added {gain:+.2f}"
            if gain < SMALL_GAIN:
                text += " (little: more paint may no longer help much)"
        self.progress_label.setText(text + ".")
