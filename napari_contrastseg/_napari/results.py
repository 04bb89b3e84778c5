"""The layers this plugin writes: ``prediction`` (labels) and ``uncertainty`` (image), on the image's grid.

Only layers marked as outputs in their metadata are ever written; a user's own layer of the same name, and the
scribbles layer above all, are left alone. Main thread only.
"""

from __future__ import annotations

import contextlib

import numpy as np
from napari.layers import Image, Labels
from napari.utils.colormaps import label_colormap

from .layers import OUTPUT_KEY, geometry_kwargs, prediction_colormap, same_layer

PREDICTION = "prediction"
UNCERTAINTY = "uncertainty"


def is_output(layer) -> bool:
    return bool((layer.metadata or {}).get(OUTPUT_KEY))


class ResultLayers:
    """Finds, creates and fills the result layers of one viewer."""

    def __init__(self, viewer) -> None:
        self.viewer = viewer

    def find(self, name: str, kind, scribbles=None):
        """This plugin's layer called ``name`` (or ``name [n]``), if there is one."""
        for layer in self.viewer.layers:
            base = layer.name.split(" [")[0]
            if base == name and isinstance(layer, kind) and is_output(layer) and not same_layer(layer, scribbles):
                return layer
        return None

    def ensure(
        self, image_layer, shape, names, scribbles, pred_name=PREDICTION, unc_name=UNCERTAINTY, reset=False, data=None
    ):
        """The (prediction, uncertainty) layers for ``image_layer``; created if missing, zeroed if ``reset``.

        ``data``: (labels, uncertainty) arrays to show instead of zeros (NumPy or zarr; used as they are, never
        copied).
        """
        shape = tuple(shape)

        def fresh(kind: int):
            return data[kind] if data is not None else np.zeros(shape, (np.uint8, np.float32)[kind])

        geometry = geometry_kwargs(image_layer, len(shape))
        meta = {**geometry.pop("metadata"), OUTPUT_KEY: True, "image": image_layer.name, "class_names": list(names)}
        pred = self.find(pred_name, Labels, scribbles)
        if pred is None:
            pred = self.viewer.add_labels(fresh(0), name=self._free(pred_name), opacity=0.55, **geometry)
        elif data is not None or reset or pred.data.shape != shape:
            pred.data = fresh(0)
        pred.metadata.update(meta)
        with contextlib.suppress(Exception):  # the scribbles' colours, background see-through (decoration only)
            source = scribbles.colormap if scribbles is not None else label_colormap()
            pred.colormap = prediction_colormap(source, len(names))
        unc = self.find(unc_name, Image, scribbles)
        if unc is None:
            unc = self.viewer.add_image(
                fresh(1),
                name=self._free(unc_name),
                colormap="magma",
                contrast_limits=(0.0, 1.0),
                opacity=0.6,
                blending="additive",
                visible=False,
                **geometry,
            )
        elif data is not None or reset or unc.data.shape != shape:
            unc.data = fresh(1)
        unc.metadata.update(meta)
        if scribbles is not None and scribbles in self.viewer.layers:  # keep the painting on top of the results
            for layer in (unc, pred):
                index, below = self.viewer.layers.index(layer), self.viewer.layers.index(scribbles)
                if index > below:
                    self.viewer.layers.move(index, below)
        return pred, unc

    def show_preview(self, event, scribbles, pred_name=PREDICTION, unc_name=UNCERTAINTY) -> bool:
        """Write one previewed slice (or a whole 2D image) into the result layers; False if they are gone."""
        pred, unc = self.find(pred_name, Labels, scribbles), self.find(unc_name, Image, scribbles)
        if pred is None or unc is None or not _fits(pred.data.shape, event):
            return False
        if event.axis is None:
            where = (Ellipsis,)
        else:
            where = tuple(event.index if a == event.axis else slice(None) for a in range(pred.ndim))
        pred.data[where] = event.labels
        unc.data[where] = event.uncertainty
        pred.refresh()
        unc.refresh()
        return True

    def show_whole(self, event, image_layer, names, scribbles, pred_name=PREDICTION, unc_name=UNCERTAINTY) -> None:
        """Replace the result layers' data with a whole-image prediction."""
        data = (event.labels, event.uncertainty)
        _pred, unc = self.ensure(image_layer, event.labels.shape, names, scribbles, pred_name, unc_name, data=data)
        unc.contrast_limits = (0.0, 1.0)

    def _free(self, name: str) -> str:
        n, candidate = 1, name
        while candidate in self.viewer.layers:
            n += 1
            candidate = f"{name} [{n}]"
        return candidate


def _fits(shape: tuple[int, ...], event) -> bool:
    """Does a preview (a slice along ``event.axis`` at ``event.index``, or a whole 2D image) belong in ``shape``?"""
    if event.axis is None:
        return tuple(event.labels.shape) == tuple(shape)
    if event.axis >= len(shape) or not 0 <= event.index < shape[event.axis]:
        return False
    return tuple(s for a, s in enumerate(shape) if a != event.axis) == tuple(event.labels.shape)
