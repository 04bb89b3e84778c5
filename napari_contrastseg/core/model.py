"""A trained model: the network plus everything needed to apply it to a new image, saved and loaded as one file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelFileError
from .forest import PixelForest
from .forest_io import split_forest
from .inference import Prediction, predict
from .model_info import ModelInfo
from .model_io import read_model_file, write_model_file
from .network import UNet


class TrainedModel:
    """A network in eval mode on the CPU, with its :class:`ModelInfo` and, where ``info.forest_weight`` is above
    0, the pixel forest blended into its predictions."""

    def __init__(self, network: UNet, info: ModelInfo, forest: PixelForest | None = None) -> None:
        if bool(info.forest_weight) != (forest is not None):
            raise ValueError("A forest weight needs a forest, and a forest a weight.")
        self.network = network.eval()
        self.info = info
        self.forest = forest

    @classmethod
    def build(cls, info: ModelInfo, forest: PixelForest | None = None) -> TrainedModel:
        """A freshly initialised network of the shape ``info`` describes (with ``forest``, if it has a weight)."""
        return cls(UNet(info.spatial_dims, info.network_channels, info.n_classes, info.network), info, forest)

    @property
    def metadata(self) -> dict[str, Any]:
        return self.info.to_dict()

    def predict(self, image: np.ndarray, channel_axis: int | None = None, **options: Any) -> Prediction:
        """Dense prediction of ``image``; see :func:`napari_contrastseg.core.inference.predict`."""
        return predict(self.network, self.info, image, channel_axis, forest=self.forest, **options)

    def save(self, path: str | Path) -> Path:
        """Write the model file (safetensors with JSON metadata, written under a temporary name then renamed)."""
        trees = {} if self.forest is None else self.forest.tensors()
        return write_model_file({**self.network.state_dict(), **trees}, self.info, path)


def load_model(path: str | Path) -> TrainedModel:
    """Load a model file written by :meth:`TrainedModel.save`; any problem raises :class:`ModelFileError`."""
    tensors, info = read_model_file(path)
    tensors, trees = split_forest(tensors)
    if bool(trees) != bool(info.forest_weight):
        raise ModelFileError(f"{path}: the metadata and the file disagree on whether a forest is blended in.")
    filters, classes = tuple(info.network.filters), info.n_classes
    forest = PixelForest.from_tensors(trees, info.in_channels, filters, classes) if trees else None
    model = TrainedModel.build(info, forest)
    try:
        model.network.load_state_dict(tensors, strict=True)
    except RuntimeError as err:
        raise ModelFileError(f"{path}: the weights do not fit the network its metadata describes ({err}).") from err
    return model
