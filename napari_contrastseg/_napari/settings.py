"""The dock's training settings as one dataclass: what the form shows (built from its fields), what a run uses.

Each field's metadata gives the form its label, tooltip and limits (``settings_form.py`` turns them into magicgui
widgets); ``advanced`` fields are folded away. Defaults are the engine's (:class:`TrainConfig`), so napari trains
by the same rule as ``contrastseg train`` with no options: a time budget, stopped early once the held-out share of
the painting stops improving. Only the CPU threads differ: napari leaves one core to the window.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from ..core.config import AugmentationConfig, ForestConfig, HoldoutConfig, NetworkConfig, TrainConfig
from ..core.errors import InputError
from .devices import training_threads

#: Network sizes offered in the advanced options (encoder widths, finest to bottleneck).
NETWORK_PRESETS: dict[str, tuple[int, ...]] = {
    "small": (8, 16, 32),
    "standard": (16, 32, 64, 128),
    "large": (32, 64, 128, 256),
}
#: What the normalisation menu says about a layer (``core.config.NORMS`` lists them).
NORM_HINTS: dict[str, str] = {"batch": "batch (fastest prediction)", "group": "group (per crop)"}
#: Methods in the order the menu lists them (others registered with the engine follow).
KNOWN_METHODS: tuple[str, ...] = ("supervised", "semicontrast", "action")
#: Patch sizes offered (0: the engine's default).
PATCH_SIZES = (0, 32, 48, 64, 96, 128, 160, 192, 256)
PATCH_CHOICES = [("engine default" if p == 0 else str(p), p) for p in PATCH_SIZES]
NETWORK_CHOICES = [(f"{n} ({'-'.join(map(str, w))})", n) for n, w in NETWORK_PRESETS.items()]
DIMS_CHOICES = [("auto (2D slices)", "auto"), ("2D slices", "2d"), ("3D patches", "3d")]
#: -1 in the menu stands for None (the painted axis)
AXIS_CHOICES = [("auto (the painted axis)", -1)] + [(f"axis {a}", a) for a in range(3)]
#: The first live preview comes after this many steps (so the user sees something within seconds).
FIRST_PREVIEW_AFTER = 5

_ENGINE = TrainConfig()
#: The filter bank's scales when the "Filter bank" box is ticked: the engine's.
FILTER_SCALES: tuple[float, ...] = _ENGINE.network.filters


def _setting(default: Any = None, label: str = "", tooltip: str = "", advanced: bool = False, **options: Any):
    """A settings field: its default (or ``default_factory`` in ``options``) and what the form needs to show it."""
    factory = options.pop("default_factory", None)
    meta = {"label": label, "tooltip": tooltip, "advanced": advanced, "options": options}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class TrainingSettings:
    """Everything the user can set for one run. ``to_config`` turns it into the engine's :class:`TrainConfig`."""

    method: str = _setting(_ENGINE.method, "Method", "supervised: painted voxels only; the others also learn "
                           "from the unpainted ones (docs/methods.md)", choices="methods")  # fmt: skip
    time_budget: float = _setting(_ENGINE.time_budget, "Time budget (s)", "Training stops after this many seconds,"
                                  " or sooner once the held-out painting stops improving (0: no time limit)",
                                  min=0.0, max=86_400.0, step=10.0)  # fmt: skip
    iterations: int = _setting(0, "Iterations", "Stop after this many steps (0: the time budget decides); "
                               "Continue runs this many more", min=0, max=1_000_000, step=100)  # fmt: skip
    device: str = _setting("auto", "Device", "Auto uses a GPU when PyTorch can see one, else the CPU",
                           choices="devices")  # fmt: skip
    holdout: float = _setting(_ENGINE.holdout.fraction, "Held out", "Share of each class's painting kept out of "
                              "training to estimate Dice, stop and keep the best weights (0: off)", True,
                              min=0.0, max=0.5, step=0.05)  # fmt: skip
    augment: bool = _setting(_ENGINE.augmentation.enabled, "Augmentation", "Random rotation, scaling, elastic "
                             "and intensity changes of the training crops", True)  # fmt: skip
    batch_size: int = _setting(_ENGINE.batch_size, "Batch size", "", True, min=1, max=256)
    patch_size: int = _setting(0, "Patch size", "Training crop side (0: the engine's default)", True,
                               choices=PATCH_CHOICES)  # fmt: skip
    network: str = _setting("standard", "Network", "", True, choices=NETWORK_CHOICES)
    norm: str = _setting(_ENGINE.network.norm, "Normalisation", "The network's normalisation layer; Continue "
                         "keeps the current model's, Train starts a new model with this one", True,
                         choices="norms")  # fmt: skip
    context: int = _setting(_ENGINE.network.context, "Neighbour slices", "Slices on each side a 2D network on a "
                            "volume sees as extra channels; Continue keeps the current model's", True,
                            min=0, max=4)  # fmt: skip
    filters: bool = _setting(bool(_ENGINE.network.filters), "Filter bank", "Multiscale smoothed intensity, edges "
                             f"and curvature (sigma {'-'.join(f'{s:g}' for s in FILTER_SCALES)} px) fed to the "
                             "network; Continue keeps the current model's", True)  # fmt: skip
    forest: bool = _setting(_ENGINE.forest.enabled, "Forest labels", "A random forest trained on the painting in "
                            "seconds labels unpainted slices where it is confident; the network learns from those "
                            "labels too (2D training)", True)  # fmt: skip
    forest_blend: float = _setting(_ENGINE.forest.blend, "Forest in the prediction", "Weight of a random forest, "
                                   "fitted on the painting when training ends and saved with the model, in every "
                                   "prediction (0: the network alone; 2D training)", True, min=0.0, max=1.0,
                                   step=0.1)  # fmt: skip
    learning_rate: float = _setting(_ENGINE.learning_rate, "Learning rate", "", True, min=1e-5, max=1.0,
                                    step=5e-4)  # fmt: skip
    seed: int = _setting(_ENGINE.seed, "Seed", "", True, min=0, max=2**31 - 1)
    dims: str = _setting(_ENGINE.dims, "Dimensions", "", True, choices=DIMS_CHOICES)
    slice_axis: int | None = _setting(None, "Slice axis", "", True, choices=AXIS_CHOICES)
    preview_seconds: float = _setting(3.0, "Live preview every (s)", "How often the viewed slice is re-predicted "
                                      "while training (0: only the whole image at the end; raise it on big data)",
                                      True, min=0.0, max=600.0, step=0.5)  # fmt: skip
    cpu_threads: int = _setting(label="CPU threads", tooltip="CPU threads for training; leaving one core free keeps"
                                " the window responsive", advanced=True, default_factory=training_threads,
                                min=1, max=256)  # fmt: skip

    def to_config(self) -> TrainConfig:
        """The engine configuration; ``preview_every`` starts small and the worker adapts it to ``preview_seconds``.

        Raises :class:`InputError` when neither a time budget nor a number of iterations limits the run.
        """
        time_budget = float(self.time_budget) or None
        iterations = int(self.iterations) or None
        if time_budget is None and iterations is None:
            raise InputError("Set a time budget or a number of iterations: with neither, training would never end.")
        return TrainConfig(
            method=self.method,
            iterations=iterations,
            time_budget=time_budget,
            batch_size=int(self.batch_size),
            patch_size=int(self.patch_size) or None,
            dims=self.dims,  # type: ignore[arg-type]
            slice_axis=self.slice_axis,
            learning_rate=float(self.learning_rate),
            seed=int(self.seed),
            device=self.device,
            preview_every=FIRST_PREVIEW_AFTER if self.preview_seconds > 0 else 0,
            network=NetworkConfig(
                NETWORK_PRESETS.get(self.network, NETWORK_PRESETS["standard"]),
                norm=self.norm,
                context=self.context,
                filters=FILTER_SCALES if self.filters else (),
            ),
            holdout=HoldoutConfig(fraction=float(self.holdout)),
            augmentation=AugmentationConfig(enabled=bool(self.augment)),
            forest=ForestConfig(enabled=bool(self.forest), blend=float(self.forest_blend)),
        )

    def copy(self, **changes) -> TrainingSettings:
        return replace(self, **changes)
