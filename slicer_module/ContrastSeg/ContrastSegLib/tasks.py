"""Background ``contrastseg`` processes of the module: start, poll their events, stop, and clean up their folders.

:class:`BackgroundTasks` knows processes and work folders; what the events mean is its subclass's business
(:class:`ContrastSegLogic` in :mod:`.logic`, through :meth:`BackgroundTasks._on_event` and ``_finish``). No Qt.
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .process import ProcessRunner, cli_command, parse_event

_PROGRESS = re.compile(r"(\d+)/(\d+)")


@dataclass
class Task:
    kind: str  # "train", "predict" or "suggest"
    runner: ProcessRunner
    work_dir: Path
    output: Path
    saved: str | None = None
    failed: str | None = None
    cancelled: bool = False
    last_progress: tuple[int, int] | None = None
    events: int = 0
    reported: bool = False  # the "ended" event was given out


class BackgroundTasks:
    """One background task at a time. ``python``: the interpreter for it (default: PythonSlicer in Slicer, else
    this Python); ``work_root``: where work folders are made (default: the system's temporary folder)."""

    def __init__(self, python: str | None = None, work_root: str | Path | None = None):
        self.python = python
        self.work_root = Path(work_root) if work_root else None
        self.task: Task | None = None
        self._work_dirs: list[Path] = []

    @property
    def busy(self) -> bool:
        return self.task is not None and self.task.runner.running

    def _on_event(self, task: Task, event: dict) -> None:
        """Note what an event says about ``task`` (subclasses)."""

    def _finish(self, task: Task) -> dict:
        """The "ended" event of a task whose process has ended (subclasses)."""
        raise NotImplementedError

    def _forget_files(self) -> None:
        """Drop references to files in the removed work folders (subclasses)."""

    def poll(self) -> list[dict]:
        """Events since the last call, as dicts with a "kind".

        From training: the CLI's events ("started", "step", "preview", "checkpoint", "finished", "failed",
        "saved"). From prediction: {"kind": "progress", "done", "total"}. Lines that are not events:
        {"kind": "log", "text"}. When the process has ended, a last {"kind": "ended", "task", "ok", "cancelled",
        "message", "returncode"}.
        """
        task = self.task
        if task is None or task.reported:
            return []
        out = []
        for line in task.runner.poll():
            event = parse_event(line)
            if event is None:
                out.append({"kind": "log", "text": line})
                continue
            task.events += 1
            self._on_event(task, event)
            out.append(event)
        if task.kind == "predict" and task.runner.running:
            progress = self._prediction_progress(task)
            if progress is not None:
                out.append({"kind": "progress", "done": progress[0], "total": progress[1]})
        if not task.runner.running:  # ended by itself, or killed by stop() since the last poll
            task.reported = True
            out.append(self._finish(task))
        return out

    def stop(self, grace_seconds: float = 20.0) -> None:
        """Training: stop after the current step and keep the model. A second call, or prediction: end now."""
        if not self.busy:
            return
        if self.task.kind == "predict":
            self.task.runner.kill()
        else:
            self.task.runner.stop(grace_seconds)

    def wait(self, timeout: float | None = None, interval: float = 0.2, on_event=None, idle=None) -> dict | None:
        """Poll until the running task ends (scripts and tests); returns its "ended" event.

        ``on_event`` gets every event; ``idle`` is called between polls (in Slicer: ``slicer.app.processEvents``).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            for event in self.poll():
                if on_event is not None:
                    on_event(event)
                if event["kind"] == "ended":
                    return event
            if self.task is None or self.task.reported or (deadline is not None and time.monotonic() > deadline):
                return None
            if idle is not None:
                idle()
            time.sleep(interval)

    def cleanup(self, remove_files: bool = True) -> None:
        """Kill whatever still runs and remove the work folders (module cleanup, scene close)."""
        if self.task is not None and self.task.runner.running:
            self.task.runner.kill()
        if remove_files:
            for folder in self._work_dirs:
                shutil.rmtree(folder, ignore_errors=True)
            self._work_dirs = []
            self._forget_files()

    # -- internals -----------------------------------------------------------------------------------------------

    def _new_work_dir(self, kind: str) -> Path:
        root = self.work_root
        if root is not None:
            root.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=f"ContrastSeg-{kind}-", dir=str(root) if root else None))
        self._work_dirs.append(folder)
        return folder

    def _start(self, kind: str, cli_args: list, work_dir: Path, output: Path) -> None:
        command = cli_command(cli_args, work_dir / f"{kind}.stop", self.python)
        runner = ProcessRunner(command, work_dir, stop_file=work_dir / f"{kind}.stop", name=kind)
        logging.info("ContrastSeg: starting %s", " ".join(str(a) for a in command))
        self.task = Task(kind, runner, work_dir, output)
        runner.start()

    def _prediction_progress(self, task: Task) -> tuple[int, int] | None:
        tail = task.runner.stderr_tail(400)
        found = _PROGRESS.findall(tail.splitlines()[-1]) if tail else []
        if not found:
            return None
        progress = (int(found[-1][0]), int(found[-1][1]))
        if progress == task.last_progress:
            return None
        task.last_progress = progress
        return progress

    def _remove_work_dir(self, folder: Path) -> None:
        shutil.rmtree(folder, ignore_errors=True)
        self._work_dirs = [d for d in self._work_dirs if d != folder]

    @staticmethod
    def _crash_message(what: str, task: Task) -> str:
        tail = task.runner.stderr_tail(3000)
        errors = [line for line in tail.splitlines() if "error" in line.lower()]
        detail = errors[-1] if errors else (tail.splitlines()[-1] if tail else "no output")
        return f"{what} ended unexpectedly (exit code {task.runner.returncode}): {detail}"
