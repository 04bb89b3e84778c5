"""The dock widget: assembles the panels over one :class:`~.state.DockState` and one :class:`~.jobs.Jobs`, shows
the status line, and owns shutdown.

Panels: layers (image, scribbles, autosave), classes, training (settings form, Train / Stop / Continue, estimated
Dice), where to paint next, and model (save, load, apply). All layer changes happen on the main thread, in handlers
of the events the workers yield; the scribbles layer is only ever read.
"""

from __future__ import annotations

import contextlib

from qtpy.QtCore import Qt, Signal
from qtpy.QtWidgets import QApplication, QComboBox, QFrame, QLabel, QScrollArea, QVBoxLayout, QWidget
from superqt import QCollapsible

from .closing import CloseWatcher
from .jobs import Jobs
from .panels.classes import ClassesPanel
from .panels.guidance import GuidancePanel
from .panels.layers import LayersPanel
from .panels.model import ModelPanel
from .panels.training import TrainingPanel
from .settings import TrainingSettings
from .state import DockState, hint


class ContrastSegWidget(QWidget):
    """Scribble segmentation dock widget (Plugins > ContrastSeg > Scribble segmentation).

    ``layers``, ``classes``, ``training``, ``guidance`` and ``model_panel`` are the panels; ``state`` what they
    share; ``jobs`` the running work. The few methods below are the buttons' actions, for scripts and tests.
    """

    #: emitted on the main thread after an event from a worker has been applied to the layers (tests, benchmarks)
    event_applied = Signal(object)

    def __init__(self, napari_viewer, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer = napari_viewer
        self.state = DockState()
        self.jobs = Jobs(napari_viewer, self)
        self.layers = LayersPanel(napari_viewer, self.state)
        self.classes = ClassesPanel(napari_viewer, self.state)
        self.training = TrainingPanel(napari_viewer, self.state, self.jobs)
        self.guidance = GuidancePanel(napari_viewer, self.state)
        self.model_panel = ModelPanel(napari_viewer, self.state, self.jobs, self.training.read_settings)
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        self._closing = False
        self._build()
        self.jobs.event_applied.connect(lambda _run, event: self.event_applied.emit(event))
        self.state.events.status.connect(self._show_status)
        for emitter in (self.state.events.image, self.state.events.scribbles, self.state.events.model):
            emitter.connect(self._show_hint)
        self._show_hint()
        self.close_watcher = CloseWatcher(self, self.shutdown)
        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)

    def _build(self) -> None:
        body = QWidget()
        column = QVBoxLayout(body)
        column.setContentsMargins(6, 6, 6, 6)
        section = QCollapsible("Model: save, load, apply to another image")
        section.addWidget(self.model_panel)
        section.expand(animate=False)
        for part in (self.layers, self.classes, self.training, self.status_label, self.guidance, section):
            column.addWidget(part)
        column.addStretch(1)
        for combo in body.findChildren(QComboBox):  # long layer or device names must not widen the dock
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

    def _show_status(self, text: str) -> None:
        self.status_label.setText(text)

    def _show_hint(self, *_args) -> None:
        """While nothing has been trained, the status line says what to do next."""
        if not self.state.training and self.state.model is None:
            self.state.status = hint(self.state)

    # ------------------------------------------------------- button actions
    def apply_settings(self, settings: TrainingSettings) -> None:
        self.training.apply_settings(settings)

    def read_settings(self) -> TrainingSettings:
        return self.training.read_settings()

    def train(self) -> bool:
        return self.training.train()

    def continue_training(self) -> bool:
        return self.training.continue_training()

    def stop(self) -> None:
        self.training.stop()

    def apply_model(self, layer_name: str | None = None) -> bool:
        return self.model_panel.apply_model(layer_name)

    @property
    def model(self):
        return self.state.model

    @property
    def is_running(self) -> bool:
        return self.jobs.running("train") is not None

    @property
    def is_applying(self) -> bool:
        return self.jobs.running("apply") is not None

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
        self.jobs.shutdown(timeout)
        for panel in (self.layers, self.training, self.model_panel):
            with contextlib.suppress(Exception):  # the viewer may already be gone
                panel.release()
        self.close_watcher.release()
        app = QApplication.instance()
        if app is not None:
            with contextlib.suppress(TypeError, RuntimeError):
                app.aboutToQuit.disconnect(self.shutdown)
