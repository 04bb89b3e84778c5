"""Train, preview and apply in a real napari window, then say whether triton was imported into the process.

The by-hand check of issue 18 (napari crashed on Train with PyPI's default, triton-bundling PyTorch on Mesa
displays) and the probe of ``tests/test_napari_triton.py``. On a Linux machine without a GPU display::

    python -m venv /tmp/pypi-torch && /tmp/pypi-torch/bin/pip install torch "napari[pyqt5]" && \
        /tmp/pypi-torch/bin/pip install -e .
    xvfb-run -a /tmp/pypi-torch/bin/python scripts/check_napari_train.py --show

Exit status 0 and ``triton imported: False`` mean the run trained, previewed and applied without loading triton.
"""

from __future__ import annotations

import argparse
import sys

from napari_contrastseg._napari.settings import TrainingSettings

QUICK = TrainingSettings(
    iterations=6, batch_size=2, patch_size=32, network="small", preview_seconds=0.1, device="cpu", cpu_threads=1
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--show", action="store_true", help="show the window (an OpenGL context, as a user has)")
    parser.add_argument("--device", default="cpu", help="training device (auto uses a GPU if there is one)")
    args = parser.parse_args(argv)

    import napari
    from qtpy.QtWidgets import QApplication

    viewer = napari.Viewer(show=args.show)
    viewer.open_sample("napari-contrastseg", "colin27-deep")
    _, widget = viewer.window.add_plugin_dock_widget("napari-contrastseg", "Scribble segmentation")
    widget.apply_settings(QUICK.copy(device=args.device))
    kinds: list[str] = []
    widget.event_applied.connect(lambda event: kinds.append(event.kind))
    app = QApplication.instance()
    if not widget.train():
        return 1
    while widget.is_running:
        app.processEvents()
    if not widget.apply_model("colin27-deep"):
        return 1
    while widget.is_applying:
        app.processEvents()
    triton = sys.modules.get("triton") is not None
    print("events:", ",".join(dict.fromkeys(kinds)))
    print("triton imported:", triton)
    widget.shutdown()
    viewer.close()
    ok = {"preview", "finished", "whole_prediction"} <= set(kinds) and "failed" not in kinds
    return 0 if ok and not triton else 1


if __name__ == "__main__":
    sys.exit(main())
