"""``contrastseg demo``: train on a bundled real sample, predict it, score never-painted voxels, draw an overlay."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .core.config import TrainConfig
from .core.data import SegmentationData
from .core.image_io import ImageFile, write_image
from .core.metrics import dice_per_class
from .core.trainer import train
from .progress import consume_events
from .samples import load_sample
from .samples.protocol import unpainted_mask

DEMO_CONFIG = {"iterations": 600, "patch_size": 64, "batch_size": 4}


def run_demo(
    sample: str,
    output: Path,
    method: str = "supervised",
    iterations: int | None = None,
    device: str = "auto",
    seed: int = 0,
) -> int:
    """Write ``model.safetensors``, ``prediction.nii.gz`` and ``overlay.png`` to ``output``; print Dice."""
    s = load_sample(sample)
    config = TrainConfig(**{**DEMO_CONFIG, "method": method, "device": device, "seed": seed})
    config.iterations = iterations or config.iterations
    print(
        f"sample {s.name}: image {s.image.shape}, {len(s.class_names)} classes, painted slices along axis "
        f"{s.painted_axis}; training {method} for {config.iterations} iterations"
    )
    data = SegmentationData(s.image, s.painted, s.class_names, s.spacing)
    start = time.perf_counter()
    finished = consume_events(train(data, config), jsonl=False, total=config.iterations)
    if finished is None:
        return 1
    model = finished.model
    trained = time.perf_counter() - start
    result = model.predict(s.image, probabilities=False)
    output.mkdir(parents=True, exist_ok=True)
    model.save(output / "model.safetensors")
    like = ImageFile(s.image, s.affine, s.spacing)
    write_image(output / "prediction.nii.gz", result.labels, like=like)
    mask = unpainted_mask(s.painted, s.painted_axis)
    classes = list(range(2, len(s.class_names) + 1))
    scores = dice_per_class(result.labels, s.ground_truth, classes, mask)
    print(f"trained in {trained:.1f} s; Dice on never-painted voxels (slices the model never saw painted):")
    for c, d in scores.items():
        print(f"  {s.class_names[c - 1]:<16} {d:.3f}")
    mean = float(np.nanmean(list(scores.values())))
    print(f"  {'mean':<16} {mean:.3f}")
    figure = write_overlay(output / "overlay.png", s.image, s.ground_truth, result.labels, mask, s.painted_axis)
    print(f"wrote {output / 'model.safetensors'}, {output / 'prediction.nii.gz'}, {figure}")
    return 0


def write_overlay(
    path: Path, image: np.ndarray, truth: np.ndarray, prediction: np.ndarray, mask: np.ndarray, axis: int
) -> Path:
    """PNG, left to right: image, ground truth, prediction, on the never-painted slice richest in foreground."""
    import imageio.v3 as iio
    from skimage.color import label2rgb

    fg = ((truth > 1) & mask).sum(axis=tuple(a for a in range(truth.ndim) if a != axis))
    index = int(np.argmax(fg))
    grey = np.take(image, index, axis=axis).astype(np.float32)
    lo, hi = np.percentile(grey, [1, 99])
    grey = np.clip((grey - lo) / max(hi - lo, 1e-6), 0, 1)
    panels = [np.dstack([grey] * 3)]
    for labels in (truth, prediction):
        panels.append(label2rgb(np.take(labels, index, axis=axis) - 1, grey, alpha=0.45, bg_label=0))
    panels = [np.rot90(p) for p in panels]  # superior up for axial slices of RAS volumes
    gap = np.ones((panels[0].shape[0], 4, 3))
    row = np.concatenate([panels[0], gap, panels[1], gap, panels[2]], axis=1)
    row = np.kron(row, np.ones((3, 3, 1)))  # 3x larger
    iio.imwrite(path, (row * 255).astype(np.uint8))
    return path
