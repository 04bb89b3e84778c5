"""The widget's training settings as one small dataclass (what the controls show, what a run uses)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..core.config import NetworkConfig, TrainConfig
from .devices import training_threads

#: Network sizes offered in the advanced options (encoder widths, finest to bottleneck).
NETWORK_PRESETS: dict[str, tuple[int, ...]] = {
    "small": (8, 16, 32),
    "standard": (16, 32, 64, 128),
    "large": (32, 64, 128, 256),
}
#: What the normalisation menu says about a layer (``core.config.NORMS`` lists them).
NORM_HINTS: dict[str, str] = {"batch": "batch (fastest prediction)", "group": "group (per crop)"}

#: Methods in the order the menu lists them; the ones not installed are shown disabled.
KNOWN_METHODS: tuple[str, ...] = ("supervised", "semicontrast", "action")


@dataclass
class TrainingSettings:
    """Everything the user can set for one run. ``to_config`` turns it into the engine's :class:`TrainConfig`.

    ``preview_seconds``: the live preview of the viewed slice is refreshed about this often (0: no live preview,
    only the whole image at the end; use a larger value on big data).
    """

    method: str = "supervised"
    iterations: int = 400
    device: str = "auto"
    batch_size: int = 4
    patch_size: int = 64  # 0: the engine's default (128 for 2D, 48 for 3D patches); 64 trains ~1.5x faster and
    # beat 128 on the colin27 sample (Dice 0.50 vs 0.23 after 300-400 steps, docs/napari.md)
    dims: str = "auto"
    slice_axis: int | None = None
    learning_rate: float = 3e-3
    seed: int = 0
    network: str = "standard"
    norm: str = "batch"
    preview_seconds: float = 3.0
    cpu_threads: int = field(default_factory=training_threads)

    def to_config(self) -> TrainConfig:
        """The engine configuration; ``preview_every`` starts small and the worker adapts it to ``preview_seconds``."""
        return TrainConfig(
            method=self.method,
            iterations=int(self.iterations),
            batch_size=int(self.batch_size),
            patch_size=int(self.patch_size) or None,
            dims=self.dims,  # type: ignore[arg-type]
            slice_axis=self.slice_axis,
            learning_rate=float(self.learning_rate),
            seed=int(self.seed),
            device=self.device,
            preview_every=FIRST_PREVIEW_AFTER if self.preview_seconds > 0 else 0,
            network=NetworkConfig(NETWORK_PRESETS.get(self.network, NETWORK_PRESETS["standard"]), norm=self.norm),
        )

    def copy(self, **changes) -> TrainingSettings:
        return replace(self, **changes)


#: The first live preview comes after this many steps (so the user sees something within seconds).
FIRST_PREVIEW_AFTER = 5
