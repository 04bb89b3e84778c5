"""Slicer module, end to end with Slicer's real MRML and Segmentations classes (PyPI ``slicer-core``).

A scene with the bundled sample volume (read by Slicer's own reader) and segments painted on coronal slices ->
``contrastseg train`` in a background process for a few iterations -> ``contrastseg predict`` -> one segment per
class in a separate segmentation. Also: Stop keeps the model and ends the process tree; a second Stop ends it at
once. The same flows run inside the Slicer application as the module's self-test.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("slicer_core", reason="needs PyPI slicer-core (Slicer's MRML and Segmentations logic)")

MODULE_DIR = Path(__file__).resolve().parents[1] / "slicer_module" / "ContrastSeg"
for _path in (MODULE_DIR, MODULE_DIR / "Testing" / "Python"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import ContrastSegTestFlows as flows  # noqa: E402
from ContrastSegLib import NORMS, ContrastSegLogic, ConversionError, TrainingOptions, conversions  # noqa: E402
from ContrastSegLib.logic import NORM, TIME_BUDGET  # noqa: E402

from napari_contrastseg.core.config import NORMS as CORE_NORMS  # noqa: E402
from napari_contrastseg.core.config import TrainConfig  # noqa: E402
from napari_contrastseg.core.model_io import read_model_info  # noqa: E402


def _group_members(pgid: int) -> list[int]:
    """Live processes whose process group is ``pgid`` (Linux /proc)."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry))
    return members


needs_proc = pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="process-group check reads /proc")


def test_full_run_gives_named_segments_on_the_volume_grid(tmp_path):
    scene = flows.new_scene()
    # up to 300 steps: with the default filter bank the rare CSF class appears after about 100 steps, and the
    # held-out stop rule ends the run once it is learnt (at 172 steps, CSF Dice 0.80, when this was written)
    result = flows.run_full_flow(scene, iterations=300, work_root=tmp_path)

    # Training really ran in the background process and said where.
    kinds = [e["kind"] for e in result["events"]]
    assert kinds.count("started") == 1 and kinds.count("saved") == 1
    finished = next(e for e in result["events"] if e["kind"] == "finished")
    assert kinds.count("step") == finished["iteration"] <= 300  # or fewer once the held-out Dice stopped rising
    assert "estimate" in kinds and finished["stop_reason"] in ("iterations", "no longer improving")
    assert result["device"].startswith("cpu")
    started = next(e for e in result["events"] if e["kind"] == "started")
    assert started["slice_axis"] == 1, "painted coronal slices ([k, j, i] axis 1) are slices along j"

    # One segment per class, named and coloured like the painted ones; background hidden.
    output, painted, ids = result["output"], result["painted"], result["segment_ids"]
    segmentation = output.GetSegmentation()
    assert [segmentation.GetSegment(i).GetName() for i in ids] == result["names"]
    for segment_id, name in zip(ids, result["names"], strict=True):
        painted_id = painted.GetSegmentation().GetSegmentIdBySegmentName(name)
        np.testing.assert_allclose(
            segmentation.GetSegment(segment_id).GetColor(), painted.GetSegmentation().GetSegment(painted_id).GetColor()
        )
    assert not output.GetDisplayNode().GetSegmentVisibility(ids[0])
    assert result["painted_unchanged"], "the painted segmentation must never be modified"

    # Geometry: the segments' labelmap lies on the input volume's grid.
    volume = result["volume"]
    image = output.GetBinaryLabelmapInternalRepresentation(ids[1])
    import vtk

    matrix = vtk.vtkMatrix4x4()
    image.GetImageToWorldMatrix(matrix)
    np.testing.assert_allclose(
        [[matrix.GetElement(r, c) for c in range(4)] for r in range(4)], conversions.ijk_to_ras(volume), atol=1e-6
    )
    assert result["labels"].shape == conversions.array_from_volume(volume).shape

    # Overlap with the ground truth, everywhere in the volume (not only on the painted slices).
    foreground = [result["dice"][name] for name in result["names"][1:]]
    assert min(foreground) > 0.35, result["dice"]
    assert np.mean(foreground) > 0.55, result["dice"]

    # The uncertainty map comes back on the same grid, with values in [0, 1].
    uncertainty = result["uncertainty"]
    np.testing.assert_allclose(conversions.ijk_to_ras(uncertainty), conversions.ijk_to_ras(volume))
    values = conversions.array_from_volume(uncertainty)
    assert values.shape == result["labels"].shape and values.min() >= 0.0 and values.max() <= 1.0

    # "Next slice to paint": the CLI's answer, read by the module, is napari's (the same function, in-process).
    assert [(p["index"], p["axis"]) for p in result["suggestions"]] == [
        (p["index"], p["axis"]) for p in result["expected_suggestions"]
    ]
    painted_j = set(np.flatnonzero(result["painted_before"].any(axis=(0, 2))))  # painted coronal slices (j)
    assert result["suggestions"][0]["axis"] == 1 and result["suggestions"][0]["index"] not in painted_j
    ras = np.array([*result["suggested_point"], 1.0])
    ijk = np.linalg.inv(conversions.ijk_to_ras(volume)) @ ras
    assert ijk[1] == pytest.approx(result["suggestions"][0]["index"])  # the views jump onto that slice

    # The logic removes its work folders afterwards.
    assert list(tmp_path.iterdir()) == []


def test_defaults_are_the_engines_and_a_run_without_limit_is_refused(tmp_path):
    assert (
        TrainingOptions().time_budget == TIME_BUDGET == TrainConfig().time_budget and not TrainingOptions().iterations
    )
    assert TrainingOptions().norm == NORM == TrainConfig().network.norm
    scene = flows.new_scene()
    volume, painted, _, _ = flows.sample_scene(scene)
    logic = ContrastSegLogic(work_root=tmp_path)
    with pytest.raises(ConversionError, match="time budget or a number of iterations"):
        logic.start_training(volume, painted, TrainingOptions(time_budget=0, iterations=0))
    assert logic.task is None and list(tmp_path.iterdir()) == []  # refused before any file was written


def test_normalisation_choice_reaches_the_model_and_a_new_choice_trains_a_new_model(tmp_path):
    assert NORMS == CORE_NORMS
    scene = flows.new_scene()  # held here: the nodes do not keep their scene alive
    volume, painted, _, _ = flows.sample_scene(scene)
    logic = ContrastSegLogic(work_root=tmp_path)
    try:
        for norm, note in [("group", None), ("group", "Continuing"), ("batch", "normalisation layer changed")]:
            options = TrainingOptions(iterations=2, device="cpu", norm=norm, extra_args=flows.FAST_TRAINING_ARGS)
            notes = logic.start_training(volume, painted, options)
            assert ("--warm-start" in logic.task.runner.args) == (note == "Continuing")
            assert any(note in n for n in notes) if note else notes == []
            ended = logic.wait(timeout=600)
            assert ended is not None and ended["ok"], ended
            assert read_model_info(logic.model_path).network.norm == norm
    finally:
        logic.cleanup()


def test_pretraining_then_training_starts_from_the_pretrained_model(tmp_path):
    scene = flows.new_scene()
    volume, painted, _, _ = flows.sample_scene(scene)
    logic = ContrastSegLogic(work_root=tmp_path)
    try:
        options = TrainingOptions(
            method="semicontrast", iterations=2, device="cpu", extra_args=flows.FAST_TRAINING_ARGS
        )
        logic.start_pretraining(volume, options)
        ended = logic.wait(timeout=600)
        assert ended["ok"] and logic.pretrained is not None and logic.pretrained[0] == volume.GetID(), ended
        notes = logic.start_training(volume, painted, options)
        assert "Starting from the pre-trained weights." in notes
        assert str(logic.pretrained[1]) in [str(a) for a in logic.task.runner.args]
        assert logic.wait(timeout=600)["ok"]
        with pytest.raises(ConversionError, match="label-free stage"):
            logic.start_pretraining(volume, TrainingOptions(method="supervised"))
    finally:
        logic.cleanup()


@needs_proc
def test_stop_keeps_the_model_and_ends_the_process_tree(tmp_path):
    result = flows.run_stop_flow(flows.new_scene(), work_root=tmp_path, graceful=True)
    ended, runner = result["ended"], result["runner"]
    assert result["had_steps"]
    assert ended is not None and ended["ok"] and ended["cancelled"], ended
    assert result["model_saved"], "a graceful Stop saves what was learned"
    assert not runner.killed and runner.returncode == 0
    assert _group_members(runner.pid) == []


@needs_proc
def test_second_stop_ends_the_process_tree_at_once(tmp_path):
    result = flows.run_stop_flow(flows.new_scene(), work_root=tmp_path, graceful=False)
    ended, runner = result["ended"], result["runner"]
    assert ended is not None and not ended["ok"] and ended["cancelled"], ended
    assert runner.killed
    assert result["stop_seconds"] < 10
    assert _group_members(runner.pid) == []
