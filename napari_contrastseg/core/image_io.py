"""Reading and writing images and label arrays: TIFF, NIfTI and NRRD (geometry kept), PNG / JPEG, ``.npy``, zarr.

Lazily read (``lazy=True``), zarr stays on disk and big TIFFs are memory-mapped, for out-of-core prediction.
Every file is written under a temporary name and renamed when complete (:func:`.files.atomic_path`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import FileFormatError
from .files import atomic_path

SUFFIXES = (".tif", ".tiff", ".nii", ".nii.gz", ".nrrd", ".png", ".jpg", ".jpeg", ".npy", ".zarr")
#: Formats read with imageio: 2D pictures, colour ones as (H, W, 3 or 4).
PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg")
#: NRRD spaces whose first two world axes point the other way than RAS (affines here are voxel -> RAS).
LPS_SPACES = ("left-posterior-superior", "LPS")


@dataclass
class ImageFile:
    """An array read from disk with its geometry: ``affine`` (4x4 voxel -> world, NIfTI only) and ``spacing``.

    ``array`` is a NumPy array, or when read lazily a zarr array, memory map or other array-like that reads only
    what it is indexed with.
    """

    array: np.ndarray
    affine: np.ndarray | None = None
    spacing: tuple[float, ...] | None = None
    header: object | None = None  # NIfTI header or NRRD header dict, reused when writing results on the same grid


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
        if suffix == ".nrrd":
            return _read_nrrd(path)
        if suffix in PICTURE_SUFFIXES:
            import imageio.v3 as iio

            return ImageFile(np.asarray(iio.imread(path)))
        if suffix == ".npy":
            return ImageFile(np.load(path, allow_pickle=False, mmap_mode="r" if lazy else None))
        import tifffile

        return ImageFile(_tiff_memmap(path) if lazy else tifffile.imread(path))
    except FileFormatError:
        raise
    except Exception as err:  # noqa: BLE001 - every reader failure becomes one clear message
        raise FileFormatError(f"Could not read {path} as {suffix}: {err}") from err


def write_image(path: str | Path, array: np.ndarray, like: ImageFile | None = None) -> Path:
    """Write ``array`` to ``path`` in the format its suffix names; NIfTI and NRRD output reuse ``like``'s geometry.

    The file appears under its name only once complete; whether an existing file may be replaced is the caller's
    decision (:func:`.files.check_output`). JPEG is refused (lossy: label values would change); PNG takes 2D arrays.
    """
    path = Path(path)
    suffix = image_suffix(path)
    if suffix in (".jpg", ".jpeg"):
        raise FileFormatError(f"{path}: JPEG is lossy and would change the values; write .png or .tif instead.")
    with atomic_path(path) as tmp:
        _write(tmp, suffix, array, like)
    return path


def _write(path: Path, suffix: str, array: np.ndarray, like: ImageFile | None) -> None:
    if suffix in (".nii", ".nii.gz"):
        import nibabel as nib

        affine = like.affine if like is not None and like.affine is not None else _spacing_affine(like)
        img = nib.Nifti1Image(array, affine)
        if like is not None and like.header is not None and hasattr(like.header, "get_qform"):
            img.header.set_qform(*like.header.get_qform(coded=True))
            img.header.set_sform(*like.header.get_sform(coded=True))
        img.header.set_data_dtype(array.dtype)
        img.header.set_slope_inter(1, 0)
        nib.save(img, path)
    elif suffix == ".nrrd":
        _write_nrrd(path, array, like)
    elif suffix == ".png":
        import imageio.v3 as iio

        if array.ndim != 2 or array.dtype not in (np.uint8, np.uint16):
            raise FileFormatError(f"{path}: PNG holds 2D 8- or 16-bit images; write .tif for this {array.dtype} array.")
        iio.imwrite(path, array, extension=".png")
    elif suffix == ".npy":
        np.save(path, array, allow_pickle=False)
    elif suffix == ".zarr":
        from .zarr_io import write_zarr

        write_zarr(path, array, like.spacing if like else None, like.affine if like else None)
    else:
        import tifffile

        tifffile.imwrite(path, array, compression="zlib")


def _read_nrrd(path: Path) -> ImageFile:
    """An NRRD file in index order x, y, z (as NIfTI reads), its voxel size and voxel -> RAS affine."""
    import nrrd

    array, header = nrrd.read(str(path))
    directions = header.get("space directions")
    affine = spacing = None
    if directions is not None:
        rows = [np.asarray(d, dtype=float) for d in directions if d is not None and np.all(np.isfinite(d))]
        if len(rows) == 3 and array.ndim >= 3:
            matrix = np.stack(rows, axis=1)  # columns: world step of each voxel axis
            origin = np.asarray(header.get("space origin", np.zeros(3)), dtype=float)
            affine = np.eye(4)
            affine[:3, :3], affine[:3, 3] = matrix, origin
            if header.get("space") in LPS_SPACES:
                affine[:2] *= -1
            spacing = tuple(float(np.linalg.norm(r)) for r in rows)
    return ImageFile(array, affine, spacing, header)


def _write_nrrd(path: Path, array: np.ndarray, like: ImageFile | None) -> None:
    """NRRD on ``like``'s grid: its space, directions and origin (or the spacing alone)."""
    import nrrd

    header: dict = {}
    source = like.header if like is not None and isinstance(like.header, dict) else None
    if source is not None and array.ndim == 3 and source.get("space directions") is not None:
        header = {k: source[k] for k in ("space", "space directions", "space origin") if k in source}
    elif like is not None and like.spacing is not None and array.ndim == len(like.spacing):
        header = {"spacings": list(like.spacing)}
    nrrd.write(str(path), np.ascontiguousarray(array), header, compression_level=1)


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
