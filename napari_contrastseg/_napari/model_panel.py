"""The "Model" section: save, load, and apply the current model to another image layer."""

from __future__ import annotations

from qtpy.QtCore import Signal
from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGridLayout,
    QLabel,
    QPushButton,
    QWidget,
)

MODEL_FILTER = "ContrastSeg model (*.safetensors)"


class ModelPanel(QWidget):
    """Buttons only; the dock widget owns the model. Signals carry the user's choice (a path or a layer name)."""

    save_requested = Signal(str)
    load_requested = Signal(str)
    apply_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.info = QLabel("No model yet: train one, or load a .safetensors file (the CLI writes the same files).")
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
        self.apply_button.clicked.connect(lambda: self.apply_requested.emit(self.target.currentText()))
        self.set_model_info(None)

    def set_model_info(self, text: str | None) -> None:
        has = text is not None
        if has:
            self.info.setText(text)
        self.save_button.setEnabled(has)
        self.apply_button.setEnabled(has and self.target.count() > 0)

    def _ask_save(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save model", "model.safetensors", MODEL_FILTER)
        if path:
            self.save_requested.emit(path)

    def _ask_load(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load model", "", MODEL_FILTER)
        if path:
            self.load_requested.emit(path)
