"""The module's logic: MRML nodes in, background ``contrastseg`` processes, segments out. No Qt.

Everything here runs on the main thread and returns quickly: it copies voxels and segments into NumPy arrays,
writes them to NIfTI files, starts a process (:mod:`ContrastSegLib.process`) and later reads the process's output
when :meth:`ContrastSegLogic.poll` is called (by the widget's timer, or by a loop in scripts and tests). All the
computation happens in ``napari_contrastseg`` in that process. The painted segmentation is only ever read.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import conversions
from .conversions import ClassInfo, ConversionError
from .tasks import BackgroundTasks, Task

METHODS = ("supervised", "semicontrast", "action")
DEVICES = ("auto", "cpu", "cuda", "mps")
#: The U-Net's normalisation layers: ``napari_contrastseg.core.config.NORMS``, repeated so that loading the module
#: imports nothing heavy.
NORMS = ("batch", "group", "instance")


#: The engine's default time budget in seconds (``napari_contrastseg.core.config.TrainConfig().time_budget``,
#: repeated so that loading the module imports nothing heavy; a test checks they agree).
TIME_BUDGET = 60.0
#: The engine's default normalisation layer (``NetworkConfig().norm``, repeated likewise; a test checks they agree).
NORM = "group"


@dataclass
class TrainingOptions:
    """What the user picks in the module; ``extra_args`` are passed to ``contrastseg train`` as they are.

    ``time_budget`` seconds (0: none) and ``iterations`` (0: none) limit a run, whichever ends it first; by
    default the engine's rule, as ``contrastseg train`` with no options: the time budget, ended earlier once the
    held-out share of the painting stops improving.
    """

    method: str = "supervised"
    time_budget: float = TIME_BUDGET
    iterations: int = 0
    device: str = "auto"
    norm: str = NORM  # one of NORMS
    seed: int = 0
    warm_start: bool = True  # continue from the last model when it has the same classes
    extra_args: list[str] = field(default_factory=list)


class ContrastSegLogic(BackgroundTasks):
    """Train on painted segments, suggest the next slice to paint and predict segments, each in a background
    process (:class:`~.tasks.BackgroundTasks`: ``python``, ``work_root``)."""

    def __init__(self, python: str | None = None, work_root: str | Path | None = None):
        super().__init__(python, work_root)
        self.model_path: Path | None = None
        self.classes: list[ClassInfo] = []
        self.norm = ""  # the normalisation layer of the last training run
        self.device_description = ""
        self.prediction_path: Path | None = None
        self.uncertainty_path: Path | None = None
        #: (painted slices, held-out estimate) after each finished training: does more paint still help?
        self.estimates: list[tuple[int, float]] = []
        self.suggestions: list[dict] = []
        self._painted_slices = 0
        self.pretrained: tuple[str, Path] | None = None  # (volume node ID, model) of a label-free pre-training
        self._pretraining_volume = ""

    @property
    def has_model(self) -> bool:
        return self.model_path is not None and self.model_path.is_file()

    # -- training ------------------------------------------------------------------------------------------------

    def start_training(self, volume_node, segmentation_node, options: TrainingOptions | None = None) -> list[str]:
        """Export the painted classes, write the files and start ``contrastseg train``; returns notes for the user.

        Raises :class:`ConversionError` (plain language) when the inputs cannot be used.
        """
        options = options or TrainingOptions()
        if self.busy:
            raise RuntimeError("A training or prediction is already running; stop it first.")
        if volume_node is None:
            raise ConversionError("Pick the input volume.")
        if segmentation_node is None:
            raise ConversionError("Pick the segmentation you painted.")
        if options.method not in METHODS:
            logging.warning("ContrastSeg: method %r is not one this module knows; passing it on.", options.method)
        _budget_args(options)  # a run without any limit is refused before any work
        image = conversions.array_from_volume(volume_node)
        labels, classes, skipped = conversions.training_labels(segmentation_node, volume_node)
        notes = [f'Segment "{name}" has no painted voxel and is left out.' for name in skipped]
        self._painted_slices = painted_slices(labels)

        work_dir = self._new_work_dir("train")
        matrix = conversions.ijk_to_ras(volume_node)
        image_path = conversions.write_nifti(work_dir / "image.nii", image, matrix)
        labels_path = conversions.write_nifti(work_dir / "labels.nii", labels, matrix)
        del image, labels
        model_path = work_dir / "model.safetensors"
        names = [_cli_name(c.name) for c in classes]
        args = [
            "train",
            image_path,
            labels_path,
            "-o",
            model_path,
            "--events",
            "jsonl",
            "--method",
            options.method,
            *_budget_args(options),
            "--device",
            options.device,
            "--norm",
            options.norm,
            "--seed",
            int(options.seed),
            "--classes",
            ",".join(names),
        ]
        if options.warm_start and self.has_model and [c.name for c in self.classes] == [c.name for c in classes]:
            if self.norm == options.norm:
                args += ["--warm-start", self.model_path]
                notes.append("Continuing from the previous model.")
            else:
                notes.append("The normalisation layer changed, so a new model is trained.")
        elif self.pretrained is not None and self.pretrained[0] == volume_node.GetID() and self.pretrained[1].is_file():
            args += ["--warm-start", self.pretrained[1]]
            notes.append("Starting from the pre-trained weights.")
        args += list(options.extra_args)
        self.classes, self.norm = classes, options.norm
        self.device_description = ""
        self._start("train", args, work_dir, model_path)
        return notes

    def start_pretraining(self, volume_node, options: TrainingOptions | None = None) -> list[str]:
        """Start a label-free pre-training of the volume (``contrastseg train --pretrain``, semicontrast or action):
        nothing painted is needed, and the next training on this volume starts from it."""
        options = options or TrainingOptions(method="semicontrast")
        if self.busy:
            raise RuntimeError("A training or prediction is already running; stop it first.")
        if volume_node is None:
            raise ConversionError("Pick the input volume.")
        if options.method not in ("semicontrast", "action"):
            raise ConversionError("Pre-training needs a method with a label-free stage: pick semicontrast or action.")
        work_dir = self._new_work_dir("pretrain")
        image = conversions.array_from_volume(volume_node)
        image_path = conversions.write_nifti(work_dir / "image.nii", image, conversions.ijk_to_ras(volume_node))
        del image
        output = work_dir / "pretrained.safetensors"
        args = ["train", image_path, "--pretrain", "-o", output, "--events", "jsonl", "--method", options.method,
                *_budget_args(options), "--device", options.device, "--norm", options.norm,
                *options.extra_args]  # fmt: skip
        self._pretraining_volume = volume_node.GetID()
        self._start("pretrain", args, work_dir, output)
        return []

    # -- where to paint next ------------------------------------------------------------------------------------

    def start_suggestion(self, volume_node, segmentation_node, device: str = "auto", k: int = 1) -> None:
        """Start ``contrastseg suggest`` with the last model on the volume and its painting (napari's "Next slice
        to paint" and the CLI use the same function); the ended event carries the slices (:meth:`slice_centre`)."""
        if self.busy:
            raise RuntimeError("A training or prediction is already running; wait for it or stop it.")
        if not self.has_model:
            raise ConversionError("Train a model first: the suggestion comes from its prediction.")
        if volume_node is None or segmentation_node is None:
            raise ConversionError("Pick the input volume and the painted segmentation.")
        image = conversions.array_from_volume(volume_node)
        labels, _, _ = conversions.training_labels(segmentation_node, volume_node)
        work_dir = self._new_work_dir("suggest")
        matrix = conversions.ijk_to_ras(volume_node)
        image_path = conversions.write_nifti(work_dir / "image.nii", image, matrix)
        labels_path = conversions.write_nifti(work_dir / "labels.nii", labels, matrix)
        del image, labels
        args = ["suggest", self.model_path, image_path, labels_path, "--json", "-k", int(k), "--device", device]
        self.suggestions = []
        self._start("suggest", args, work_dir, work_dir / "suggest.json")

    @staticmethod
    def slice_centre(volume_node, suggestion: dict) -> tuple[float, float, float]:
        """The RAS point at the centre of a suggested slice (its ``axis`` and ``index`` are NIfTI's ``i, j, k``)."""
        dims = volume_node.GetImageData().GetDimensions()
        ijk = [(n - 1) / 2 for n in dims]
        ijk[int(suggestion["axis"])] = float(suggestion["index"])
        ras = conversions.ijk_to_ras(volume_node) @ np.array([*ijk, 1.0])
        return tuple(float(v) for v in ras[:3])

    # -- prediction ----------------------------------------------------------------------------------------------

    def start_prediction(
        self, volume_node, device: str = "auto", uncertainty: bool = False, model_path: str | Path | None = None
    ) -> None:
        """Write the volume and start ``contrastseg predict`` with the last (or the given) model."""
        if self.busy:
            raise RuntimeError("A training or prediction is already running; wait for it or stop it.")
        model = Path(model_path) if model_path else self.model_path
        if model is None or not model.is_file():
            raise ConversionError("Train a model first.")
        if volume_node is None:
            raise ConversionError("Pick the input volume.")
        image = conversions.array_from_volume(volume_node)
        if self.prediction_path is not None:  # the previous prediction's folder is not needed any more
            self._remove_work_dir(self.prediction_path.parent)
        work_dir = self._new_work_dir("predict")
        image_path = conversions.write_nifti(work_dir / "image.nii", image, conversions.ijk_to_ras(volume_node))
        del image
        output = work_dir / "labels.nii"
        args = ["predict", model, image_path, "-o", output, "--device", device]
        if uncertainty:
            args.append("--uncertainty")
        self.prediction_path = None
        self.uncertainty_path = None
        self._start("predict", args, work_dir, output)

    def apply_prediction(
        self, output_segmentation_node, volume_node, painted_segmentation_node=None, hide_background: bool = True
    ) -> list[str]:
        """Write the finished prediction as one segment per class into ``output_segmentation_node``.

        Names and colours are those of the painted segments at training time (current colours are used when the
        painted segmentation is given and still has a segment of that name). Returns the new segment IDs.
        """
        if output_segmentation_node is None:
            raise ConversionError("Pick or create an output segmentation.")
        if painted_segmentation_node is not None and output_segmentation_node is painted_segmentation_node:
            raise ConversionError("The output must be a different segmentation from the one you painted.")
        if self.prediction_path is None or not self.prediction_path.is_file():
            raise ConversionError("There is no finished prediction to apply.")
        labels, _ = conversions.read_nifti(self.prediction_path)
        expected = tuple(reversed(volume_node.GetImageData().GetDimensions()))
        if labels.shape != expected:
            raise ConversionError(
                f"The prediction has shape {labels.shape}, the volume {expected}; "
                "apply it to the volume it was computed for."
            )
        names = [c.name for c in self.classes]
        colors = [c.color for c in self.classes]
        if painted_segmentation_node is not None:
            segmentation = painted_segmentation_node.GetSegmentation()
            for n, name in enumerate(names):
                segment_id = segmentation.GetSegmentIdBySegmentName(name)
                if segment_id:
                    colors[n] = tuple(segmentation.GetSegment(segment_id).GetColor())
        output_segmentation_node.SetAndObserveTransformNodeID(volume_node.GetTransformNodeID())
        ids = conversions.set_segments_from_labels(labels, output_segmentation_node, volume_node, names, colors)
        if hide_background and ids:
            output_segmentation_node.CreateDefaultDisplayNodes()
            display = output_segmentation_node.GetDisplayNode()
            if display is not None:
                display.SetSegmentVisibility(ids[0], False)
        return ids

    def load_uncertainty(self, volume_node, name: str | None = None, existing_node=None):
        """The uncertainty map of the finished prediction as a scalar volume on the input's grid (or None)."""
        if self.uncertainty_path is None or not self.uncertainty_path.is_file():
            return None
        values, _ = conversions.read_nifti(self.uncertainty_path)
        scene = volume_node.GetScene()
        node = existing_node
        if node is None or node.GetScene() is None:
            node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", name or f"{volume_node.GetName()} uncertainty")
        node.SetIJKToRASMatrix(conversions.vtk_matrix(conversions.ijk_to_ras(volume_node)))
        node.SetAndObserveTransformNodeID(volume_node.GetTransformNodeID())
        conversions.set_volume_array(node, values.astype(np.float32))
        return node

    # -- what the processes say -----------------------------------------------------------------------------------

    def _on_event(self, task: Task, event: dict) -> None:
        kind = event.get("kind")
        if kind == "started":
            self.device_description = str(event.get("device", ""))
        elif kind == "saved":
            task.saved = str(event.get("path", ""))
        elif kind == "failed":
            task.failed = str(event.get("message", "Training failed."))
        elif kind == "finished":
            task.cancelled = bool(event.get("cancelled"))
            mean = (event.get("estimate") or {}).get("mean")
            if isinstance(mean, (int, float)) and np.isfinite(mean):
                self.estimates.append((self._painted_slices, float(mean)))
        elif kind == "suggestions":
            self.suggestions = list(event.get("slices", []))
            task.saved = "suggestions"

    def _forget_files(self) -> None:
        self.model_path = self.prediction_path = self.uncertainty_path = self.pretrained = None

    def _finish(self, task: Task) -> dict:
        code = task.runner.returncode
        stopped = task.runner.stop_requested
        if task.kind == "pretrain":
            ok = task.saved is not None and Path(task.saved).is_file()
            if ok:
                self.pretrained = (self._pretraining_volume, Path(task.saved))
            message = "Pre-training finished: the next Train on this volume starts from it." if ok else (
                task.failed or self._crash_message("Pre-training", task))  # fmt: skip
            cancelled = stopped and not ok
        elif task.kind == "train":
            ok = task.saved is not None and Path(task.saved).is_file()
            if ok:
                self._replace_model(Path(task.saved))
                state = "stopped early; the model keeps what it learned" if task.cancelled else "finished"
                message = f"Training {state}."
            elif task.failed:
                message = task.failed
            elif stopped:
                message = "Training was stopped before a model was saved."
            else:
                message = self._crash_message("Training", task)
            cancelled = task.cancelled or (stopped and not ok)
        elif task.kind == "suggest":
            ok, cancelled = code == 0 and task.saved is not None, stopped
            message = "Suggestion ready." if ok else self._crash_message("The suggestion", task)
        else:
            ok = code == 0 and task.output.is_file()
            cancelled = stopped and not ok
            if ok:
                self.prediction_path = task.output
                uncertainty = task.output.with_name(task.output.name[: -len(".nii")] + "_uncertainty.nii")
                self.uncertainty_path = uncertainty if uncertainty.is_file() else None
                message = "Prediction finished."
            elif stopped:
                message = "Prediction was stopped."
            else:
                message = self._crash_message("Prediction", task)
        return {
            "kind": "ended",
            "task": task.kind,
            "ok": ok,
            "cancelled": cancelled,
            "message": message,
            "returncode": code,
        }

    def _replace_model(self, new_model: Path) -> None:
        old = self.model_path
        self.model_path = new_model
        if old is not None and old.parent != new_model.parent:  # the previous training's folder is not needed
            self._remove_work_dir(old.parent)


def _budget_args(options: TrainingOptions) -> list:
    """``--time-budget`` / ``--iterations`` for the options (0 leaves a limit out); none at all is refused."""
    args: list = []
    if options.time_budget and options.time_budget > 0:
        args += ["--time-budget", float(options.time_budget)]
    if options.iterations and options.iterations > 0:
        args += ["--iterations", int(options.iterations)]
    if not args:
        raise ConversionError("Set a time budget or a number of iterations: with neither, training would not end.")
    return args


def painted_slices(labels: np.ndarray) -> int:
    """Slices holding paint along the axis with the fewest of them (how much was painted, for the estimates)."""
    painted = labels > 0
    return min(int(painted.any(axis=tuple(a for a in range(3) if a != axis)).sum()) for axis in range(3))


def _cli_name(name: str) -> str:
    """Class names go to the CLI as one comma-separated list: commas in segment names become spaces."""
    return " ".join(name.replace(",", " ").split()) or "class"
