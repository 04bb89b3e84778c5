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

    ``context``: neighbouring slices on each side that a 2D network on a volume takes as extra input channels
    (edge slices repeated at the ends); 0 by default (chosen on the painting alone, docs/benchmarks.md), for 2D
    images, 3D networks and models written before it existed.
    ``filters``: Gaussian scales (pixels) of a fixed filter bank in front of the U-Net
    (:class:`~.filters.FilterBank`: smoothed intensity, gradient magnitude and Hessian eigenvalues at each scale,
    the pixel features of ilastik and convpaint), so that the network starts from multiscale context it need not
    learn; 1, 2, 4 and 8 by default (chosen on the painting alone, docs/benchmarks.md), ``()`` for none (and for
    models written before it existed).
    ``through_plane``: a 2D network on a volume replaces each slice's class probabilities (the forest's blended in)
    by ``(p[z-1] + 2 p[z] + p[z+1]) / 4``, its own and its neighbours' (edge slices repeated), before the class is
    taken: slices predicted one by one agree with the slices beside them. On by default (docs/results/defaults-cv/
    RULE.md addendum 12); off for models written before it existed.
    ``norm``: ``batch`` (fixed statistics at inference, folded into the convolutions: fastest, and a tile's
    prediction does not depend on the tile's contents), ``group`` (GroupNorm with :data:`GROUPS` groups: statistics
    of each crop or tile, none learnt from the training batches) or ``instance``.
    """

    features: tuple[int, ...] = (16, 32, 64, 128)
    dropout: float = 0.0
    norm: str = "group"  # one of NORMS; chosen on the painting alone (docs/benchmarks.md)
    #: a 2D network on a volume also sees this many neighbouring slices on each side, as extra input channels
    context: int = 0
    filters: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0)  # chosen on the painting alone (docs/benchmarks.md)
    through_plane: bool = True

    @property
    def min_size(self) -> int:
        """Spatial size every input axis must be a multiple of (pooling steps)."""
        return 2 ** (len(self.features) - 1)


@dataclass
class NormalizationConfig:
    """Intensity normalisation.

    ``auto`` (the default) becomes ``ct`` for images that look like CT in Hounsfield units (integers, with air at
    about -1000 as a large share of the voxels) and ``percentile`` otherwise; the resolved mode is what a model
    stores. ``percentile``: per image and channel, map the ``low``/``high`` percentiles to 0/1 (robust to outliers).
    ``ct``: the same percentiles, taken over the voxels above -500 HU only (the body, as nnU-Net's CT scheme takes
    the foreground), so that air does not squeeze soft tissue into a narrow band. ``window``: the fixed window
    ``[window_min, window_max]`` to 0/1.
    """

    mode: Literal["auto", "percentile", "ct", "window"] = "auto"
    low: float = 1.0
    high: float = 99.0
    window_min: float | None = None
    window_max: float | None = None


@dataclass
class HoldoutConfig:
    """The share of the painting kept out of training to estimate accuracy, stop, and pick the weights returned.

    ``fraction`` of each class's painted voxels (0 disables), taken as whole ``block`` x ``block`` squares of the
    painted slices (cubes for 3D networks) so that held-out voxels are not the direct neighbours of trained ones.
    Held-out Dice is measured every ``every`` of the budget; from ``earliest`` of the budget on, training stops
    once it has not risen by ``min_delta`` for ``patience`` of the budget, and the best weights seen are returned
    (not the first estimate's once a later one exists: that score is only the yardstick that training must beat
    before it stops).
    """

    fraction: float = 0.15
    block: int = 16
    every: float = 0.05
    patience: float = 0.3
    min_delta: float = 0.002
    earliest: float = 0.5


@dataclass
class AugmentationConfig:
    """Random changes of each training crop, drawn per crop on the training device (labels follow the geometry).

    Spatial: in-plane rotation up to ``rotation`` degrees, isotropic scaling in ``scale``, a smooth elastic
    displacement of up to ``elastic`` pixels, mirroring along ``mirror_axes`` (none by default: left/right classes
    such as a left and a right putamen would be swapped). Intensity: brightness, contrast, gamma, Gaussian noise,
    Gaussian blur and simulated low resolution, each with probability ``probability``; ``intensity`` False keeps
    the labelled crops' intensities (spatial changes only). ``enabled`` False turns everything off.
    """

    enabled: bool = True
    intensity: bool = True
    rotation: float = 15.0
    scale: tuple[float, float] = (0.85, 1.2)
    elastic: float = 2.0
    mirror_axes: tuple[int, ...] = ()
    probability: float = 0.3


@dataclass
class ForestConfig:
    """Labels for the unpainted slices from a random forest trained on the painting (:mod:`.forest`; 2D training).

    When ``enabled``, a forest of ``trees`` trees on the filter bank's pixel features (at most ``max_pixels``
    painted pixels) labels the unpainted pixels of the painted slices and ``slices`` evenly spaced unpainted slices
    of each image, where its probability is at least ``confidence``; ``share`` of the labelled crops are then
    centred on those labels instead of on the painting. With ``gate`` above 0 the forest first predicts the held-out
    painting (:class:`HoldoutConfig`; never trained on): its labels are used only when its Dice there, averaged over
    the classes other than background, is at least ``gate``. 3D patch training and pre-training run without it.
    Off by default (a candidate, docs/benchmarks.md).

    ``blend``: the forest's weight in every prediction. Above 0, a forest fitted on the whole painting at the end
    of a 2D run is saved with the model, and predictions take the most probable class of
    ``(1 - blend) * network + blend * forest`` (class probabilities). Independent of ``enabled``. On by default
    (0.5, balanced; docs/results/defaults-cv/RULE.md addendum 9).

    ``balanced``: the forest learns classes as often as each other, as the network's crops do: at most
    ``max_pixels / K`` pixels of each painted class, weighted by the inverse of their count (a rare class is
    otherwise under 1 % of its pixels and seldom gets a leaf).

    ``weights``: other weights (in (0, 1]) to choose the blend's among, run by run: the one whose blended
    prediction scores the highest Dice on the held-out painting (:mod:`.blend_weight`) is saved with the model;
    ties, and runs with nothing held out, keep ``blend``. Empty: ``blend`` always. Unused when ``blend`` is 0.
    Empty by default: 0.25 and 0.75 were not better (docs/results/defaults-cv/RULE.md addendum 11).
    """

    enabled: bool = False
    slices: int = 16
    confidence: float = 0.8
    share: float = 0.5
    trees: int = 32
    max_pixels: int = 100_000
    gate: float = 0.0
    blend: float = 0.5
    balanced: bool = True
    weights: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        self.weights = tuple(float(w) for w in self.weights)  # JSON gives a list


@dataclass
class GrowthConfig:
    """Pseudo-labels grown outward from the painted slices (:mod:`.growth`; 2D networks on volumes).

    When ``enabled``, from ``start`` of the last stage on and then every ``every`` of it, the network predicts the
    ``slices`` unpainted slices nearest to the painted ones that have none yet (fewer where they would hold more than
    ``pixels`` pixels, at least one, so that a growth costs about the same on large slices); its classes of
    probability at least ``confidence`` become pseudo-labels, and ``share`` of the labelled crops (ramped up over
    the first two growths) are centred on them. Off by default: on painted-slice cross-validation it lost 0.029 to
    the default (docs/results/defaults-cv/RULE.md addendum 13).
    """

    enabled: bool = False
    confidence: float = 0.8
    share: float = 0.5
    start: float = 0.25
    every: float = 0.125
    slices: int = 8
    pixels: int = 8 * 256 * 256


@dataclass
class TrainConfig:
    """Everything that decides a training run. Defaults train a useful model on a laptop CPU in about a minute.

    The run ends at whichever comes first: ``time_budget`` seconds, ``iterations`` steps (None: no limit), or the
    held-out painting no longer improving (:class:`HoldoutConfig`). Time budgets are not bit-reproducible (how far
    a run gets depends on the machine); for reproducible runs give ``iterations`` and ``time_budget=None``.
    ``pretrain``: label-free pre-training on the image(s) before anything is painted (methods that have such a
    stage: SemiContrast's global NT-Xent, ACTION's global distillation); no painting is needed, and a later run
    warm-started from the result skips those stages. ``sampling_balance``: the share of labelled crops centred on
    a painted voxel of a class drawn uniformly (rare classes seen often); the others are centred on a painted voxel
    drawn uniformly (classes seen as often as painted, which keeps a rare class from being over-predicted).
    ``ema``: momentum of an exponential moving average of the weights over the last stage's steps
    (:mod:`.averaging`), which is then what the held-out estimate scores, previews show and the run returns
    (0: the raw weights).
    """

    method: str = "supervised"
    iterations: int | None = None
    time_budget: float | None = 60.0
    batch_size: int = 4
    patch_size: int | None = None  # None: 96 for 2D training, 48 for 3D patches (setup.DEFAULT_PATCH)
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
    sampling_balance: float = 0.5
    ema: float = 0.0
    pretrain: bool = False
    network: NetworkConfig = field(default_factory=NetworkConfig)
    normalization: NormalizationConfig = field(default_factory=NormalizationConfig)
    holdout: HoldoutConfig = field(default_factory=HoldoutConfig)
    augmentation: AugmentationConfig = field(default_factory=AugmentationConfig)
    forest: ForestConfig = field(default_factory=ForestConfig)
    growth: GrowthConfig = field(default_factory=GrowthConfig)
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
            values["network"] = network_from_dict(
                values["network"], NetworkConfig.context, NetworkConfig.filters, NetworkConfig.through_plane
            )
        if "augmentation" in values:
            aug = dict(values["augmentation"])
            aug["scale"] = tuple(aug.get("scale", AugmentationConfig.scale))
            aug["mirror_axes"] = tuple(aug.get("mirror_axes", ()))
            values["augmentation"] = AugmentationConfig(**aug)
        nested = (
            ("normalization", NormalizationConfig),
            ("holdout", HoldoutConfig),
            ("forest", ForestConfig),
            ("growth", GrowthConfig),
        )
        for name, kind in nested:
            if name in values:
                values[name] = kind(**values[name])
        return cls(**values)


def network_from_dict(values: dict[str, Any], context: int = 0, filters: tuple[float, ...] = (),
                      through_plane: bool = False) -> NetworkConfig:  # fmt: skip
    """A :class:`NetworkConfig` from its JSON form; ``context``, ``filters`` and ``through_plane`` where the dict
    has none (0, ``()`` and False in model files written before the options existed)."""
    net = {"context": context, "through_plane": through_plane, **values}
    net["features"] = tuple(net.get("features", NetworkConfig.features))
    net["filters"] = tuple(float(s) for s in net.get("filters", filters))
    return NetworkConfig(**net)
