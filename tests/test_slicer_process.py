"""Slicer module: the background process runner (polled, never blocking) and how it ends process trees.

Needs PyPI's ``slicer-core`` only because ``ContrastSegLib`` imports Slicer's classes; the runner itself is plain
Python.
"""

from __future__ import annotations

import os
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("slicer_core", reason="needs PyPI slicer-core (Slicer's MRML and Segmentations logic)")

MODULE_DIR = Path(__file__).resolve().parents[1] / "slicer_module" / "ContrastSeg"
if str(MODULE_DIR) not in sys.path:
    sys.path.insert(0, str(MODULE_DIR))

from ContrastSegLib import messages  # noqa: E402
from ContrastSegLib.process import ProcessRunner, cli_command, parse_event, python_executable  # noqa: E402

posix_only = pytest.mark.skipif(os.name != "posix", reason="checks process groups through /proc and signals")


def _script(tmp_path: Path, body: str) -> list[str]:
    path = tmp_path / "child.py"
    path.write_text(textwrap.dedent(body))
    return [sys.executable, "-u", str(path)]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie nobody reaped yet is dead for our purposes
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _wait_dead(pids, timeout=10.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [pid for pid in pids if _alive(pid)]
        if not alive:
            return []
        time.sleep(0.05)
    return alive


def test_python_executable_outside_slicer_is_this_python():
    assert python_executable() == sys.executable


def test_cli_command_runs_the_launcher_with_the_stop_file(tmp_path):
    command = cli_command(["train", "a.nii", "b.nii"], tmp_path / "stop", python="py")
    assert command[0] == "py" and command[2].endswith("launcher.py")
    assert command[3:] == [str(tmp_path / "stop"), "train", "a.nii", "b.nii"]


def test_parse_event():
    assert parse_event('{"kind": "step", "iteration": 3}') == {"kind": "step", "iteration": 3}
    assert parse_event("/tmp/x.nii -> /tmp/y.nii") is None
    assert parse_event('{"not": "an event"}') is None
    assert parse_event("{broken") is None


def test_the_estimate_texts_carry_the_trainers_note():
    from napari_contrastseg.core.events import Estimate
    from napari_contrastseg.core.holdout import estimate_note

    one_slice = np.zeros((4, 8, 8), np.uint8)
    one_slice[2, :, :4], one_slice[2, :, 4:] = 1, 2
    note = estimate_note([one_slice], None)
    event = parse_event(Estimate(12, 3.0, {"background": 0.9, "tumour": 0.8}, 0.8, True, note).to_json())
    said = messages.estimate_text(event["mean"], event["note"])
    assert said.startswith("Estimated Dice 0.80") and "only painted slice" in said
    assert "only painted slice" in messages.gain_text([(1, 0.8)], event["note"])
    added = messages.gain_text([(1, 0.8), (2, 0.85)])
    assert added == "Estimated Dice 0.85 with 2 painted slices; the last painting added +0.05."
    assert messages.estimate_text(0.8) == "Estimated Dice 0.80 (on the held-out share of the painting)"


def test_poll_returns_complete_lines_as_they_come(tmp_path):
    args = _script(
        tmp_path,
        """
        import sys, time
        for n in range(3):
            print(f"line {n}", flush=True)
            time.sleep(0.2)
        sys.stdout.write("partial")
        sys.stdout.flush()
        time.sleep(0.3)
        sys.stdout.write(" end")
    """,
    )
    runner = ProcessRunner(args, tmp_path / "work", name="lines").start()
    seen = []
    polls = 0
    while runner.running or not polls:
        seen.append(runner.poll())
        polls += 1
        time.sleep(0.05)
    seen.append(runner.poll())
    lines = [line for batch in seen for line in batch]
    assert lines == ["line 0", "line 1", "line 2", "partial end"]
    assert sum(1 for batch in seen if batch) >= 2, "lines should arrive over several polls, not all at the end"
    assert runner.returncode == 0


def test_stderr_tail_keeps_last_progress_state(tmp_path):
    args = _script(
        tmp_path,
        """
        import sys
        sys.stderr.write("x:  10%|# | 1/10\\rx:  50%|### | 5/10\\rx: 100%|#####| 10/10\\n")
        sys.stderr.write("done\\n")
    """,
    )
    runner = ProcessRunner(args, tmp_path / "work", name="tail").start()
    runner.wait(timeout=30)
    assert runner.stderr_tail().splitlines() == ["x: 100%|#####| 10/10", "done"]


@posix_only
def test_kill_ends_the_whole_process_tree(tmp_path):
    args = _script(
        tmp_path,
        """
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        print(child.pid, flush=True)
        time.sleep(120)
    """,
    )
    runner = ProcessRunner(args, tmp_path / "work", name="tree").start()
    lines = []
    deadline = time.monotonic() + 30
    while not lines and time.monotonic() < deadline:
        lines = runner.poll()
        time.sleep(0.05)
    grandchild = int(lines[0])
    assert _alive(runner.pid) and _alive(grandchild)
    t0 = time.monotonic()
    runner.kill()
    assert _wait_dead([runner.pid, grandchild]) == []
    assert time.monotonic() - t0 < 10
    assert not runner.running and runner.killed


@posix_only
def test_stop_escalates_to_kill_after_the_grace_period(tmp_path):
    """A child that ignores the stop request (this one does not run the launcher) is killed once grace is over."""
    args = _script(
        tmp_path,
        """
        import signal, time
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("ready", flush=True)
        time.sleep(120)
    """,
    )
    runner = ProcessRunner(args, tmp_path / "work", name="stubborn").start()
    while not runner.poll():
        time.sleep(0.05)
    runner.stop(grace_seconds=0.5)
    assert runner.stop_file.read_text() == "stop"
    assert runner.wait(timeout=20) is not None
    assert runner.killed and runner.returncode != 0
    assert _wait_dead([runner.pid]) == []


def test_launcher_passes_arguments_to_the_cli(tmp_path):
    """``launcher.py STOP_FILE ARGS`` runs ``contrastseg ARGS`` (here ``--version``) in a new process."""
    command = cli_command(["--version"], tmp_path / "work" / "x.stop")
    runner = ProcessRunner(command, tmp_path / "work", name="version").start()
    lines = []
    deadline = time.monotonic() + 60
    while runner.running and time.monotonic() < deadline:
        lines += runner.poll()
        time.sleep(0.05)
    lines += runner.poll()
    assert runner.returncode == 0
    assert any(line.startswith("contrastseg ") for line in lines), lines
