"""The training settings as controls: method, iterations, device (in words), and advanced options folded away."""

from __future__ import annotations

from qtpy.QtWidgets import QComboBox, QDoubleSpinBox, QFormLayout, QLabel, QSpinBox, QWidget
from superqt import QCollapsible

from ..core.config import NORMS
from .devices import cpu_cores, device_choices
from .settings import KNOWN_METHODS, NETWORK_PRESETS, NORM_HINTS, TrainingSettings

PATCH_SIZES = (0, 32, 48, 64, 96, 128, 160, 192, 256)


class SettingsForm(QWidget):
    """Shows a :class:`TrainingSettings` and reads it back (``apply`` / ``read``)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        self.method_combo = QComboBox()
        self._fill_methods()
        self.iterations_spin = QSpinBox()
        self.iterations_spin.setRange(1, 100_000)
        self.iterations_spin.setSingleStep(50)
        self.iterations_spin.setToolTip("Optimisation steps per run (Continue runs this many more)")
        self.device_combo = QComboBox()
        self.device_combo.setToolTip("Auto uses a GPU when PyTorch can see one, else the CPU")
        self.device_label = QLabel()
        self.device_label.setWordWrap(True)
        form.addRow("Method", self.method_combo)
        form.addRow("Iterations", self.iterations_spin)
        form.addRow("Device", self.device_combo)
        form.addRow(self.device_label)

        self.advanced = QCollapsible("Advanced options")
        inner = QWidget()
        adv = QFormLayout(inner)
        adv.setContentsMargins(0, 0, 0, 0)
        self.batch_spin = QSpinBox()
        self.batch_spin.setRange(1, 256)
        self.patch_combo = QComboBox()
        for size in PATCH_SIZES:
            self.patch_combo.addItem("engine default" if size == 0 else str(size), size)
        self.network_combo = QComboBox()
        for name, widths in NETWORK_PRESETS.items():
            self.network_combo.addItem(f"{name} ({'-'.join(map(str, widths))})", name)
        self.norm_combo = QComboBox()
        for name in NORMS:
            self.norm_combo.addItem(NORM_HINTS.get(name, name), name)
        self.norm_combo.setToolTip(
            "The network's normalisation layer. Batch: the default, fastest prediction. Group: statistics of each crop;"
            " better on brain tissue classes, worse on small deep structures (docs/benchmarks.md). Continue keeps the"
            " current model's layer; Train starts a new model with this one"
        )
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
        self.preview_spin.setToolTip(
            "How often the viewed slice is re-predicted while training (0: only the whole image at the end; "
            "raise it on big data)"
        )
        self.threads_spin = QSpinBox()
        self.threads_spin.setRange(1, max(1, cpu_cores()))
        self.threads_spin.setToolTip("CPU threads for training; leaving one core free keeps the window responsive")
        adv.addRow("Batch size", self.batch_spin)
        adv.addRow("Patch size", self.patch_combo)
        adv.addRow("Network", self.network_combo)
        adv.addRow("Normalisation", self.norm_combo)
        adv.addRow("Learning rate", self.lr_spin)
        adv.addRow("Seed", self.seed_spin)
        adv.addRow("Dimensions", self.dims_combo)
        adv.addRow("Slice axis", self.axis_combo)
        adv.addRow("Live preview every", self.preview_spin)
        adv.addRow("CPU threads", self.threads_spin)
        self.advanced.addWidget(inner)
        self.advanced.collapse(animate=False)
        form.addRow(self.advanced)

        self._fill_devices()
        self.apply(TrainingSettings())
        self.device_combo.currentIndexChanged.connect(self._show_device)
        self.threads_spin.valueChanged.connect(self._fill_devices)

    def read(self) -> TrainingSettings:
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
            norm=self.norm_combo.currentData() or "batch",
            preview_seconds=self.preview_spin.value(),
            cpu_threads=self.threads_spin.value(),
        )

    def apply(self, settings: TrainingSettings) -> None:
        """Show ``settings`` (values not offered are added to the menus)."""
        _choose(self.method_combo, settings.method)
        self.iterations_spin.setValue(settings.iterations)
        self.threads_spin.setValue(min(settings.cpu_threads, self.threads_spin.maximum()))
        _choose(self.device_combo, settings.device)
        self.batch_spin.setValue(settings.batch_size)
        _choose(self.patch_combo, settings.patch_size, str(settings.patch_size))
        _choose(self.network_combo, settings.network)
        _choose(self.norm_combo, settings.norm)
        self.lr_spin.setValue(settings.learning_rate)
        self.seed_spin.setValue(settings.seed)
        _choose(self.dims_combo, settings.dims)
        _choose(self.axis_combo, settings.slice_axis, f"axis {settings.slice_axis}")
        self.preview_spin.setValue(settings.preview_seconds)

    def _fill_methods(self) -> None:
        from ..core.methods import METHODS

        for name in [*KNOWN_METHODS, *sorted(set(METHODS) - set(KNOWN_METHODS))]:
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
        self.device_combo.setCurrentIndex(max(0, self.device_combo.findData(current)))
        self.device_combo.blockSignals(False)
        self._show_device()

    def _show_device(self, *_args) -> None:
        text = self.device_combo.currentText().removeprefix("Auto: ").split(" - ")[0]
        self.device_label.setText(f"Will train on: {text}")


def _choose(combo: QComboBox, value, text: str | None = None) -> None:
    index = combo.findData(value)
    if index < 0:
        combo.addItem(text or str(value), value)
        index = combo.count() - 1
    combo.setCurrentIndex(index)
