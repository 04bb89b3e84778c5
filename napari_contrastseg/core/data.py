"""The user's input: an image and a sparse label array, checked before any work starts."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import InputError

MAX_CLASSES = 255
#: The longest axis taken for channels without being told (RGB(A) pictures, a few fluorescence channels).
MAX_GUESSED_CHANNELS = 4


@dataclass
class SegmentationData:
    """An image with sparse painted labels.

    Attributes:
        image: spatial shape ``S`` (2D or 3D), or with one channel axis at ``channel_axis``.
        labels: integer array of shape ``S``: 0 = not painted, 1..K = classes (1 = background by convention).
        class_names: optional names of classes 1..K (background first).
        spacing: voxel size per spatial axis (any unit, e.g. mm).
        channel_axis: axis of ``image`` holding channels, or None for a single channel.
    """

    image: np.ndarray
    labels: np.ndarray
    class_names: list[str] | None = None
    spacing: tuple[float, ...] | None = None
    channel_axis: int | None = None
    _checked: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.channel_axis is None and hasattr(self.image, "shape") and hasattr(self.labels, "shape"):
            self.channel_axis = channel_axis_for(tuple(self.image.shape), tuple(self.labels.shape))

    @property
    def channels_first(self) -> np.ndarray:
        """Image as float32 ``(C, *S)``."""
        return as_channels_first(self.image, self.channel_axis)

    @property
    def n_channels(self) -> int:
        return 1 if self.channel_axis is None else self.image.shape[self.channel_axis]

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        return tuple(self.labels.shape)

    @property
    def n_classes(self) -> int:
        """K: the number of classes (from the names if given, else the largest painted value)."""
        if self.class_names:
            return len(self.class_names)
        return int(self.labels.max())

    @property
    def names(self) -> list[str]:
        """Class names, generated where the user gave none."""
        return list(self.class_names) if self.class_names else default_class_names(self.n_classes)

    def validate(self, require_paint: bool = True) -> SegmentationData:
        """Raise :class:`InputError` with a plain message if the data cannot be trained on; return self.

        ``require_paint=False`` accepts an unpainted image (one of several, see :func:`validate_collection`).
        """
        check_image(self.image, self.channel_axis)
        labels = self.labels
        if labels.shape != spatial_shape_of(self.image, self.channel_axis):
            hint = "paint on a labels layer of the image's shape"
            if self.channel_axis is not None:
                hint += f", or check the channel axis ({self.channel_axis} was used)"
            elif np.ndim(self.image) == labels.ndim + 1:
                hint += ", or say which axis holds the channels (channel_axis=..., --channel-axis in the CLI)"
            raise InputError(
                f"The labels have shape {labels.shape} but the image's spatial shape is "
                f"{spatial_shape_of(self.image, self.channel_axis)}; {hint}."
            )
        check_label_values(labels, self.class_names)
        if require_paint:
            check_painted_classes(np.unique(labels[labels > 0]))
        if self.spacing is not None and len(self.spacing) != labels.ndim:
            raise InputError(f"spacing has {len(self.spacing)} values for a {labels.ndim}D image")
        self._checked = True
        return self

    @property
    def painted_classes(self) -> np.ndarray:
        """Sorted class values painted at least once."""
        return np.unique(self.labels[self.labels > 0])


def validate_collection(items: list[SegmentationData]) -> None:
    """Check several images trained into one model: each on its own, and together.

    Unpainted images are allowed (they feed the semi-supervised terms), but the paint of all images together
    must hold at least two classes; all images need the same number of spatial axes and channels, and the same
    class names where names are given.
    """
    if not items:
        raise InputError("No images to train on.")
    for n, item in enumerate(items):
        try:
            item.validate(require_paint=False)
        except InputError as err:
            raise InputError(f"Image {n + 1} of {len(items)}: {err}") from None
    check_painted_classes(np.unique(np.concatenate([item.painted_classes for item in items])))
    first = items[0]
    for n, item in enumerate(items[1:], start=2):
        if item.labels.ndim != first.labels.ndim:
            raise InputError(f"Image {n} is {item.labels.ndim}D but image 1 is {first.labels.ndim}D; mix neither.")
        if item.n_channels != first.n_channels:
            raise InputError(f"Image {n} has a different number of channels than image 1.")
    names = {tuple(item.class_names) for item in items if item.class_names}
    if len(names) > 1:
        raise InputError(f"The images name their classes differently: {sorted(names)}; use one list of classes.")


def check_painted_classes(painted: np.ndarray) -> None:
    """At least two classes must be painted (``painted``: the distinct painted values)."""
    if painted.size == 0:
        raise InputError("Nothing is painted yet: paint a few strokes of each class, background included.")
    if painted.size < 2:
        raise InputError(
            f"Only class {int(painted[0])} is painted: paint at least two classes (background counts as one)."
        )


def default_class_names(k: int) -> list[str]:
    """Names for K unnamed classes: background, class 2, ..., class K."""
    return ["background"] + [f"class {c}" for c in range(2, k + 1)]


def channel_axis_for(image_shape: tuple[int, ...], spatial: tuple[int, ...] | None, channels: int = 0) -> int | None:
    """The channel axis of an image of ``image_shape``, found without being told, or None.

    With ``spatial`` (the labels' shape): the axis whose removal leaves ``spatial``, at most
    :data:`MAX_GUESSED_CHANNELS` long (a colour picture ``(H, W, 3)`` with ``(H, W)`` labels gets -1). Without it:
    an axis of length ``channels`` (what a model expects; needs ``channels > 1``). Among several candidates the
    last axis wins; None leaves any mismatch to the shape checks, whose messages name the channel axis.
    """
    if spatial is not None:
        if len(image_shape) != len(spatial) + 1:
            return None
        fits = [image_shape[:a] + image_shape[a + 1 :] == tuple(spatial) for a in range(len(image_shape))]
        axes = [a for a, fit in enumerate(fits) if fit and image_shape[a] <= MAX_GUESSED_CHANNELS]
    else:
        axes = [a for a, n in enumerate(image_shape) if channels > 1 and n == channels]
    return None if not axes else axes[-1] - len(image_shape)


def spatial_shape_of(image: np.ndarray, channel_axis: int | None) -> tuple[int, ...]:
    """Shape of ``image`` without its channel axis."""
    shape = list(image.shape)
    if channel_axis is not None:
        shape.pop(channel_axis)
    return tuple(shape)


def check_image(image: np.ndarray, channel_axis: int | None) -> None:
    """Raise :class:`InputError` for images the network cannot use."""
    if not isinstance(image, np.ndarray):
        raise InputError(f"The image must be a numpy array, got {type(image).__name__}.")
    if not (np.issubdtype(image.dtype, np.number) or image.dtype == bool) or np.iscomplexobj(image):
        raise InputError(f"The image has data type {image.dtype}; a real-valued numeric image is needed.")
    if channel_axis is not None and not -image.ndim <= channel_axis < image.ndim:
        raise InputError(f"channel_axis {channel_axis} does not exist in an image with {image.ndim} axes.")
    spatial = spatial_shape_of(image, channel_axis)
    if len(spatial) not in (2, 3):
        hint = " (set the channel axis for multichannel images)" if len(spatial) == 4 else ""
        raise InputError(
            f"Only 2D images and 3D volumes are supported; this one has {len(spatial)} spatial axes{hint}."
        )
    if min(spatial) < 1:
        raise InputError(f"The image is empty (shape {image.shape}).")
    if image.dtype.kind == "f" and not np.isfinite(image).all():
        raise InputError("The image contains NaN or infinite values; replace them (e.g. by 0) before training.")
    if image.size > 1 and np.ptp(image) == 0:
        raise InputError("The image is constant (every pixel has the same value); there is nothing to learn from.")


def check_label_values(labels: np.ndarray, class_names: list[str] | None) -> None:
    """Labels must be non-negative integers no larger than the number of classes."""
    if labels.dtype.kind == "f":
        if not np.isfinite(labels).all() or not np.array_equal(labels, np.round(labels)):
            raise InputError("The labels contain fractional values; labels must be whole numbers (0 = not painted).")
        raise InputError(f"The labels are floating point ({labels.dtype}); use an integer labels layer or file.")
    if labels.dtype.kind not in "iub":
        raise InputError(f"The labels have data type {labels.dtype}; integer labels are needed.")
    if labels.size and labels.min() < 0:
        raise InputError("The labels contain negative values; use 0 for unpainted and 1..K for classes.")
    top = int(labels.max()) if labels.size else 0
    limit = len(class_names) if class_names else MAX_CLASSES
    if top > limit:
        what = f"only {limit} class names are given" if class_names else f"at most {MAX_CLASSES} classes are supported"
        raise InputError(f"The labels contain the value {top} but {what}.")


def as_channels_first(image: np.ndarray, channel_axis: int | None) -> np.ndarray:
    """``(C, *S)`` float32 view of ``image`` (C = 1 without a channel axis)."""
    arr = image[None] if channel_axis is None else np.moveaxis(image, channel_axis, 0)
    return np.ascontiguousarray(arr, dtype=np.float32)


def painted_slice_axis(labels: np.ndarray) -> int:
    """The axis along which the painting is concentrated: the one with the fewest slices holding paint.

    Ties go to the last axis (axial in RAS-ordered volumes). 2D labels return -1 (no slicing).
    """
    if labels.ndim == 2:
        return -1
    painted = labels > 0
    counts = []
    for axis in range(labels.ndim):
        other = tuple(a for a in range(labels.ndim) if a != axis)
        counts.append(int(painted.any(axis=other).sum()))
    best = min(counts)
    return max(a for a, c in enumerate(counts) if c == best)
