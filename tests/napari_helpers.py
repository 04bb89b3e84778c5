"""What the napari tests share: a display check, fast settings, waiting for a run; fixtures are in conftest.py."""

from __future__ import annotations

import os
import sys

import pytest

from napari_contrastseg._napari.settings import TrainingSettings

needs_display = pytest.mark.skipif(
    sys.platform.startswith("linux")
    and not os.environ.get("DISPLAY")
    and os.environ.get("QT_QPA_PLATFORM") not in ("offscreen", "minimal"),
    reason="GUI test: needs a display (run under xvfb-run)",
)

#: A tiny network and few steps: a run takes a few seconds on a 2-core CPU.
FAST = TrainingSettings(
    iterations=8, batch_size=2, patch_size=32, network="small", preview_seconds=0.2, device="cpu", cpu_threads=1
)
TIMEOUT_MS = 90_000


def wait_idle(widget, qtbot) -> None:
    """Until the training (and its whole-image prediction) has ended."""
    qtbot.waitUntil(lambda: not widget.is_running, timeout=TIMEOUT_MS)
    qtbot.wait(20)
