"""A background process that is started and polled from the main thread: no threads, no Qt, no blocking reads.

The child writes its stdout and stderr to files in its work folder; :meth:`ProcessRunner.poll` reads whatever
complete lines have arrived since the last call. The module's widget calls ``poll()`` from a ``qt.QTimer``; tests
call it in a loop. The child is the leader of its own process group (POSIX: new session; Windows:
``CREATE_NEW_PROCESS_GROUP``) so that stopping it also ends anything it started.

Stopping has two stages: :meth:`ProcessRunner.stop` writes the stop file that ``launcher.py`` watches (the CLI then
finishes the current step and saves the model); if the process is still alive after ``grace_seconds``, or on a
second :meth:`stop`, :meth:`ProcessRunner.kill` ends the whole process tree (``killpg`` with SIGKILL on POSIX,
``taskkill /T /F`` on Windows).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import weakref
from collections.abc import Sequence
from pathlib import Path

LAUNCHER = Path(__file__).with_name("launcher.py")

_CREATE_NEW_PROCESS_GROUP = 0x00000200
_CREATE_NO_WINDOW = 0x08000000

_live_runners: weakref.WeakSet = weakref.WeakSet()


def python_executable() -> str:
    """The Python that runs background work: ``PythonSlicer`` inside the Slicer application, else this Python.

    Inside Slicer, ``sys.executable`` is the Slicer application itself; Slicer puts ``PythonSlicer`` on ``PATH``
    and finds it with ``shutil.which`` (``slicer.util.executePythonModule`` does the same).
    """
    try:
        from slicer import app  # noqa: F401  (only the Slicer application has it)
    except ImportError:
        return sys.executable
    found = shutil.which("PythonSlicer")
    if not found:
        raise RuntimeError("The PythonSlicer executable was not found on PATH.")
    return found


def cli_command(cli_args: Sequence[str], stop_file: str | Path, python: str | None = None) -> list[str]:
    """The command line that runs ``contrastseg <cli_args>`` through ``launcher.py`` (stop file first)."""
    return [python or python_executable(), "-u", str(LAUNCHER), str(stop_file), *[str(a) for a in cli_args]]


class ProcessRunner:
    """One child process, its output files and its stop file, all in ``work_dir``."""

    def __init__(
        self,
        args: Sequence[str],
        work_dir: str | Path,
        stop_file: str | Path | None = None,
        env: dict | None = None,
        name: str = "process",
    ):
        self.args = [str(a) for a in args]
        self.work_dir = Path(work_dir)
        self.name = name
        self.stop_file = Path(stop_file) if stop_file else self.work_dir / f"{name}.stop"
        self.stdout_path = self.work_dir / f"{name}.stdout.log"
        self.stderr_path = self.work_dir / f"{name}.stderr.log"
        self.env = env
        self.proc: subprocess.Popen | None = None
        self.returncode: int | None = None
        self.stop_requested = False
        self.killed = False
        self.started_at: float | None = None
        self._kill_deadline: float | None = None
        self._offset = 0
        self._partial = b""

    # -- lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> ProcessRunner:
        if self.proc is not None:
            raise RuntimeError("This process was already started.")
        self.work_dir.mkdir(parents=True, exist_ok=True)
        if self.stop_file.exists():
            self.stop_file.unlink()
        env = dict(os.environ if self.env is None else self.env)
        env.setdefault("PYTHONUNBUFFERED", "1")
        env.setdefault("PYTHONIOENCODING", "utf-8")
        kwargs: dict = {}
        if os.name == "nt":
            kwargs["creationflags"] = _CREATE_NEW_PROCESS_GROUP | _CREATE_NO_WINDOW
        else:
            kwargs["start_new_session"] = True  # the child leads a new process group: killpg ends the tree
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                self.args, stdin=subprocess.DEVNULL, stdout=out, stderr=err, cwd=str(self.work_dir), env=env, **kwargs
            )
        self.started_at = time.monotonic()
        _live_runners.add(self)
        return self

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.returncode is None

    def stop(self, grace_seconds: float = 20.0) -> None:
        """Ask the child to stop after its current step (it saves what it learned); kill it if it takes too long.

        A second call while the child is still running kills it at once.
        """
        if not self.running:
            return
        if self.stop_requested:
            self.kill()
            return
        self.stop_requested = True
        self.stop_file.write_text("stop", encoding="utf-8")
        self._kill_deadline = time.monotonic() + max(0.0, grace_seconds)

    def kill(self) -> None:
        """End the child and every process in its group now."""
        if self.proc is None:
            return
        self.stop_requested = True
        self.killed = self.returncode is None
        with contextlib.suppress(OSError):
            self.stop_file.write_text("kill", encoding="utf-8")
        _kill_tree(self.proc)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        self._update_returncode()

    def poll(self) -> list[str]:
        """New complete stdout lines since the last call (all remaining text once the process has ended)."""
        if self.proc is None:
            return []
        was_running = self.returncode is None
        self._update_returncode()
        if self.returncode is None and self._kill_deadline is not None and time.monotonic() > self._kill_deadline:
            self.kill()
        lines = self._read_new_lines(final=self.returncode is not None)
        if was_running and self.returncode is not None:
            _kill_tree(self.proc, leader_done=True)  # anything the child left behind in its group
            _live_runners.discard(self)
        return lines

    def wait(self, timeout: float | None = None, interval: float = 0.1) -> int | None:
        """Poll until the process ends (for scripts and tests; the widget uses its timer instead)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.running:
            if deadline is not None and time.monotonic() > deadline:
                break
            time.sleep(interval)
            self.poll()
        return self.returncode

    def stderr_tail(self, max_chars: int = 4000) -> str:
        """The end of the child's stderr (progress bars reduced to their last state)."""
        try:
            with open(self.stderr_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - max_chars))
                text = f.read().decode("utf-8", errors="replace")
        except OSError:
            return ""
        lines = [line.rstrip("\r").split("\r")[-1] for line in text.split("\n")]  # "\r": progress bar redraws
        return "\n".join(line for line in lines if line.strip())

    # -- internals -------------------------------------------------------------------------------------------

    def _update_returncode(self) -> None:
        if self.proc is not None and self.returncode is None:
            self.returncode = self.proc.poll()

    def _read_new_lines(self, final: bool) -> list[str]:
        try:
            with open(self.stdout_path, "rb") as f:
                f.seek(self._offset)
                data = f.read()
        except OSError:
            return []
        self._offset += len(data)
        data = self._partial + data
        parts = data.split(b"\n")
        self._partial = parts.pop()
        if final and self._partial:
            parts.append(self._partial)
            self._partial = b""
        return [p.decode("utf-8", errors="replace").rstrip("\r") for p in parts if p.strip()]


def parse_event(line: str) -> dict | None:
    """A JSON event line from ``--events jsonl`` as a dict, or None for any other output."""
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event if isinstance(event, dict) and "kind" in event else None


def kill_all() -> None:
    """Kill every child still running (module cleanup, application exit)."""
    for runner in list(_live_runners):
        if runner.running:
            runner.kill()


atexit.register(kill_all)


def _kill_tree(proc: subprocess.Popen, leader_done: bool = False) -> None:
    if os.name == "nt":
        if leader_done:
            return  # taskkill /T walks the tree from a live leader only
        subprocess.run(
            ["taskkill", "/F", "/T", "/PID", str(proc.pid)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            creationflags=_CREATE_NO_WINDOW,
            check=False,
        )
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # the group id is the leader's pid (start_new_session)
