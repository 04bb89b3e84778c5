"""The Python API: train on a bundled sample, predict it, save the model, load it back, apply it to another image.

python examples/python_api.py                      # the default budget (about a minute on a laptop CPU)
python examples/python_api.py --time-budget 10     # quicker (CI runs this)
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from napari_contrastseg.core.config import TrainConfig
from napari_contrastseg.core.data import SegmentationData
from napari_contrastseg.core.events import Estimate, Finished, Step
from napari_contrastseg.core.metrics import dice_per_class
from napari_contrastseg.core.model import load_model
from napari_contrastseg.core.trainer import train
from napari_contrastseg.samples import load_sample
from napari_contrastseg.samples.protocol import unpainted_mask


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--time-budget", type=float, default=TrainConfig().time_budget)
    parser.add_argument("--out", type=Path, default=Path(tempfile.mkdtemp(prefix="contrastseg-example-")))
    args = parser.parse_args()

    sample = load_sample("colin27-deep")  # a T1 crop, 13 classes painted on 3 axial slices (0 = unpainted)
    data = SegmentationData(sample.image, sample.painted, sample.class_names, sample.spacing)
    for event in train(data, TrainConfig(time_budget=args.time_budget)):
        if isinstance(event, Step) and event.iteration % 200 == 0:
            print(f"step {event.iteration}: loss {event.losses['total']:.3f} ({event.progress:.0%} of the budget)")
        elif isinstance(event, Estimate) and event.best:
            print(f"  estimated Dice on the held-out painting: {event.mean:.3f}")
        elif isinstance(event, Finished):
            model = event.model
            print(f"finished ({event.stop_reason}) after {event.iteration} steps in {event.seconds:.0f} s")

    prediction = model.predict(sample.image)  # .labels (1..K), .uncertainty (entropy), .probabilities (K, *S)
    scored = unpainted_mask(sample.painted, sample.painted_axis)  # slices never painted
    dice = dice_per_class(prediction.labels, sample.ground_truth, list(range(2, 14)), scored)
    print(f"mean Dice on never-painted slices: {np.nanmean(list(dice.values())):.3f}")

    path = model.save(args.out / "model.safetensors")  # safetensors + JSON metadata; loading never runs code
    again = load_model(path)
    other = np.flip(sample.image, axis=2).copy()  # "another image": the same head upside down
    labels = again.predict(other, probabilities=False).labels
    print(f"saved {path}; applied to another image: {labels.shape}, classes found {sorted(np.unique(labels))}")


if __name__ == "__main__":
    main()
