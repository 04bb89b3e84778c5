"""Flags shared between the GUI thread and a worker thread."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass
class RunControl:
    """``stop``: the user pressed Stop (keep the weights, still predict the whole image).

    ``skip_prediction``: Stop pressed again while the whole image is predicted: end without a result.
    ``abort``: the widget or viewer is closing (end after the current step, skip the whole-image prediction, and
    yield nothing more). ``started`` is set when the worker's generator begins, ``done`` when it has ended
    (whatever the reason), ``worker_ended`` when the worker thread has left it (e.g. after ``worker.quit()``).
    """

    stop: threading.Event = field(default_factory=threading.Event)
    skip_prediction: threading.Event = field(default_factory=threading.Event)
    abort: threading.Event = field(default_factory=threading.Event)
    started: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    worker_ended: threading.Event = field(default_factory=threading.Event)

    def is_set(self) -> bool:
        """The trainer's cancel flag: stop or abort."""
        return self.stop.is_set() or self.abort.is_set()

    def wait_ended(self, timeout: float) -> bool:
        """Wait (blocking) until the generator is done or the worker thread has left it; False on timeout."""
        import time

        deadline = time.monotonic() + timeout
        while not (self.done.is_set() or self.worker_ended.is_set()):
            if time.monotonic() > deadline:
                return False
            self.done.wait(0.02)
        return True


class Aborted(Exception):
    """Raised inside a worker (e.g. from a progress callback) to end work early when the widget closes."""
