"""Small helpers between napari layers and the engine's arrays (main thread only)."""

from __future__ import annotations

import numpy as np

#: metadata key marking the layers this plugin writes (never offered as scribbles).
OUTPUT_KEY = "contrastseg_output"


def same_layer(a, b) -> bool:
    """Identity of two layers, seeing through napari's plugin proxies (each access makes a new proxy)."""
    if a is None or b is None:
        return a is b
    return getattr(a, "__wrapped__", a) is getattr(b, "__wrapped__", b)


def layer_named(viewer, name: str | None, kind=None):
    """The viewer's layer called ``name`` if it exists (and is a ``kind``), else None."""
    layer = viewer.layers[name] if name and name in viewer.layers else None
    return layer if kind is None or isinstance(layer, kind) else None


def image_array(layer, lazy: bool = False) -> tuple[np.ndarray, int | None]:
    """The image (full resolution) and its channel axis (RGB last, else None).

    A NumPy array, read into memory if need be; with ``lazy``, lazy data (dask, zarr) are returned as they are.
    """
    data = layer.data[0] if getattr(layer, "multiscale", False) else layer.data
    array = data if lazy and not isinstance(data, np.ndarray) else np.asarray(data)
    return array, (-1 if getattr(layer, "rgb", False) else None)


def spatial_shape(layer) -> tuple[int, ...]:
    """Spatial shape of an image layer (without an RGB axis) or of a labels layer."""
    data = layer.data[0] if getattr(layer, "multiscale", False) else layer.data
    shape = tuple(int(s) for s in data.shape)
    return shape[:-1] if getattr(layer, "rgb", False) else shape


def geometry_kwargs(image_layer, ndim: int) -> dict:
    """scale / translate / geometry metadata for a layer on the image's grid (the trailing ``ndim`` axes)."""
    meta = dict(image_layer.metadata or {})
    geometry = {k: meta[k] for k in ("affine", "spacing", "nifti_header", "source_path") if k in meta}
    return {
        "scale": tuple(image_layer.scale)[-ndim:],
        "translate": tuple(image_layer.translate)[-ndim:],
        "metadata": geometry,
    }


def viewer_dim(viewer, layer, axis: int) -> int:
    """The viewer dimension that shows data axis ``axis`` of ``layer`` (layers are right-aligned)."""
    return viewer.dims.ndim - layer.ndim + axis


def current_index(viewer, layer, axis: int) -> int:
    """The slice of ``layer`` along data ``axis`` that the viewer's sliders point at."""
    point = np.asarray(viewer.dims.point, dtype=float)[-layer.ndim :]
    data = layer.world_to_data(point)
    size = layer.data.shape[axis] if not getattr(layer, "multiscale", False) else layer.data[0].shape[axis]
    return int(np.clip(round(float(data[axis])), 0, size - 1))


def show_slice(viewer, layer, axis: int, index: int) -> None:
    """Move the viewer to slice ``index`` along ``layer``'s ``axis``, making that axis the slider if needed."""
    dim = viewer_dim(viewer, layer, axis)
    make_slider(viewer, dim)
    centre = np.asarray(viewer.dims.point, dtype=float)[-layer.ndim :]
    data = np.asarray(layer.world_to_data(centre), dtype=float)
    data[axis] = index
    world = np.asarray(layer.data_to_world(data), dtype=float)
    viewer.dims.set_point(dim, float(world[axis]))


def make_slider(viewer, dim: int) -> bool:
    """In 2D display, make sure viewer dimension ``dim`` is a slider (not displayed); True if the order changed."""
    if viewer.dims.ndisplay != 2 or dim not in viewer.dims.displayed:
        return False
    order = [d for d in viewer.dims.order if d != dim]
    viewer.dims.order = tuple([*order[: len(order) - 2], dim, *order[len(order) - 2 :]])
    return True


def prediction_colormap(source, n_classes: int):
    """Colours of a results layer: the scribbles' colour for each class, background (1) and 0 transparent."""
    from napari.utils.colormaps import DirectLabelColormap

    colors = {None: np.zeros(4), 0: np.zeros(4), 1: np.zeros(4)}
    for value in range(2, n_classes + 1):
        colors[value] = np.asarray(source.map(value), dtype=float).reshape(-1)[:4]
    return DirectLabelColormap(color_dict=colors)
