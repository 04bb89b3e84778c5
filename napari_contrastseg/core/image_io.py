"""Reading and writing images and label arrays: TIFF, NIfTI (geometry kept) and NumPy ``.npy``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import FileFormatError

SUFFIXES = (".tif", ".tiff", ".nii", ".nii.gz", ".npy")


@dataclass
class ImageFile:
    """An array read from disk with its geometry: ``affine`` (4x4 voxel -> world, NIfTI only) and ``spacing``."""

    array: np.ndarray
    affine: np.ndarray | None = None
    spacing: tuple[float, ...] | None = None
    header: object | None = None  # NIfTI header, reused when writing results on the same grid


def image_suffix(path: str | Path) -> str:
    """The format suffix of ``path`` (``.nii.gz`` counts as one); raises :class:`FileFormatError` if unsupported."""
    name = str(path).lower()
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return suffix
    raise FileFormatError(f"{path}: unknown image format; supported: {', '.join(SUFFIXES)}.")


def read_image(path: str | Path) -> ImageFile:
    """Read an image or label file. NIfTI intensities are scaled by the header; label files stay integer."""
    path = Path(path)
    suffix = image_suffix(path)
    if not path.is_file():
        raise FileFormatError(f"No file at {path}.")
    try:
        if suffix in (".nii", ".nii.gz"):
            import nibabel as nib

            img = nib.load(path)
            array = np.asanyarray(img.dataobj)
            zooms = tuple(float(z) for z in img.header.get_zooms()[: min(3, array.ndim)])
            return ImageFile(array, np.asarray(img.affine, dtype=float), zooms, img.header)
        if suffix == ".npy":
            return ImageFile(np.load(path, allow_pickle=False))
        import tifffile

        return ImageFile(tifffile.imread(path))
    except FileFormatError:
        raise
    except Exception as err:  # noqa: BLE001 - every reader failure becomes one clear message
        raise FileFormatError(f"Could not read {path} as {suffix}: {err}") from err


def write_image(path: str | Path, array: np.ndarray, like: ImageFile | None = None) -> Path:
    """Write ``array`` to ``path`` in the format its suffix names; NIfTI output reuses ``like``'s geometry."""
    path = Path(path)
    suffix = image_suffix(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix in (".nii", ".nii.gz"):
        import nibabel as nib

        affine = like.affine if like is not None and like.affine is not None else _spacing_affine(like)
        img = nib.Nifti1Image(array, affine)
        if like is not None and like.header is not None:
            img.header.set_qform(*like.header.get_qform(coded=True))
            img.header.set_sform(*like.header.get_sform(coded=True))
        img.header.set_data_dtype(array.dtype)
        img.header.set_slope_inter(1, 0)
        nib.save(img, path)
    elif suffix == ".npy":
        np.save(path, array, allow_pickle=False)
    else:
        import tifffile

        tifffile.imwrite(path, array, compression="zlib")
    return path


def _spacing_affine(like: ImageFile | None) -> np.ndarray:
    affine = np.eye(4)
    if like is not None and like.spacing is not None:
        for i, s in enumerate(like.spacing[:3]):
            affine[i, i] = s
    return affine
