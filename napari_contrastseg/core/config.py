"""Training configuration: small dataclasses that round-trip through JSON (stored in model files)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

Dims = Literal["auto", "2d", "3d"]
#: The U-Net's normalisation layers (``NetworkConfig.norm``).
NORMS = ("batch", "group", "instance")
#: GroupNorm's number of groups (``NetworkConfig.norm == "group"``); every width must be a multiple of it.
GROUPS = 4


@dataclass
class NetworkConfig:
    """U-Net shape: ``features`` are the encoder widths from the finest to the bottleneck level.

    ``norm``: ``batch`` (fixed statistics at inference, folded into the convolutions: fastest, and a tile's
    prediction does not depend on the tile's contents), ``group`` (GroupNorm with :data:`GROUPS` groups: statistics
    of each crop or tile, none learnt from the training batches) or ``instance``.
    """

    features: tuple[int, ...] = (16, 32, 64, 128)
    dropout: float = 0.0
    norm: str = "batch"  # one of NORMS

    @property
    def min_size(self) -> int:
        """Spatial size every input axis must be a multiple of (pooling steps)."""
        return 2 ** (len(self.features) - 1)


@dataclass
class NormalizationConfig:
    """Intensity normalisation.

    ``percentile``: per image and channel, map the ``low``/``high`` percentiles to 0/1 (robust to outliers).
    ``window``: fixed intensity window ``[window_min, window_max]`` to 0/1 (CT in Hounsfield units).
    """

    mode: Literal["percentile", "window"] = "percentile"
    low: float = 1.0
    high: float = 99.0
    window_min: float | None = None
    window_max: float | None = None


@dataclass
class TrainConfig:
    """Everything that decides a training run. Defaults train a useful model on a laptop CPU."""

    method: str = "supervised"
    iterations: int = 300
    batch_size: int = 4
    patch_size: int | None = None  # None: 64 for 2D training, 48 for 3D patches
    dims: Dims = "auto"  # "2d": slice-wise (2D images, or 3D volumes along slice_axis); "3d": 3D patches
    slice_axis: int | None = None  # None: the axis along which the user painted
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    seed: int = 0
    device: str = "auto"
    amp: bool = True  # mixed precision on CUDA only
    compile: bool = False  # torch.compile the network for the training steps (needs a C++ compiler on CPUs)
    preview_every: int = 25
    checkpoint_every: int = 0  # 0: no intermediate checkpoints
    network: NetworkConfig = field(default_factory=NetworkConfig)
    normalization: NormalizationConfig = field(default_factory=NormalizationConfig)
    method_options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys are rejected with a clear message."""
        values = dict(values)
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown training options: {sorted(unknown)}")
        if "network" in values:
            net = dict(values["network"])
            net["features"] = tuple(net.get("features", NetworkConfig.features))
            values["network"] = NetworkConfig(**net)
        if "normalization" in values:
            values["normalization"] = NormalizationConfig(**values["normalization"])
        return cls(**values)
