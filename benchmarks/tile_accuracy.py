"""Does the inference tile size change accuracy? Train on the bundled colin27-deep crop, predict with several tiles.

Usage: python benchmarks/tile_accuracy.py [--norm group]   (about 1 minute on a 2-core CPU; prints a markdown table)
"""

from __future__ import annotations

import argparse

import numpy as np

from napari_contrastseg.core.config import NORMS, NetworkConfig, TrainConfig
from napari_contrastseg.core.data import SegmentationData
from napari_contrastseg.core.metrics import dice_per_class
from napari_contrastseg.core.trainer import train_model
from napari_contrastseg.samples import load_sample
from napari_contrastseg.samples.protocol import unpainted_mask


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--norm", choices=NORMS, default="batch", help="the U-Net's normalisation layer")
    norm = parser.parse_args().norm
    s = load_sample("colin27-deep")
    data = SegmentationData(s.image, s.painted, s.class_names, s.spacing)
    config = TrainConfig(iterations=400, patch_size=64, device="cpu", network=NetworkConfig(norm=norm))
    model = train_model(data, config)
    mask = unpainted_mask(s.painted, s.painted_axis)
    classes = list(range(2, len(s.class_names) + 1))
    print("| tile (px) | overlap | mean Dice, never-painted slices |\n|---|---|---|")
    for tile in (64, 96, 128):
        for overlap in (0.25, 0.5):
            pred = model.predict(s.image, tile_size=tile, overlap=overlap, probabilities=False).labels
            dice = np.nanmean(list(dice_per_class(pred, s.ground_truth, classes, mask).values()))
            print(f"| {tile} | {overlap} | {dice:.3f} |", flush=True)


if __name__ == "__main__":
    main()
