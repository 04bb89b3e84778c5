"""The 3D Slicer module from Slicer's Python console (paste it there, or run it with PyPI's slicer-core).

In Slicer, with the module installed (docs/slicer.md): it loads the bundled sample, paints 3 coronal slices as
segments, trains in a background process, and writes the predicted segments into a new segmentation. Outside
Slicer (``pip install slicer-core``; CI runs ``python examples/slicer_console.py --time-budget 10``) the same
code runs on a bare MRML scene.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

MODULE = Path(__file__).resolve().parents[1] / "slicer_module" / "ContrastSeg"
sys.path[:0] = [str(MODULE), str(MODULE / "Testing" / "Python")]

import ContrastSegTestFlows as flows  # noqa: E402  (the module's own test scenes)
import slicer  # noqa: E402
from ContrastSegLib import ContrastSegLogic, TrainingOptions  # noqa: E402


def main(time_budget: float) -> None:
    scene = getattr(slicer, "mrmlScene", None) or flows.new_scene()
    volume, painted, _truth, names = flows.sample_scene(scene)  # sample volume + painted segments
    logic = ContrastSegLogic()
    print(logic.start_training(volume, painted, TrainingOptions(time_budget=time_budget)))
    ended = logic.wait(timeout=900, on_event=lambda e: e["kind"] == "estimate" and print("estimated Dice", e["mean"]))
    print(ended["message"])
    logic.start_prediction(volume)
    print(logic.wait(timeout=900)["message"])
    output = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "ContrastSeg prediction")
    logic.apply_prediction(output, volume, painted)
    segmentation = output.GetSegmentation()
    print([segmentation.GetNthSegment(n).GetName() for n in range(segmentation.GetNumberOfSegments())], names)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--time-budget", type=float, default=60.0)
    main(parser.parse_known_args()[0].time_budget)
