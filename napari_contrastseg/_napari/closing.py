"""Notice when the dock widget or its viewer window closes, so that training can stop cleanly."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from qtpy.QtCore import QEvent, QObject, QTimer
from qtpy.QtWidgets import QWidget


class CloseWatcher(QObject):
    """Calls ``on_close`` once when ``widget`` is taken out of its dock, closed, or its window closes.

    napari un-parents a plugin widget when its dock is closed, and closes (then deletes) the main window when the
    viewer closes. A window close the user started may still be refused (napari can ask first): that case is checked
    once the event has been handled.
    """

    def __init__(self, widget: QWidget, on_close: Callable[[], None]) -> None:
        super().__init__(widget)
        self.widget = widget
        self.on_close = on_close
        self.window: QWidget | None = None
        self.docked = False
        self.fired = False
        widget.installEventFilter(self)

    def eventFilter(self, obj: QObject, ev: QEvent) -> bool:  # noqa: N802 - Qt API
        kind = ev.type()
        if obj is self.widget:
            if kind == QEvent.Type.ParentChange:
                if self.widget.parent() is None and self.docked:
                    self.fire()  # the dock widget was closed
                elif self.widget.parent() is not None:
                    self.docked = True
                    QTimer.singleShot(0, self.watch_window)  # the dock joins the main window a moment later
            elif kind == QEvent.Type.Show:
                self.watch_window()
            elif kind == QEvent.Type.Close:
                self.fire()
        elif obj is self.window and kind == QEvent.Type.Close:
            if ev.spontaneous():
                QTimer.singleShot(0, self._after_window_close)
            else:
                self.fire()
        return False

    def watch_window(self) -> None:
        """Follow the widget's current top-level window."""
        window = self.widget.window()
        if self.fired or window is self.widget or window is self.window:
            return
        if self.window is not None:
            self.window.removeEventFilter(self)
        self.window = window
        window.installEventFilter(self)

    def _after_window_close(self) -> None:
        if self.window is not None and not self.window.isVisible():
            self.fire()

    def fire(self) -> None:
        if self.fired:
            return
        self.fired = True
        self.release()
        self.on_close()

    def release(self) -> None:
        """Stop watching."""
        for obj in (self.window, self.widget):
            if obj is not None:
                with contextlib.suppress(RuntimeError):  # already deleted
                    obj.removeEventFilter(self)
        self.window = None
