"""Every door's example in ``examples/`` runs on the bundled samples (with a quick budget), so none can rot."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
pytestmark = pytest.mark.slow


def _run(*command: str, timeout: int = 600) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, cwd=EXAMPLES.parent)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def test_python_api(tmp_path):
    out = _run(sys.executable, str(EXAMPLES / "python_api.py"), "--time-budget", "8", "--out", str(tmp_path))
    assert "mean Dice on never-painted slices" in out and (tmp_path / "model.safetensors").is_file()
    assert "applied to another image" in out


def test_cli_on_a_folder():
    out = _run("bash", str(EXAMPLES / "cli_folder.sh"), "8")
    assert "colin27-deep_labels.nii.gz" in out and "icbm-tissue_labels.nii.gz" in out
    assert "along axis" in out  # contrastseg suggest named slices


def test_torchrun():
    pytest.importorskip("torch.distributed")
    assert '"iterations": 10' in _run("bash", str(EXAMPLES / "torchrun.sh"), "10")


def test_napari_dock():
    pytest.importorskip("napari")
    if sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
        pytest.skip("needs a display (run under xvfb-run)")
    out = _run(sys.executable, str(EXAMPLES / "napari_dock.py"), "--train", "5", "--quit")
    assert "Done:" in out and "Model (trained here)" in out


def test_slicer_console():
    pytest.importorskip("slicer_core", reason="needs PyPI slicer-core")
    out = _run(sys.executable, str(EXAMPLES / "slicer_console.py"), "--time-budget", "8")
    assert "Prediction finished." in out and "background" in out
