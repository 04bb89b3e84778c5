"""Screenshot of the dock widget beside a trained prediction, for the docs and the README.

    xvfb-run -a -s '-screen 0 1600x1200x24' python scripts/screenshot_napari.py   # writes docs/images/napari-widget.png

Opens the colin27-deep sample in a real napari window, trains with the widget's default settings (what a user
gets by pressing Train), shows a slice that was never painted, and saves the whole window.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from napari_contrastseg._napari.qt_wait import wait_until

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", type=Path, default=ROOT / "docs" / "images" / "napari-widget.png")
    parser.add_argument("--iterations", type=int, default=None, help="default: the widget's default")
    parser.add_argument("--size", default="1500x1080", help="window size, WIDTHxHEIGHT")
    args = parser.parse_args(argv)
    os.environ.setdefault("CONTRASTSEG_AUTOSAVE_DIR", tempfile.mkdtemp(prefix="contrastseg-shot-"))

    import napari
    from napari.settings import get_settings
    from qtpy.QtCore import Qt

    from napari_contrastseg._napari.layers import show_slice
    from napari_contrastseg._napari.settings import TrainingSettings
    from napari_contrastseg.samples import load_sample
    from napari_contrastseg.samples.protocol import unpainted_mask

    get_settings().application.gui_notification_level = "error"  # no info toasts over the picture
    width, height = (int(v) for v in args.size.lower().split("x"))
    viewer = napari.Viewer(show=True, title="napari-contrastseg")
    viewer.window.resize(width, height)
    viewer.open_sample("napari-contrastseg", "colin27-deep")
    dock, widget = viewer.window.add_plugin_dock_widget("napari-contrastseg", "Scribble segmentation")
    dock.parent().resizeDocks([dock], [480], Qt.Orientation.Horizontal)
    settings = TrainingSettings()
    if args.iterations:
        settings = settings.copy(iterations=args.iterations)
    widget.apply_settings(settings)
    wait_until(lambda: False, 0.5)
    if not widget.train():
        print("training did not start", file=sys.stderr)
        return 1
    if not wait_until(lambda: not widget.is_running, 900):
        print("training did not finish in time", file=sys.stderr)
        return 1

    # a never-painted axial slice rich in structures, superior up, the way the prediction is judged
    sample = load_sample("colin27-deep")
    mask = unpainted_mask(sample.painted, sample.painted_axis)
    richness = ((sample.ground_truth > 1) & mask).sum(axis=(0, 1))
    index = int(np.argmax(richness))
    image = viewer.layers["colin27-deep"]
    show_slice(viewer, image, 2, index)
    viewer.dims.order = (2, 1, 0)
    camera = viewer.scene.camera if hasattr(viewer, "scene") else viewer.camera
    with contextlib.suppress(Exception):  # older napari: default orientation
        camera.orientation2d = ("up", "right")
    viewer.layers["uncertainty"].visible = False
    viewer.layers["prediction"].opacity = 0.6
    viewer.layers.selection.active = viewer.layers["prediction"]
    viewer.reset_view()
    widget.guidance.next_label.setText(
        f"Showing slice {index} (never painted). 'Next slice to paint' jumps to the least certain one."
    )
    from qtpy.QtWidgets import QWidget

    for toast in dock.parent().findChildren(QWidget):  # e.g. napari's "PyQt5 is deprecated" warning
        if type(toast).__name__ == "NapariQtNotification":
            toast.close()
    wait_until(lambda: False, 1.0)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    viewer.screenshot(str(args.output), canvas_only=False, flash=False)
    print(f"wrote {args.output} (slice {index}, {widget.status_label.text()})")
    widget.shutdown()
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
