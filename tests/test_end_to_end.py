"""End to end on a bundled real sample: supervised training on 3 painted slices, Dice on never-painted voxels."""

from __future__ import annotations

import numpy as np
import pytest

from napari_contrastseg.core.config import TrainConfig
from napari_contrastseg.core.data import SegmentationData
from napari_contrastseg.core.metrics import dice_per_class
from napari_contrastseg.core.trainer import train_model
from napari_contrastseg.samples import load_sample
from napari_contrastseg.samples.protocol import unpainted_mask

# Measured on the 2-core CPU: 0.396 with the GroupNorm default, the same under load (iterations only: with the default
# time budget as well the run depended on the machine's speed, 0.344 to 0.409); the 0.50 bound of the BatchNorm
# default no longer holds (docs/benchmarks.md reports the loss); the bound leaves room for platform differences.
MIN_MEAN_DICE = 0.35


@pytest.mark.slow
def test_supervised_on_colin27_deep_reaches_stated_dice():
    s = load_sample("colin27-deep")
    config = TrainConfig(iterations=600, time_budget=None, patch_size=64, batch_size=4, device="cpu", seed=0)
    model = train_model(SegmentationData(s.image, s.painted, s.class_names, s.spacing), config)
    pred = model.predict(s.image, probabilities=False).labels
    mask = unpainted_mask(s.painted, s.painted_axis)
    assert not (mask & (s.painted > 0)).any()  # scored voxels were never painted
    scores = dice_per_class(pred, s.ground_truth, list(range(2, len(s.class_names) + 1)), mask)
    mean = float(np.nanmean(list(scores.values())))
    print(f"mean Dice on never-painted voxels: {mean:.3f}")
    assert mean >= MIN_MEAN_DICE
