"""Running the long work: one training and one model application at a time, each in a napari thread worker.

:class:`Jobs` starts workers over the event generators of ``workers/``, writes previews and whole-image
predictions into the result layers (main thread, in the handler of each event), then tells the panels through
:attr:`Jobs.event_applied`. It stops runs, and ends them all when the dock closes.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from napari.layers import Image, Labels
from napari.qt.threading import create_worker
from napari.utils.notifications import show_error, show_warning
from qtpy.QtCore import QObject, Qt, QThreadPool, Signal

from .layers import layer_named
from .results import ResultLayers
from .workers.control import RunControl


@dataclass
class Run:
    """One worker (training, or applying a model) and where its results go."""

    kind: str  # "train" or "apply"
    control: RunControl
    generator: Any
    image_name: str
    prediction_name: str
    uncertainty_name: str
    class_names: list[str]
    scribbles_name: str = ""  # the painting shown above the results
    request: Any = None  # the TrainingRequest of a training run (its preview follows the viewed slice)
    offset: int = 0  # iterations done before this run (Continue), for the loss plot
    predicting: bool = False  # training is over, the whole image is being predicted
    worker: Any = None
    slots: list = field(default_factory=list)


def contrastseg_worker(generator):
    """The worker's generator (named for napari's task list): forwards ``generator``, which :class:`Jobs` keeps
    so it can close it on shutdown."""
    yield from generator


def _abort_all(controls: list[RunControl]) -> None:
    """Last resort when the owner's C++ object is destroyed: tell running workers to end."""
    for control in controls:
        control.abort.set()


class Jobs(QObject):
    """The runs of one dock. ``event_applied(run, event)``: an event's layer changes are done (main thread);
    ``ended(run)``: a worker has ended."""

    event_applied = Signal(object, object)
    ended = Signal(object)

    def __init__(self, viewer, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.viewer = viewer
        self.results = ResultLayers(viewer)
        self.runs: dict[str, Run] = {}
        self.closing = False
        self.timings: dict[str, float] = {}
        self.preview_log: list[tuple[float, int, int | None]] = []
        self._controls: list[RunControl] = []
        self.destroyed.connect(partial(_abort_all, self._controls))

    def running(self, kind: str) -> Run | None:
        return self.runs.get(kind)

    def start(self, run: Run) -> None:
        """Start ``run``'s worker (one per kind at a time: the caller checks :meth:`running`)."""
        if run.kind == "train":
            self.timings = {"train_pressed": time.perf_counter()}
            self.preview_log = []
        worker = create_worker(contrastseg_worker, run.generator, _start_thread=False)
        run.worker = worker
        on_event, on_finished = partial(self._on_event, run), partial(self._on_worker_finished, run)
        worker.yielded.connect(on_event)
        worker.finished.connect(on_finished)
        worker.finished.connect(run.control.worker_ended.set, Qt.ConnectionType.DirectConnection)
        run.slots = [(worker.yielded, on_event), (worker.finished, on_finished)]
        self.runs[run.kind] = run
        self._controls.append(run.control)
        worker.start()

    def stop(self, kind: str) -> str | None:
        """Stop a training after its current step (weights kept, whole image still predicted), or, pressed again
        while the whole image is predicted, skip that prediction. Returns what happens, in words."""
        run = self.runs.get(kind)
        if run is None:
            return None
        if run.predicting:
            run.control.skip_prediction.set()
            return "Skipping the whole-image prediction…"
        if not run.control.stop.is_set():
            run.control.stop.set()
            return "Stopping after the current step…"
        return None

    # --------------------------------------------------------------- events
    def _on_event(self, run: Run, event) -> None:
        if self.closing:
            return
        if event.kind == "started":
            self.timings["started"] = time.perf_counter()
        elif event.kind == "predicting":
            run.predicting = True
        elif event.kind == "preview":
            scribbles = self._scribbles_of(run)
            if self.results.show_preview(event, scribbles, run.prediction_name, run.uncertainty_name):
                now = time.perf_counter()
                self.timings.setdefault("first_preview", now)
                self.preview_log.append((now, event.iteration, event.index))
        elif event.kind == "finished":
            self.timings["finished"] = time.perf_counter()
        elif event.kind == "whole_prediction":
            self._show_whole(run, event)
        elif event.kind == "failed":
            show_error(event.message)
        self.event_applied.emit(run, event)

    def _scribbles_of(self, run: Run):
        return layer_named(self.viewer, run.scribbles_name, Labels)

    def _show_whole(self, run: Run, event) -> None:
        layer = layer_named(self.viewer, run.image_name, Image)
        if layer is None:
            show_warning(f"The image '{run.image_name}' was removed; its prediction is not shown.")
            return
        names = run.class_names
        self.results.show_whole(event, layer, names, self._scribbles_of(run), run.prediction_name,
                                run.uncertainty_name)  # fmt: skip
        self.timings["whole_prediction"] = time.perf_counter()

    def _on_worker_finished(self, run: Run) -> None:
        for signal, slot in run.slots:  # the worker outlives this run in napari's task list: let go of it
            with contextlib.suppress(TypeError, RuntimeError):
                signal.disconnect(slot)
        run.slots = []
        if not run.control.done.is_set():  # the worker was told to quit (napari's task cancel) mid-run
            run.control.abort.set()
            run.generator.close()  # ends the work thread after its current step
        if self.runs.get(run.kind) is run:
            del self.runs[run.kind]
        if run.control in self._controls:
            self._controls.remove(run.control)
        if not self.closing:
            self.ended.emit(run)

    # -------------------------------------------------------------- closing
    def shutdown(self, timeout: float = 30.0) -> None:
        """Stop every worker (after its current step) and wait for it; nothing is applied afterwards."""
        self.closing = True
        runs = list(self.runs.values())
        for run in runs:
            run.control.abort.set()
            for signal, slot in run.slots:
                with contextlib.suppress(TypeError, RuntimeError):
                    signal.disconnect(slot)
        for run in runs:
            if run.worker is not None and not run.control.started.is_set():
                QThreadPool.globalInstance().tryTake(run.worker)
                continue  # not started yet: if it ever starts, it returns at once (abort is set)
            run.control.wait_ended(timeout)
            if not run.control.done.is_set():
                run.generator.close()  # the worker left it mid-way (napari's cancel); finish it here
        self.runs.clear()
