"""A model's metadata: everything besides the weights that applying it to a new image needs."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .. import __version__
from .config import NetworkConfig, NormalizationConfig, network_from_dict

#: The newest model-file format this version reads. Files are written in the oldest format that holds them: 1 (what
#: versions from before the filter bank read), 2 (a network with a filter bank), 3 (a forest blended in), 4 (a 2D
#: network's volume predictions smoothed through the plane).
FORMAT_VERSION = 4


@dataclass
class ModelInfo:
    """Metadata stored beside the weights (JSON in the model file).

    ``spatial_dims`` is the network's (2 or 3); ``slice_axis`` is the volume axis a 2D network slices 3D
    images along (None for 2D images or 3D networks); ``patch_size`` is the training crop, used as the default
    inference tile. ``forest_weight``: the weight of the forest saved with the network in every prediction
    (:class:`~.config.ForestConfig` ``blend``; 0: the network alone).
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
    forest_weight: float = 0.0
    package_version: str = __version__
    format_version: int = 1  # set from the network (``__post_init__``)

    def __post_init__(self) -> None:
        self.format_version = self.oldest_format()

    def oldest_format(self) -> int:
        """The oldest model-file format that holds this model (see :data:`FORMAT_VERSION`)."""
        if self.smooths_slices:
            return 4
        return 3 if self.forest_weight else 2 if self.network.filters else 1

    @property
    def smooths_slices(self) -> bool:
        """Whether volume predictions are smoothed through the plane (a 2D network with ``through_plane``)."""
        return self.network.through_plane and self.spatial_dims == 2

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def network_channels(self) -> int:
        """Input channels of the network: the image's, times ``2 * context + 1`` slices for a 2D network on volumes."""
        return self.in_channels * (2 * self.network.context + 1)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; keys that older formats lack are left out where unused (``filters``, ``through_plane``,
        ``forest_weight``)."""
        values = {**asdict(self), "format_version": self.oldest_format()}
        if not self.network.filters:
            del values["network"]["filters"]
        if not self.smooths_slices:
            del values["network"]["through_plane"]
        if not self.forest_weight:
            del values["forest_weight"]
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ModelInfo:
        values = dict(values)
        weight = values.get("forest_weight", 0.0)
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 <= weight <= 1:
            raise ValueError(f"forest_weight must be a number in [0, 1], got {weight!r}")
        smoothing = values["network"].get("through_plane", False)
        if not isinstance(smoothing, bool):
            raise ValueError(f"network.through_plane must be true or false, got {smoothing!r}")
        network = network_from_dict(values.pop("network"))  # files from before ``context`` existed: 0
        return cls(network=network, normalization=NormalizationConfig(**values.pop("normalization")), **values)
