"""Running the Qt event loop until something happened, for scripts that drive the real widget."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(condition: Callable[[], bool], timeout: float, step: float = 0.005) -> bool:
    """Process Qt events until ``condition()`` holds (True) or ``timeout`` seconds pass (False)."""
    from qtpy.QtWidgets import QApplication

    app = QApplication.instance()
    end = time.perf_counter() + timeout
    while time.perf_counter() < end:
        app.processEvents()
        if condition():
            return True
        time.sleep(step)
    return False
