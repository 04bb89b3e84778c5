"""Writers for labels and image layers: NIfTI keeps the source's affine and header, TIFF keeps the spacing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def write_labels(path: str, data: Any, meta: dict) -> list[str]:
    """npe2 single-layer writer for labels (smallest unsigned integer type that holds them)."""
    array = np.asarray(data)
    top = int(array.max()) if array.size else 0
    dtype = np.uint8 if top < 2**8 else np.uint16 if top < 2**16 else np.uint32
    if array.size and array.min() < 0:
        dtype = np.int32
    return [str(write_array(path, array.astype(dtype, copy=False), meta))]


def write_image(path: str, data: Any, meta: dict) -> list[str]:
    """npe2 single-layer writer for (single-scale) images."""
    if meta.get("multiscale"):
        data = data[0]
    array = np.asarray(data)
    if array.dtype == np.float64:
        array = array.astype(np.float32)
    return [str(write_array(path, array, meta))]


def write_array(path: str | Path, array: np.ndarray, meta: dict) -> Path:
    """Write ``array`` with the geometry in a layer's ``meta`` (``metadata`` affine/header, else ``scale``)."""
    from ..core.image_io import ImageFile, image_suffix
    from ..core.image_io import write_image as core_write

    path = Path(path)
    suffix = image_suffix(path)
    geometry = meta.get("metadata") or {}
    scale = tuple(float(s) for s in (meta.get("scale") if meta.get("scale") is not None else [1.0] * array.ndim))
    spacing = tuple(geometry.get("spacing") or scale)[: min(3, array.ndim)]
    if suffix in (".tif", ".tiff"):
        return _write_tiff(path, array, spacing)
    header = geometry.get("nifti_header")
    affine = geometry.get("affine")
    if header is not None and tuple(header.get_data_shape()[:3]) != array.shape[:3]:
        header, affine = None, None  # another grid: keep only the spacing
    like = ImageFile(array, None if affine is None else np.asarray(affine, dtype=float), spacing, header)
    return core_write(path, array, like=like)


def _write_tiff(path: Path, array: np.ndarray, spacing: tuple[float, ...]) -> Path:
    """TIFF with the voxel size: ImageJ ``spacing`` (first axis) and resolution (last two axes) for 3D volumes."""
    import tifffile

    path.parent.mkdir(parents=True, exist_ok=True)
    if array.ndim in (2, 3) and array.dtype in (np.uint8, np.uint16, np.float32) and len(spacing) == array.ndim:
        ys, xs = spacing[-2], spacing[-1]
        metadata = {"axes": "ZYX" if array.ndim == 3 else "YX", "unit": "mm"}
        if array.ndim == 3:
            metadata["spacing"] = spacing[0]
        tifffile.imwrite(path, array, imagej=True, resolution=(1.0 / xs, 1.0 / ys), metadata=metadata)  # (x, y)
    else:
        tifffile.imwrite(path, array, compression="zlib", metadata={"spacing": list(spacing)})
    return path


def read_tiff_spacing(path: str | Path) -> tuple[float, ...] | None:
    """The voxel size stored by :func:`_write_tiff` (ImageJ files), or None."""
    import tifffile

    with tifffile.TiffFile(path) as tif:
        ij = tif.imagej_metadata
        page = tif.pages[0]
        if not ij:
            return None
        xres = page.tags["XResolution"].value
        yres = page.tags["YResolution"].value
        yx = (yres[1] / yres[0], xres[1] / xres[0])
        return (float(ij["spacing"]), *yx) if "spacing" in ij else yx
