"""napari with the bundled sample and the dock widget: paint, press Train, look, paint more, Continue.

python examples/napari_dock.py                     # opens the window; close it when done
xvfb-run -a python examples/napari_dock.py --train 5 --quit   # trains 5 s and closes (CI runs this)
"""

from __future__ import annotations

import argparse

import napari

from napari_contrastseg._napari.qt_wait import wait_until


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=float, metavar="SECONDS", help="press Train with this time budget")
    parser.add_argument("--quit", action="store_true", help="close napari once the training and prediction end")
    args = parser.parse_args()
    viewer = napari.Viewer()
    viewer.open_sample("napari-contrastseg", "colin27-deep")  # File > Open Sample > ContrastSeg
    _, widget = viewer.window.add_plugin_dock_widget("napari-contrastseg", "Scribble segmentation")
    if args.train:
        widget.apply_settings(widget.read_settings().copy(time_budget=args.train))
        widget.train()  # the Train button
        wait_until(lambda: not widget.is_running, 600)
        print(widget.status_label.text(), widget.model_panel.info.text(), sep="\n")
    if args.quit:
        widget.shutdown()
        viewer.close()
    else:
        napari.run()


if __name__ == "__main__":
    main()
