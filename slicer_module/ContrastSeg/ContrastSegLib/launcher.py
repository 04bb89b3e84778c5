"""Runs the ``contrastseg`` command line in the background process, with a stop file as the stop request.

Usage (what :class:`ContrastSegLib.process.ProcessRunner` starts)::

    PythonSlicer launcher.py STOP_FILE train IMAGE LABELS -o MODEL --events jsonl ...

Everything after ``STOP_FILE`` goes to ``napari_contrastseg.cli.main`` unchanged. A small watcher thread (in this
child process, never in Slicer) looks for ``STOP_FILE``; when it appears, it raises SIGINT in this process, which
the CLI documents as "stop after the current step and still save the model". If the file then says ``kill``, the
process exits at once. A file works the same on Windows, Linux and macOS, where sending a console signal from a
GUI application to a hidden child does not. This file imports nothing from Slicer.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time


def _watch(stop_file: str, interval: float = 0.2) -> None:
    interrupted = False
    while True:
        time.sleep(interval)
        try:
            with open(stop_file, encoding="utf-8") as f:
                request = f.read().strip()
        except OSError:
            continue
        if request == "kill":
            os._exit(130)
        if not interrupted:
            interrupted = True
            signal.raise_signal(signal.SIGINT)


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: launcher.py STOP_FILE COMMAND [ARGS...]", file=sys.stderr)
        return 2
    stop_file, cli_args = argv[0], argv[1:]
    threading.Thread(target=_watch, args=(stop_file,), daemon=True, name="contrastseg-stop-watch").start()
    try:
        try:
            from napari_contrastseg.cli import main as cli_main
        except ImportError as err:
            print(f"contrastseg: error: the napari-contrastseg package cannot be imported ({err}).", file=sys.stderr)
            return 3
        return cli_main(cli_args)
    except KeyboardInterrupt:  # a stop request that came before the CLI installed its own handler
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
