"""The module's logic: MRML nodes in, background ``contrastseg`` processes, segments out. No Qt.

Everything here runs on the main thread and returns quickly: it copies voxels and segments into NumPy arrays,
writes them to NIfTI files, starts a process (:mod:`ContrastSegLib.process`) and later reads the process's output
when :meth:`ContrastSegLogic.poll` is called (by the widget's timer, or by a loop in scripts and tests). All the
computation happens in ``napari_contrastseg`` in that process. The painted segmentation is only ever read.
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import conversions
from .conversions import ClassInfo, ConversionError
from .process import ProcessRunner, cli_command, parse_event

METHODS = ("supervised", "semicontrast", "action")
DEVICES = ("auto", "cpu", "cuda", "mps")
#: The U-Net's normalisation layers: ``napari_contrastseg.core.config.NORMS``, repeated so that loading the module
#: imports nothing heavy.
NORMS = ("batch", "group", "instance")

_PROGRESS = re.compile(r"(\d+)/(\d+)")


@dataclass
class TrainingOptions:
    """What the user picks in the module; ``extra_args`` are passed to ``contrastseg train`` as they are."""

    method: str = "supervised"
    iterations: int = 300
    device: str = "auto"
    norm: str = "batch"  # one of NORMS
    seed: int = 0
    warm_start: bool = True  # continue from the last model when it has the same classes
    extra_args: list[str] = field(default_factory=list)


@dataclass
class _Task:
    kind: str  # "train" or "predict"
    runner: ProcessRunner
    work_dir: Path
    output: Path
    saved: str | None = None
    failed: str | None = None
    cancelled: bool = False
    last_progress: tuple[int, int] | None = None
    events: int = 0
    reported: bool = False  # the "ended" event was given out


class ContrastSegLogic:
    """Train on painted segments and predict segments, each in a background process.

    ``python``: the interpreter for the background process (default: PythonSlicer in Slicer, else this Python).
    ``work_root``: where work folders are made (default: the system's temporary folder).
    """

    def __init__(self, python: str | None = None, work_root: str | Path | None = None):
        self.python = python
        self.work_root = Path(work_root) if work_root else None
        self.task: _Task | None = None
        self.model_path: Path | None = None
        self.classes: list[ClassInfo] = []
        self.norm = ""  # the normalisation layer of the last training run
        self.device_description = ""
        self.prediction_path: Path | None = None
        self.uncertainty_path: Path | None = None
        self._work_dirs: list[Path] = []

    # -- state ---------------------------------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return self.task is not None and self.task.runner.running

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
        image = conversions.array_from_volume(volume_node)
        labels, classes, skipped = conversions.training_labels(segmentation_node, volume_node)
        notes = [f'Segment "{name}" has no painted voxel and is left out.' for name in skipped]

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
            "--iterations",
            int(options.iterations),
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
        args += list(options.extra_args)
        self.classes, self.norm = classes, options.norm
        self.device_description = ""
        self._start("train", args, work_dir, model_path)
        return notes

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

    # -- the running process -------------------------------------------------------------------------------------

    def poll(self) -> list[dict]:
        """Events since the last call, as dicts with a "kind".

        From training: the CLI's events ("started", "step", "preview", "checkpoint", "finished", "failed",
        "saved"). From prediction: {"kind": "progress", "done", "total"}. Lines that are not events:
        {"kind": "log", "text"}. When the process has ended, a last {"kind": "ended", "task", "ok", "cancelled",
        "message", "returncode"}.
        """
        task = self.task
        if task is None or task.reported:
            return []
        out = []
        for line in task.runner.poll():
            event = parse_event(line)
            if event is None:
                out.append({"kind": "log", "text": line})
                continue
            task.events += 1
            kind = event.get("kind")
            if kind == "started":
                self.device_description = str(event.get("device", ""))
            elif kind == "saved":
                task.saved = str(event.get("path", ""))
            elif kind == "failed":
                task.failed = str(event.get("message", "Training failed."))
            elif kind == "finished":
                task.cancelled = bool(event.get("cancelled"))
            out.append(event)
        if task.kind == "predict" and task.runner.running:
            progress = self._prediction_progress(task)
            if progress is not None:
                out.append({"kind": "progress", "done": progress[0], "total": progress[1]})
        if not task.runner.running:  # ended by itself, or killed by stop() since the last poll
            task.reported = True
            out.append(self._finish(task))
        return out

    def stop(self, grace_seconds: float = 20.0) -> None:
        """Training: stop after the current step and keep the model. A second call, or prediction: end now."""
        if not self.busy:
            return
        if self.task.kind == "predict":
            self.task.runner.kill()
        else:
            self.task.runner.stop(grace_seconds)

    def wait(self, timeout: float | None = None, interval: float = 0.2, on_event=None, idle=None) -> dict | None:
        """Poll until the running task ends (scripts and tests); returns its "ended" event.

        ``on_event`` gets every event; ``idle`` is called between polls (in Slicer: ``slicer.app.processEvents``).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            for event in self.poll():
                if on_event is not None:
                    on_event(event)
                if event["kind"] == "ended":
                    return event
            if self.task is None or self.task.reported or (deadline is not None and time.monotonic() > deadline):
                return None
            if idle is not None:
                idle()
            time.sleep(interval)

    def cleanup(self, remove_files: bool = True) -> None:
        """Kill whatever still runs and remove the work folders (module cleanup, scene close)."""
        if self.task is not None and self.task.runner.running:
            self.task.runner.kill()
        if remove_files:
            for folder in self._work_dirs:
                shutil.rmtree(folder, ignore_errors=True)
            self._work_dirs = []
            self.model_path = None
            self.prediction_path = None
            self.uncertainty_path = None

    # -- internals -----------------------------------------------------------------------------------------------

    def _new_work_dir(self, kind: str) -> Path:
        root = self.work_root
        if root is not None:
            root.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=f"ContrastSeg-{kind}-", dir=str(root) if root else None))
        self._work_dirs.append(folder)
        return folder

    def _start(self, kind: str, cli_args: list, work_dir: Path, output: Path) -> None:
        command = cli_command(cli_args, work_dir / f"{kind}.stop", self.python)
        runner = ProcessRunner(command, work_dir, stop_file=work_dir / f"{kind}.stop", name=kind)
        logging.info("ContrastSeg: starting %s", " ".join(str(a) for a in command))
        self.task = _Task(kind, runner, work_dir, output)
        runner.start()

    def _prediction_progress(self, task: _Task) -> tuple[int, int] | None:
        tail = task.runner.stderr_tail(400)
        found = _PROGRESS.findall(tail.splitlines()[-1]) if tail else []
        if not found:
            return None
        progress = (int(found[-1][0]), int(found[-1][1]))
        if progress == task.last_progress:
            return None
        task.last_progress = progress
        return progress

    def _finish(self, task: _Task) -> dict:
        code = task.runner.returncode
        stopped = task.runner.stop_requested
        if task.kind == "train":
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

    def _remove_work_dir(self, folder: Path) -> None:
        shutil.rmtree(folder, ignore_errors=True)
        self._work_dirs = [d for d in self._work_dirs if d != folder]

    @staticmethod
    def _crash_message(what: str, task: _Task) -> str:
        tail = task.runner.stderr_tail(3000)
        errors = [line for line in tail.splitlines() if "error" in line.lower()]
        detail = errors[-1] if errors else (tail.splitlines()[-1] if tail else "no output")
        return f"{what} ended unexpectedly (exit code {task.runner.returncode}): {detail}"


def _cli_name(name: str) -> str:
    """Class names go to the CLI as one comma-separated list: commas in segment names become spaces."""
    return " ".join(name.replace(",", " ").split()) or "class"
