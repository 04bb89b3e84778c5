"""NIfTI reader for napari (which has none): the layer's ``scale`` is the voxel spacing.

Integer files with few distinct values open as labels, everything else as an image. The file's affine, spacing and
header travel in ``layer.metadata`` so that the writer (and the widget's outputs) keep the geometry.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

NIFTI_SUFFIXES = (".nii", ".nii.gz")
#: An integer volume with at most this many distinct values is read as a labels layer.
MAX_LABEL_VALUES = 4096
NIFTI_INTENT_LABEL = 1002


def get_reader(path: str | list[str]):
    """npe2 ``napari_get_reader``: a reader function for .nii/.nii.gz paths, else None."""
    paths = [path] if isinstance(path, (str, Path)) else list(path)
    if not paths or not all(str(p).lower().endswith(NIFTI_SUFFIXES) for p in paths):
        return None
    return read_nifti


def read_nifti(path: str | list[str]) -> list[tuple]:
    """Layer data tuples, one per file."""
    paths = [path] if isinstance(path, (str, Path)) else list(path)
    return [_layer_data(Path(p)) for p in paths]


def _layer_data(path: Path) -> tuple:
    from ..core.image_io import read_image

    image = read_image(path)
    data = np.asarray(image.array)
    spacing = tuple(image.spacing or ())
    scale = (*spacing, *([1.0] * (data.ndim - len(spacing))))[: data.ndim]
    name = path.name.removesuffix(".gz").removesuffix(".nii")
    meta = {
        "name": name,
        "scale": scale,
        "metadata": geometry_metadata(image.affine, spacing, image.header, str(path)),
    }
    if is_label_volume(data, image.header):
        return data, meta, "labels"
    return data, {**meta, "colormap": "gray"}, "image"


def geometry_metadata(affine, spacing, header=None, source: str | None = None) -> dict:
    """What the writer needs to write an array on the same grid: affine (4x4), spacing, NIfTI header."""
    meta = {"affine": None if affine is None else np.asarray(affine, dtype=float), "spacing": tuple(spacing)}
    if header is not None:
        meta["nifti_header"] = header
    if source:
        meta["source_path"] = source
    return meta


def is_label_volume(data: np.ndarray, header=None) -> bool:
    """Labels: the header says so (NIfTI intent "label"), or non-negative integers with at most
    ``MAX_LABEL_VALUES`` distinct values that are piecewise constant (neighbours along the first axis differ on
    less than half of the non-zero voxels; in an intensity image they differ almost everywhere)."""
    if header is not None and int(header.get("intent_code", 0)) == NIFTI_INTENT_LABEL:
        return True
    if data.dtype == bool:
        return True
    if data.dtype.kind not in "iu" or data.size == 0 or data.min() < 0 or data.ndim < 2:
        return False
    if np.unique(data).size > MAX_LABEL_VALUES:
        return False
    changed = data[1:] != data[:-1]
    nonzero = (data[1:] != 0) | (data[:-1] != 0)
    return bool(not nonzero.any() or changed[nonzero].mean() < 0.5)
