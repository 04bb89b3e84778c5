"""Test scenarios shared by the module's self-test (in Slicer: Reload and Test) and the slicer-core tests (pytest).

Every function takes the MRML scene to work in, so the same code runs against ``slicer.mrmlScene`` in the
application and against a bare ``slicer.vtkMRMLScene()`` from PyPI's ``slicer-core``.
"""

from __future__ import annotations

import time

import numpy as np
import slicer
from ContrastSegLib import conversions
from ContrastSegLib.logic import ContrastSegLogic, TrainingOptions

SAMPLE = "icbm-tissue"
# A small network and few iterations: a CPU finishes the full run in about a minute.
FAST_TRAINING_ARGS = ["--features", "8,16,32", "--batch-size", "4", "--patch-size", "64"]
PALETTE = [(0.6, 0.6, 0.6), (0.85, 0.2, 0.2), (0.2, 0.75, 0.3), (0.25, 0.4, 0.9), (0.9, 0.8, 0.2), (0.7, 0.3, 0.8)]


def new_scene():
    """A bare scene with the Segmentations logic attached, as the application has it (slicer-core only)."""
    scene = slicer.vtkMRMLScene()
    conversions.ensure_segmentation_support(scene)
    slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)  # the application always has one
    return scene


def oblique_geometry(spacing=(0.7, 1.1, 2.5), origin=(12.5, -30.0, 7.25), degrees=(25.0, -10.0, 40.0)):
    """An IJK-to-RAS matrix with rotated axis directions and anisotropic spacing."""
    ax, ay, az = np.deg2rad(degrees)
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    matrix = np.eye(4)
    matrix[:3, :3] = rz @ ry @ rx @ np.diag(spacing)
    matrix[:3, 3] = origin
    return matrix


def load_volume(scene, path, name="volume"):
    """Read an image file into a scalar volume node with Slicer's own reader (ITK, LPS<->RAS handled)."""
    node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", name)
    storage = scene.AddNewNodeByClass("vtkMRMLVolumeArchetypeStorageNode")
    storage.SetFileName(str(path))
    if not storage.ReadData(node):
        raise RuntimeError(f"Slicer could not read {path}")
    node.SetAndObserveStorageNodeID(storage.GetID())
    return node


def painted_on_slices(ground_truth: np.ndarray, axis: int, slices) -> np.ndarray:
    """Sparse painting: the ground truth on a few slices along ``axis`` of a ``[k, j, i]`` array, 0 elsewhere."""
    painted = np.zeros_like(ground_truth)
    index = [slice(None)] * 3
    for s in slices:
        index[axis] = s
        painted[tuple(index)] = ground_truth[tuple(index)]
    return painted


def add_painted_segmentation(scene, volume_node, labels: np.ndarray, names, name="painted"):
    """A segmentation like one painted in the Segment Editor: one segment per name, value n+1 -> names[n]."""
    node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", name)
    node.CreateDefaultDisplayNodes()  # as in the application, where painted segmentations are displayed
    node.SetReferenceImageGeometryParameterFromVolumeNode(volume_node)
    conversions.set_segments_from_labels(
        labels, node, volume_node, list(names), [PALETTE[n % len(PALETTE)] for n in range(len(names))]
    )
    return node


def sample_scene(scene, paint_axis=1, paint_slices=(30, 48, 66)):
    """The bundled sample volume read by Slicer's reader, plus segments painted on a few slices.

    ``paint_axis`` is an axis of Slicer's ``[k, j, i]`` array: 0 = axial (k), 1 = coronal (j), 2 = sagittal (i)
    for this RAS-aligned volume. Returns (volume node, painted segmentation node, ground truth ``[k, j, i]``,
    class names).
    """
    from napari_contrastseg.samples import load_sample

    sample = load_sample(SAMPLE)
    volume = load_volume(scene, sample.paths["image"], SAMPLE)
    truth_kji = np.ascontiguousarray(np.transpose(sample.ground_truth, (2, 1, 0)))
    painted = painted_on_slices(truth_kji, paint_axis, paint_slices)
    segmentation = add_painted_segmentation(scene, volume, painted, sample.class_names)
    return volume, segmentation, truth_kji, list(sample.class_names)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int(np.logical_and(a, b).sum()) / total


def run_full_flow(scene, iterations=300, work_root=None, idle=None, timeout=600.0, uncertainty=True):
    """Paint -> train in a background process -> predict -> segments; returns what the checks need."""
    volume, painted, truth, names = sample_scene(scene)
    painted_before = conversions.label_array_from_segments(painted, conversions.segment_ids(painted), volume)
    painted_mtime = painted.GetSegmentation().GetMTime()
    logic = ContrastSegLogic(work_root=work_root)
    timings = {}
    events = []
    try:
        t0 = time.monotonic()
        notes = logic.start_training(
            volume,
            painted,
            TrainingOptions(method="supervised", iterations=iterations, device="cpu", extra_args=FAST_TRAINING_ARGS),
        )
        trained = logic.wait(timeout=timeout, idle=idle, on_event=events.append)
        timings["train"] = time.monotonic() - t0
        if trained is None or not trained["ok"]:
            raise AssertionError(f"training did not finish: {trained}")
        t0 = time.monotonic()
        logic.start_prediction(volume, device="cpu", uncertainty=uncertainty)
        predicted = logic.wait(timeout=timeout, idle=idle, on_event=events.append)
        timings["predict"] = time.monotonic() - t0
        if predicted is None or not predicted["ok"]:
            raise AssertionError(f"prediction did not finish: {predicted}")
        output = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "prediction")
        ids = logic.apply_prediction(output, volume, painted)
        logic.start_suggestion(volume, painted, device="cpu", k=2)
        suggested = logic.wait(timeout=timeout, idle=idle, on_event=events.append)
        if suggested is None or not suggested["ok"]:
            raise AssertionError(f"the suggestion did not finish: {suggested}")
        expected = _suggested_in_process(logic, volume, painted)
        uncertainty_node = logic.load_uncertainty(volume) if uncertainty else None
        result_labels = conversions.label_array_from_segments(output, ids, volume)
        scores = {names[n]: dice(result_labels == n + 1, truth == n + 1) for n in range(len(names))}
        painted_after = conversions.label_array_from_segments(painted, conversions.segment_ids(painted), volume)
        return {
            "volume": volume,
            "painted": painted,
            "output": output,
            "segment_ids": ids,
            "names": names,
            "truth": truth,
            "labels": result_labels,
            "dice": scores,
            "events": events,
            "notes": notes,
            "timings": timings,
            "device": logic.device_description,
            "uncertainty": uncertainty_node,
            "painted_before": painted_before,
            "painted_unchanged": bool(np.array_equal(painted_before, painted_after))
            and painted.GetSegmentation().GetMTime() == painted_mtime,
            "model_path": logic.model_path,
            "suggestions": logic.suggestions,
            "expected_suggestions": expected,
            "suggested_point": logic.slice_centre(volume, logic.suggestions[0]),
        }
    finally:
        logic.cleanup()


def _suggested_in_process(logic, volume, painted) -> list[dict]:
    """What ``napari_contrastseg.core.suggest.suggest_slices`` (napari's button) says for the same model and painting,
    on the arrays the module wrote (NIfTI's ``i, j, k`` order)."""
    from napari_contrastseg.core.model import load_model
    from napari_contrastseg.core.suggest import suggest_slices

    image = np.transpose(conversions.array_from_volume(volume), (2, 1, 0))
    labels = np.transpose(conversions.training_labels(painted, volume)[0], (2, 1, 0))
    picks = suggest_slices(load_model(logic.model_path), image, labels, 2, device="cpu")
    return [p.to_dict() for p in picks]


def run_stop_flow(scene, work_root=None, idle=None, graceful=True):
    """Start a long training, stop it, and report how the process ended."""
    volume, painted, _, _ = sample_scene(scene)
    logic = ContrastSegLogic(work_root=work_root)
    try:
        logic.start_training(
            volume,
            painted,
            TrainingOptions(time_budget=0, iterations=100000, device="cpu", extra_args=FAST_TRAINING_ARGS),
        )
        runner = logic.task.runner
        steps = []
        deadline = time.monotonic() + 300
        while not steps and time.monotonic() < deadline and logic.busy:  # wait until it really trains
            steps = [e for e in logic.poll() if e["kind"] == "step"]
            if idle is not None:
                idle()
            time.sleep(0.1)
        t0 = time.monotonic()
        logic.stop(grace_seconds=60 if graceful else 0)
        if not graceful:
            logic.stop()  # a second Stop kills at once
        ended = logic.wait(timeout=120, idle=idle)
        return {
            "runner": runner,
            "ended": ended,
            "stop_seconds": time.monotonic() - t0,
            "had_steps": bool(steps),
            "model_saved": logic.has_model,
        }
    finally:
        logic.cleanup()


def run_widget_flow(widget, volume, painted, idle, iterations=20, timeout=600.0):
    """Drive the module's widget (Slicer application only): Train, let its timer poll, Apply; returns the output."""
    parameters = widget._parameterNode
    parameters.inputVolume = volume
    parameters.paintedSegmentation = painted
    parameters.iterations = iterations
    parameters.device = "cpu"

    def wait_until_idle():
        deadline = time.monotonic() + timeout
        while widget.logic.busy and time.monotonic() < deadline:
            idle()
            time.sleep(0.05)
        for _ in range(10):  # let the timer deliver the last events
            idle()
            time.sleep(0.05)

    if not widget.ui.trainButton.enabled:
        raise AssertionError("Train is disabled: " + widget.ui.backgroundStatusLabel.text)
    widget.ui.trainButton.click()
    if not widget.ui.stopButton.enabled:
        raise AssertionError("Stop should be enabled while training")
    wait_until_idle()
    if not widget.logic.has_model:
        raise AssertionError("no model after training: " + widget.ui.statusLabel.text)
    widget.ui.applyButton.click()
    wait_until_idle()
    if parameters.outputSegmentation is None:
        raise AssertionError("no output segmentation: " + widget.ui.statusLabel.text)
    return parameters.outputSegmentation
