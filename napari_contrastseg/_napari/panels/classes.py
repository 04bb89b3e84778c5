"""The "Classes" panel: the names of label values 1, 2, 3, ... (``state.class_names``), coloured as painted."""

from __future__ import annotations

from napari.layers import Labels
from qtpy.QtWidgets import QGroupBox, QVBoxLayout

from ..class_list import ClassList
from ..layers import layer_named
from ..state import DockState


class ClassesPanel(QGroupBox):
    """Edits ``state.class_names``; clicking a class makes it the scribbles layer's brush label."""

    def __init__(self, viewer, state: DockState) -> None:
        super().__init__("Classes (label 1, 2, 3, ...; background first)")
        self.viewer, self.state = viewer, state
        self.class_list = ClassList()
        QVBoxLayout(self).addWidget(self.class_list)
        self.class_list.set_names(state.class_names)
        self.class_list.changed.connect(self._write)
        self.class_list.class_chosen.connect(self._choose)
        state.events.class_names.connect(self._show)
        state.events.scribbles.connect(self._colour)

    def _scribbles(self):
        return layer_named(self.viewer, self.state.scribbles, Labels)

    def _write(self) -> None:
        names = self.class_list.names()
        if names != self.state.class_names:
            self.state.class_names = names

    def _show(self, names: list[str]) -> None:
        if names != self.class_list.names():
            self.class_list.set_names(list(names))

    def _colour(self, *_args) -> None:
        layer = self._scribbles()
        self.class_list.set_color_source(getattr(layer, "get_color", None))

    def _choose(self, value: int) -> None:
        layer = self._scribbles()
        if layer is not None:
            layer.selected_label = value
