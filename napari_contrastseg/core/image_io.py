"""Reading and writing images and label arrays: TIFF, NIfTI (geometry kept), NumPy ``.npy`` and zarr.

Lazily read (``lazy=True``), zarr stays on disk and big TIFFs are memory-mapped, for out-of-core prediction.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import FileFormatError

SUFFIXES = (".tif", ".tiff", ".nii", ".nii.gz", ".npy", ".zarr")


@dataclass
class ImageFile:
    """An array read from disk with its geometry: ``affine`` (4x4 voxel -> world, NIfTI only) and ``spacing``.

    ``array`` is a NumPy array, or when read lazily a zarr array, memory map or other array-like that reads only
    what it is indexed with.
    """

    array: np.ndarray
    affine: np.ndarray | None = None
    spacing: tuple[float, ...] | None = None
    header: object | None = None  # NIfTI header, reused when writing results on the same grid


def image_suffix(path: str | Path) -> str:
    """The format suffix of ``path`` (``.nii.gz`` counts as one, and so does an array inside a store,
    ``x.zarr/labels``); raises :class:`FileFormatError` if unsupported."""
    if any(part.lower().endswith(".zarr") for part in Path(path).parts):
        return ".zarr"
    name = str(path).lower()
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return suffix
    raise FileFormatError(f"{path}: unknown image format; supported: {', '.join(SUFFIXES)}.")


def read_image(path: str | Path, lazy: bool = False) -> ImageFile:
    """Read an image or label file. NIfTI intensities are scaled by the header; label files stay integer.

    ``lazy``: zarr arrays stay on disk, ``.npy`` and TIFFs are memory-mapped (TIFFs through zarr where the data are
    compressed or tiled), so that nothing is loaded until indexed; NIfTI is read whole either way.
    """
    path = Path(path)
    suffix = image_suffix(path)
    if suffix != ".zarr" and not path.is_file():
        raise FileFormatError(f"No file at {path}.")
    try:
        if suffix == ".zarr":
            from .zarr_io import open_zarr

            array, spacing = open_zarr(path)
            return ImageFile(array if lazy else np.asarray(array), spacing=spacing)
        if suffix in (".nii", ".nii.gz"):
            import nibabel as nib

            img = nib.load(path)
            array = np.asanyarray(img.dataobj)
            zooms = tuple(float(z) for z in img.header.get_zooms()[: min(3, array.ndim)])
            return ImageFile(array, np.asarray(img.affine, dtype=float), zooms, img.header)
        if suffix == ".npy":
            return ImageFile(np.load(path, allow_pickle=False, mmap_mode="r" if lazy else None))
        import tifffile

        return ImageFile(_tiff_memmap(path) if lazy else tifffile.imread(path))
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
    elif suffix == ".zarr":
        from .zarr_io import write_zarr

        write_zarr(path, array, like.spacing if like else None, like.affine if like else None)
    else:
        import tifffile

        tifffile.imwrite(path, array, compression="zlib")
    return path


def _tiff_memmap(path: Path):
    """A read-only memory map of a TIFF's first image series, or a zarr view where it cannot be mapped."""
    import tifffile

    try:
        return tifffile.memmap(path, mode="r")
    except ValueError:  # compressed, tiled or otherwise not contiguous on disk
        from .zarr_io import import_zarr

        return import_zarr().open(tifffile.imread(path, aszarr=True, level=0), mode="r")


def _spacing_affine(like: ImageFile | None) -> np.ndarray:
    affine = np.eye(4)
    if like is not None and like.spacing is not None:
        for i, s in enumerate(like.spacing[:3]):
            affine[i, i] = s
    return affine
