"""Train in a real napari viewer never imports triton (its LLVM crashes napari on Mesa displays, issue 18).

The probe (``scripts/check_napari_train.py``, also the by-hand check with PyPI's default torch) runs in a fresh
Python process, with a stand-in ``triton`` package on the path that records being imported: PyTorch's optimiser
imports ``torch._dynamo``, which imports any triton it finds, so without the guard the stand-in is imported at the
first training step (checked below by the control run).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("napari")

needs_display = pytest.mark.skipif(
    sys.platform.startswith("linux")
    and not os.environ.get("DISPLAY")
    and os.environ.get("QT_QPA_PLATFORM") not in ("offscreen", "minimal"),
    reason="GUI test: needs a display (run under xvfb-run)",
)
pytestmark = [pytest.mark.gui, needs_display]

#: Opens a viewer with the sample, docks the widget, trains (preview + whole-image prediction) and applies the model.
CHECK = Path(__file__).resolve().parents[1] / "scripts" / "check_napari_train.py"

FAKE_TRITON = "import os\nopen(os.environ['TRITON_MARK'], 'w').close()\nraise ImportError('stand-in triton')\n"


def _probe(tmp_path, *command: str) -> tuple[subprocess.CompletedProcess, bool]:
    package = tmp_path / "site" / "triton"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(FAKE_TRITON)
    mark = tmp_path / "triton-was-imported"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), os.environ.get("PYTHONPATH", "")]),
        "TRITON_MARK": str(mark),
        "CONTRASTSEG_AUTOSAVE_DIR": str(tmp_path / "autosave"),
    }
    done = subprocess.run([sys.executable, *command], env=env, capture_output=True, text=True, timeout=300)
    return done, mark.exists()


def test_training_and_applying_in_napari_never_import_triton(tmp_path):
    done, imported = _probe(tmp_path, str(CHECK))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "preview" in done.stdout and "whole_prediction" in done.stdout
    assert "triton imported: False" in done.stdout
    assert not imported, "triton was imported into the napari process"


def test_without_the_guard_a_training_step_imports_triton(tmp_path):
    """The control: the stand-in is found and imported by PyTorch itself when nothing blocks it."""
    code = "import torch\nm = torch.nn.Linear(2, 2)\ntorch.optim.AdamW(m.parameters())\n"
    done, imported = _probe(tmp_path, "-c", code)
    assert done.returncode == 0, done.stderr[-3000:]
    assert imported
