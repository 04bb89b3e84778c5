"""Flags shared between the GUI thread and a worker thread."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass
class RunControl:
    """``stop``: the user pressed Stop (keep the weights, still predict the whole image).

    ``abort``: the widget or viewer is closing (end after the current step, skip the whole-image prediction, and
    yield nothing more). ``done`` is set by the worker when it has fully ended, whatever the reason.
    """

    stop: threading.Event = field(default_factory=threading.Event)
    abort: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)

    def is_set(self) -> bool:
        """The trainer's cancel flag: stop or abort."""
        return self.stop.is_set() or self.abort.is_set()

    def wait_done(self, timeout: float) -> bool:
        return self.done.wait(timeout)


class Aborted(Exception):
    """Raised inside a worker (e.g. from a progress callback) to end work early when the widget closes."""
