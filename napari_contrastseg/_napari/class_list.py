"""Editable list of class names (background first), with the scribbles layer's colour of each label value."""

from __future__ import annotations

from qtpy.QtCore import Qt, Signal
from qtpy.QtGui import QColor, QIcon, QPixmap
from qtpy.QtWidgets import QHBoxLayout, QListWidget, QListWidgetItem, QPushButton, QVBoxLayout, QWidget

DEFAULT_NAMES = ("background", "foreground")


class ClassList(QWidget):
    """Row ``i`` names label value ``i + 1``. Clicking a row emits :attr:`class_chosen` with that value."""

    class_chosen = Signal(int)
    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.list = QListWidget()
        self.list.setMaximumHeight(120)
        self.list.setToolTip(
            "Label value 1, 2, 3, ... in the scribbles layer. Double-click to rename; click to paint with it."
        )
        self.add_button = QPushButton("+")
        self.remove_button = QPushButton("−")
        for b, tip in ((self.add_button, "Add a class"), (self.remove_button, "Remove the last class")):
            b.setFixedWidth(28)
            b.setToolTip(tip)
        buttons = QVBoxLayout()
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.remove_button)
        buttons.addStretch()
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.list)
        layout.addLayout(buttons)
        self.add_button.clicked.connect(self._add)
        self.remove_button.clicked.connect(self._remove)
        self.list.itemClicked.connect(lambda item: self.class_chosen.emit(self.list.row(item) + 1))
        self.list.itemChanged.connect(lambda _item: self.changed.emit())
        self._color_of = None
        self.set_names(list(DEFAULT_NAMES))

    def names(self) -> list[str]:
        out = []
        for i in range(self.list.count()):
            text = self.list.item(i).text().strip()
            out.append(text or ("background" if i == 0 else f"class {i + 1}"))
        return out

    def set_names(self, names: list[str]) -> None:
        self.list.blockSignals(True)
        self.list.clear()
        for name in names:
            item = QListWidgetItem(name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
            self.list.addItem(item)
        self.list.blockSignals(False)
        self._paint_swatches()
        self.changed.emit()

    def set_color_source(self, color_of) -> None:
        """``color_of(value) -> RGBA floats`` (e.g. a labels layer's ``get_color``), or None."""
        self._color_of = color_of
        self._paint_swatches()

    def _paint_swatches(self) -> None:
        for i in range(self.list.count()):
            icon = QIcon()
            if self._color_of is not None:
                try:
                    rgba = self._color_of(i + 1)
                except Exception:  # noqa: BLE001 - colours are decoration only
                    rgba = None
                if rgba is not None:
                    pix = QPixmap(12, 12)
                    pix.fill(QColor.fromRgbF(*[float(c) for c in rgba[:3]], 1.0))
                    icon = QIcon(pix)
            self.list.item(i).setIcon(icon)

    def _add(self) -> None:
        names = self.names()
        self.set_names([*names, f"class {len(names) + 1}"])
        item = self.list.item(self.list.count() - 1)
        self.list.setCurrentItem(item)
        self.list.editItem(item)

    def _remove(self) -> None:
        names = self.names()
        if len(names) > 2:
            self.set_names(names[:-1])
