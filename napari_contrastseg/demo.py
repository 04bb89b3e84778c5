"""``contrastseg demo``: train on a bundled real sample, predict it, score never-painted voxels, draw an overlay."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .core.config import TrainConfig
from .core.data import SegmentationData
from .core.errors import InputError
from .core.files import atomic_path
from .core.image_io import ImageFile, write_image
from .core.metrics import dice_per_class
from .core.trainer import train
from .progress import consume_events
from .samples import load_sample
from .samples.protocol import unpainted_mask

#: What the demo writes into its folder; the marker says the folder's files are the demo's own to replace.
DEMO_FILES = ("model.safetensors", "prediction.nii.gz", "overlay.png")
MARKER = ".contrastseg-demo"


def run_demo(
    sample: str,
    output: Path,
    method: str = "supervised",
    time_budget: float | None = None,
    iterations: int | None = None,
    device: str = "auto",
    seed: int = 0,
    overwrite: bool = False,
) -> int:
    """Write ``model.safetensors``, ``prediction.nii.gz`` and ``overlay.png`` to ``output``; print Dice.

    Trains with the engine's defaults (its time budget) unless ``time_budget`` or ``iterations`` is given. Files
    in ``output`` are replaced only when an earlier demo wrote them (a marker file says so) or with ``overwrite``.
    """
    _check_folder(output, overwrite)
    s = load_sample(sample)
    config = TrainConfig(method=method, device=device, seed=seed)
    if time_budget is not None or iterations is not None:
        config.time_budget, config.iterations = time_budget, iterations
    print(
        f"sample {s.name}: image {s.image.shape}, {len(s.class_names)} classes, painted slices along axis "
        f"{s.painted_axis}; training {method}"
    )
    data = SegmentationData(s.image, s.painted, s.class_names, s.spacing)
    start = time.perf_counter()
    finished = consume_events(train(data, config), jsonl=False)
    if finished is None:
        return 1
    model = finished.model
    trained = time.perf_counter() - start
    result = model.predict(s.image, probabilities=False)
    output.mkdir(parents=True, exist_ok=True)
    (output / MARKER).write_text("Files written by 'contrastseg demo'; a later demo may replace them.\n")
    model.save(output / "model.safetensors")
    like = ImageFile(s.image, s.affine, s.spacing)
    write_image(output / "prediction.nii.gz", result.labels, like=like)
    mask = unpainted_mask(s.painted, s.painted_axis)
    classes = list(range(2, len(s.class_names) + 1))
    scores = dice_per_class(result.labels, s.ground_truth, classes, mask)
    estimate = "" if finished.estimate is None else f", estimated Dice {finished.estimate.mean:.3f}"
    print(
        f"trained in {trained:.1f} s ({finished.iteration} iterations, {finished.stop_reason}{estimate}); "
        "Dice on never-painted voxels (slices the model never saw painted):"
    )
    for c, d in scores.items():
        print(f"  {s.class_names[c - 1]:<16} {d:.3f}")
    mean = float(np.nanmean(list(scores.values())))
    print(f"  {'mean':<16} {mean:.3f}")
    figure = write_overlay(output / "overlay.png", s.image, s.ground_truth, result.labels, mask, s.painted_axis)
    print(f"wrote {output / 'model.safetensors'}, {output / 'prediction.nii.gz'}, {figure}")
    return 0


def _check_folder(output: Path, overwrite: bool) -> None:
    """Refuse to replace files in ``output`` that an earlier demo did not write (unless ``overwrite``)."""
    if overwrite or (output / MARKER).is_file():
        return
    present = [name for name in DEMO_FILES if (output / name).exists()]
    if present:
        raise InputError(
            f"{output} already holds {', '.join(present)}, not written by this demo; choose another folder with "
            "-o, or pass --overwrite to replace them."
        )


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
    with atomic_path(path) as tmp:
        iio.imwrite(tmp, (row * 255).astype(np.uint8), extension=".png")
    return path
