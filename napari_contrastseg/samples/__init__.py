"""Bundled sample volumes: small real crops with ground truth and a protocol painting."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import nibabel as nib
import numpy as np

SAMPLE_NAMES: tuple[str, ...] = ("colin27-deep", "icbm-tissue")


@dataclass
class Sample:
    """One bundled sample; label arrays use painted values (0 unpainted, 1 background, c+1 class c)."""

    name: str
    image: np.ndarray  # float32
    painted: np.ndarray  # uint8
    ground_truth: np.ndarray  # uint8
    spacing: tuple[float, ...]
    affine: np.ndarray  # 4x4 voxel -> RAS mm
    class_names: list[str]  # "background" first
    painted_axis: int
    paths: dict[str, Path] = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)


def sample_dir(name: str) -> Path:
    """Folder holding the files of sample ``name``."""
    if name not in SAMPLE_NAMES:
        raise ValueError(f"unknown sample {name!r}; valid names: {', '.join(SAMPLE_NAMES)}")
    folder = resources.files(__name__) / "data" / name
    return Path(str(folder))


def load_sample(name: str) -> Sample:
    """Load a bundled sample by name (see ``SAMPLE_NAMES``)."""
    folder = sample_dir(name)
    metadata = json.loads((folder / "sample.json").read_text())
    paths = {
        "image": folder / "image.nii.gz",
        "painted": folder / "painted.nii.gz",
        "ground_truth": folder / "ground_truth.nii.gz",
        "metadata": folder / "sample.json",
        "licence": folder / metadata["licence"]["file"],
    }
    image = nib.load(paths["image"])
    return Sample(
        name=name,
        image=image.get_fdata(dtype=np.float32),
        painted=_labels(paths["painted"]),
        ground_truth=_labels(paths["ground_truth"]),
        spacing=tuple(float(z) for z in image.header.get_zooms()[:3]),
        affine=np.asarray(image.affine, dtype=float),
        class_names=list(metadata["class_names"]),
        painted_axis=int(metadata["painted_axis"]),
        paths=paths,
        metadata=metadata,
    )


def _labels(path: Path) -> np.ndarray:
    """Integer label volume stored without scaling."""
    return np.asarray(nib.load(path).dataobj, dtype=np.uint8)
