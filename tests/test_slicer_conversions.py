"""Slicer module: segment <-> label array <-> NIfTI conversions with Slicer's real MRML and Segmentations classes.

Needs PyPI's ``slicer-core`` (Kitware); skipped without it.
"""

from __future__ import annotations

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
import nibabel as nib  # noqa: E402
import vtk  # noqa: E402
from ContrastSegLib import conversions  # noqa: E402
from ContrastSegLib.conversions import ConversionError  # noqa: E402
from ContrastSegLib.logic import ContrastSegLogic  # noqa: E402

SHAPE = (12, 17, 23)  # [k, j, i]: all different, so any transposition shows
SPACING = (0.7, 1.1, 2.5)  # (i, j, k)
NAMES = ["background", "lesion", "vessel"]


@pytest.fixture
def scene():
    return flows.new_scene()


@pytest.fixture
def oblique(scene):
    """An oblique, anisotropic volume and segments painted along each of its three axes."""
    rng = np.random.default_rng(0)
    matrix = flows.oblique_geometry(spacing=SPACING)
    volume = conversions.add_volume_node(scene, rng.normal(size=SHAPE).astype(np.float32), matrix, "oblique")
    labels = np.zeros(SHAPE, np.uint8)
    labels[2, 1:15, 2:20] = 1  # background on an axial slice (k = 2)
    labels[4:10, 5, 3:9] = 2  # lesion on a coronal slice (j = 5)
    labels[5:11, 8:14, 17] = 3  # vessel on a sagittal slice (i = 17)
    segmentation = flows.add_painted_segmentation(scene, volume, labels, NAMES)
    return volume, segmentation, labels, matrix


def test_volume_geometry_is_the_one_given(oblique):
    volume, _, _, matrix = oblique
    np.testing.assert_allclose(conversions.ijk_to_ras(volume), matrix, atol=1e-9)
    np.testing.assert_allclose(volume.GetSpacing(), SPACING)
    assert conversions.array_from_volume(volume).shape == SHAPE


def test_segments_sit_at_the_right_ras_positions(oblique):
    """Each painted voxel's RAS position, looked up in the segment's own oriented labelmap, is in that segment."""
    _, segmentation, labels, matrix = oblique
    for value, segment_id in enumerate(conversions.segment_ids(segmentation), start=1):
        image = segmentation.GetBinaryLabelmapInternalRepresentation(segment_id)
        label_value = segmentation.GetSegmentation().GetSegment(segment_id).GetLabelValue()
        world_to_image = vtk.vtkMatrix4x4()
        image.GetWorldToImageMatrix(world_to_image)
        w2i = np.array([[world_to_image.GetElement(r, c) for c in range(4)] for r in range(4)])
        extent = image.GetExtent()
        kji = np.argwhere(labels == value)
        assert len(kji) > 0
        for k, j, i in kji[:: max(1, len(kji) // 25)]:
            ras = matrix @ np.array([i, j, k, 1.0])
            index = np.rint((w2i @ ras)[:3]).astype(int)
            assert all(extent[2 * a] <= index[a] <= extent[2 * a + 1] for a in range(3))
            assert image.GetScalarComponentAsDouble(int(index[0]), int(index[1]), int(index[2]), 0) == label_value


def test_round_trip_segments_labels_segments(scene, oblique):
    volume, segmentation, labels, _ = oblique
    nodes_before = scene.GetNumberOfNodes()
    mtime_before = segmentation.GetSegmentation().GetMTime()

    exported = conversions.label_array_from_segments(segmentation, conversions.segment_ids(segmentation), volume)
    np.testing.assert_array_equal(exported, labels)
    assert scene.GetNumberOfNodes() == nodes_before, "temporary nodes were left in the scene"
    assert segmentation.GetSegmentation().GetMTime() == mtime_before, "the painted segmentation was modified"

    colors = [(0.1, 0.2, 0.3), (0.9, 0.1, 0.1), (0.2, 0.8, 0.2)]
    copy = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "copy")
    ids = conversions.set_segments_from_labels(exported, copy, volume, NAMES, colors)
    assert [copy.GetSegmentation().GetSegment(i).GetName() for i in ids] == NAMES
    for segment_id, color in zip(ids, colors, strict=True):
        np.testing.assert_allclose(copy.GetSegmentation().GetSegment(segment_id).GetColor(), color)
    np.testing.assert_array_equal(conversions.label_array_from_segments(copy, ids, volume), labels)


def test_training_labels_order_background_first_and_skip_empty(scene, oblique):
    volume, segmentation, labels, _ = oblique
    segmentation.GetSegmentation().AddEmptySegment("", "unpainted", [1, 1, 0])
    # Move "background" last: it must still get value 1.
    seg = segmentation.GetSegmentation()
    background = conversions.find_background_segment(segmentation)
    seg.SetSegmentIndex(background, seg.GetNumberOfSegments() - 1)
    train_labels, classes, skipped = conversions.training_labels(segmentation, volume)
    assert [c.name for c in classes] == NAMES
    assert skipped == ["unpainted"]
    np.testing.assert_array_equal(train_labels, labels)


def test_background_is_required_and_can_be_added(scene, oblique):
    volume, _, labels, _ = oblique
    segmentation = flows.add_painted_segmentation(scene, volume, np.where(labels > 1, labels - 1, 0), ["a", "b"])
    with pytest.raises(ConversionError, match="background"):
        conversions.training_labels(segmentation, volume)
    segment_id = conversions.add_background_segment(segmentation)
    assert segmentation.GetSegmentation().GetSegment(segment_id).GetName() == "background"
    with pytest.raises(ConversionError, match="Paint some voxels"):  # added, but not painted yet
        conversions.training_labels(segmentation, volume)


def test_nifti_files_keep_geometry_for_core_and_slicer(scene, oblique, tmp_path):
    """The files handed to the core: [i, j, k] data, IJK-to-RAS affine, anisotropic spacing; Slicer reads them back."""
    from napari_contrastseg.core.image_io import read_image

    volume, _, labels, matrix = oblique
    image = conversions.array_from_volume(volume)
    path = conversions.write_nifti(tmp_path / "image.nii.gz", image, matrix)
    nifti = nib.load(path)
    np.testing.assert_allclose(nifti.affine, matrix, atol=1e-5)
    np.testing.assert_allclose(nifti.header.get_zooms(), SPACING, rtol=1e-5)
    np.testing.assert_array_equal(np.asarray(nifti.dataobj), np.transpose(image, (2, 1, 0)))
    np.testing.assert_allclose(read_image(path).spacing, SPACING, rtol=1e-5)  # spacing the core trains with

    reread = flows.load_volume(scene, path, "reread")  # Slicer's own reader (ITK)
    np.testing.assert_allclose(conversions.ijk_to_ras(reread), matrix, atol=1e-4)
    np.testing.assert_array_equal(conversions.array_from_volume(reread), image)

    array, affine = conversions.read_nifti(conversions.write_nifti(tmp_path / "labels.nii", labels, matrix))
    np.testing.assert_array_equal(array, labels)
    np.testing.assert_allclose(affine, matrix, atol=1e-5)


def test_apply_prediction_writes_named_coloured_segments(scene, oblique, tmp_path):
    volume, painted, labels, matrix = oblique
    transform = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode")
    volume.SetAndObserveTransformNodeID(transform.GetID())
    logic = ContrastSegLogic(work_root=tmp_path)
    logic.classes = conversions.painted_classes(painted)
    logic.prediction_path = conversions.write_nifti(tmp_path / "labels.nii", labels, matrix)
    output = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "prediction")

    with pytest.raises(ConversionError, match="different segmentation"):
        logic.apply_prediction(painted, volume, painted)
    ids = logic.apply_prediction(output, volume, painted)

    segmentation = output.GetSegmentation()
    assert [segmentation.GetSegment(i).GetName() for i in ids] == NAMES
    painted_colors = [painted.GetSegmentation().GetSegment(c.segment_id).GetColor() for c in logic.classes]
    for segment_id, color in zip(ids, painted_colors, strict=True):
        np.testing.assert_allclose(segmentation.GetSegment(segment_id).GetColor(), color)
    assert output.GetTransformNodeID() == transform.GetID()
    assert not output.GetDisplayNode().GetSegmentVisibility(ids[0])  # background hidden
    np.testing.assert_array_equal(conversions.label_array_from_segments(output, ids, volume), labels)
