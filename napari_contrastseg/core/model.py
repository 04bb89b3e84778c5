"""A trained model: the network plus everything needed to apply it to a new image, saved and loaded as one file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelFileError
from .inference import Prediction, predict
from .model_info import ModelInfo
from .model_io import read_model_file, write_model_file
from .network import UNet


class TrainedModel:
    """A network in eval mode on the CPU, with its :class:`ModelInfo`."""

    def __init__(self, network: UNet, info: ModelInfo) -> None:
        self.network = network.eval()
        self.info = info

    @classmethod
    def build(cls, info: ModelInfo) -> TrainedModel:
        """A freshly initialised network of the shape ``info`` describes."""
        return cls(UNet(info.spatial_dims, info.network_channels, info.n_classes, info.network), info)

    @property
    def metadata(self) -> dict[str, Any]:
        return self.info.to_dict()

    def predict(self, image: np.ndarray, channel_axis: int | None = None, **options: Any) -> Prediction:
        """Dense prediction of ``image``; see :func:`napari_contrastseg.core.inference.predict`."""
        return predict(self.network, self.info, image, channel_axis, **options)

    def save(self, path: str | Path) -> Path:
        """Write the model file (safetensors with JSON metadata, written under a temporary name then renamed)."""
        return write_model_file(self.network.state_dict(), self.info, path)


def load_model(path: str | Path) -> TrainedModel:
    """Load a model file written by :meth:`TrainedModel.save`; any problem raises :class:`ModelFileError`."""
    tensors, info = read_model_file(path)
    model = TrainedModel.build(info)
    try:
        model.network.load_state_dict(tensors, strict=True)
    except RuntimeError as err:
        raise ModelFileError(f"{path}: the weights do not fit the network its metadata describes ({err}).") from err
    return model
