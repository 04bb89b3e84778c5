"""A trained model: the network plus everything needed to apply it to a new image."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from .config import NetworkConfig, NormalizationConfig
from .network import UNet

FORMAT_VERSION = 1


@dataclass
class ModelInfo:
    """Metadata stored beside the weights (JSON in the model file).

    ``spatial_dims`` is the network's (2 or 3); ``slice_axis`` is the volume axis a 2D network slices 3D
    images along (None for 2D images or 3D networks); ``patch_size`` is the training crop, used as the default
    inference tile.
    """

    class_names: list[str]
    in_channels: int
    spatial_dims: int
    image_ndim: int
    slice_axis: int | None
    patch_size: list[int]
    network: NetworkConfig
    normalization: NormalizationConfig
    method: str
    method_options: dict[str, Any] = field(default_factory=dict)
    spacing: list[float] | None = None
    training: dict[str, Any] = field(default_factory=dict)
    package_version: str = __version__
    format_version: int = FORMAT_VERSION

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ModelInfo:
        values = dict(values)
        net = dict(values.pop("network"))
        net["features"] = tuple(net["features"])
        return cls(
            network=NetworkConfig(**net), normalization=NormalizationConfig(**values.pop("normalization")), **values
        )


class TrainedModel:
    """A network in eval mode on the CPU, with its :class:`ModelInfo`."""

    def __init__(self, network: UNet, info: ModelInfo) -> None:
        self.network = network.eval()
        self.info = info

    @classmethod
    def build(cls, info: ModelInfo) -> TrainedModel:
        """A freshly initialised network of the shape ``info`` describes."""
        return cls(UNet(info.spatial_dims, info.in_channels, info.n_classes, info.network), info)

    @property
    def metadata(self) -> dict[str, Any]:
        return self.info.to_dict()

    def predict(self, image: np.ndarray, channel_axis: int | None = None, **options: Any):
        """Dense prediction of ``image``; see :func:`napari_contrastseg.core.inference.predict`."""
        from .inference import predict

        return predict(self, image, channel_axis, **options)

    def save(self, path: str | Path) -> Path:
        """Write the model file (safetensors with JSON metadata); returns the path."""
        from .model_io import save_model

        return save_model(self, path)
