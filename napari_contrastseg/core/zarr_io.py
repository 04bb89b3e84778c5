"""Zarr stores opened lazily: a plain array, or an OME-Zarr (NGFF 0.4 / 0.5) image's full-resolution level."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import FileFormatError


def import_zarr():
    """The ``zarr`` module (version 3), or a :class:`FileFormatError` saying how to install it."""
    try:
        import zarr
    except ImportError:
        zarr = None
    if zarr is None or int(zarr.__version__.split(".")[0]) < 3:
        raise FileFormatError(
            "Zarr stores need the optional dependency zarr 3 (Python 3.11 or later): "
            "pip install 'napari-contrastseg[zarr]'."
        )
    return zarr


class AxesDropped:
    """A lazy view of ``array`` without its length-1 axes ``drop`` (e.g. OME-Zarr's ``t`` and ``c`` of a 3D image).

    Indexing with a tuple of slices / integers over the remaining axes reads only what it selects.
    """

    def __init__(self, array, drop: tuple[int, ...]) -> None:
        self.array, self.drop = array, tuple(sorted(drop))
        self.shape = tuple(s for a, s in enumerate(array.shape) if a not in self.drop)
        self.dtype, self.ndim = array.dtype, len(self.shape)

    def __getitem__(self, key) -> np.ndarray:
        key = list(key) if isinstance(key, tuple) else [key]
        key += [slice(None)] * (self.ndim - len(key))
        for axis in self.drop:
            key.insert(axis, 0)
        return np.asarray(self.array[tuple(key)])

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return np.asarray(self[()], dtype=dtype)


def open_zarr(path: str | Path):
    """``(array, spacing)`` of the zarr store at ``path``: the array itself, or level 0 of an OME-Zarr image (with
    the voxel size of its spatial axes; length-1 time / channel axes are dropped). Nothing is read yet."""
    zarr = import_zarr()

    try:
        node = zarr.open(store=str(path), mode="r")
    except FileNotFoundError as err:
        raise FileFormatError(f"No zarr array or group at {path}.") from err
    if isinstance(node, zarr.Array):
        return node, _spacing(node.attrs)
    attrs = dict(node.attrs)
    multiscales = attrs.get("multiscales") or attrs.get("ome", {}).get("multiscales")
    if not multiscales:
        inside = sorted(node.array_keys())
        hint = f" It holds the arrays {', '.join(inside)}: give one as {path}/NAME." if inside else ""
        raise FileFormatError(f"{path} is a zarr group without an image (no OME-Zarr 'multiscales').{hint}")
    image = multiscales[0]
    level = image["datasets"][0]
    try:
        array = node[level["path"]]
    except KeyError as err:
        raise FileFormatError(f"{path}: the OME-Zarr level {level['path']!r} is missing.") from err
    scale = np.ones(array.ndim)
    for transforms in (level.get("coordinateTransformations", []), image.get("coordinateTransformations", [])):
        for t in transforms:
            if t.get("type") == "scale":
                scale = scale * np.asarray(t["scale"], dtype=float)
    names = image.get("axes") or list("tczyx")[-array.ndim :]  # NGFF 0.1-0.2: always t, c, z, y, x
    axes = [a if isinstance(a, dict) else {"name": a, "type": "space" if a in "zyx" else a} for a in names]
    space = [i for i, a in enumerate(axes) if a.get("type") == "space"]
    drop = tuple(i for i, a in enumerate(axes) if i not in space and array.shape[i] == 1)
    view = AxesDropped(array, drop) if drop else array
    return view, tuple(float(scale[i]) for i in space)


def write_zarr(path: str | Path, array: np.ndarray, spacing=None, affine=None) -> None:
    """Write ``array`` as a zarr array at ``path`` (replacing what is there), geometry in its attributes."""
    zarr = import_zarr()

    stored = zarr.create_array(store=str(path), data=np.asarray(array), overwrite=True)
    stored.attrs.update(geometry_attrs(spacing, affine))


def geometry_attrs(spacing, affine) -> dict:
    """JSON attributes for a voxel ``spacing`` and a 4x4 voxel-to-world ``affine`` (either may be None)."""
    attrs = {}
    if spacing is not None:
        attrs["spacing"] = [float(s) for s in spacing]
    if affine is not None:
        attrs["affine"] = np.asarray(affine, dtype=float).tolist()
    return attrs


def _spacing(attrs) -> tuple[float, ...] | None:
    spacing = attrs.get("spacing")
    return tuple(float(s) for s in spacing) if spacing is not None else None
