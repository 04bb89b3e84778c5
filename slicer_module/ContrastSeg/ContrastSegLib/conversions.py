"""Segment <-> label array <-> file conversions on the main thread, with the volume's IJK-to-RAS geometry kept.

Only MRML and Segmentations logic calls that exist both in the Slicer application and in the ``slicer-core``
package are used (no ``slicer.modules``, no ``slicer.mrmlScene``: the scene comes from the nodes).

Conventions:

* Arrays are NumPy views of VTK image data in Slicer's order, ``array[k, j, i]``.
* Class values: the "background" segment is 1, the other painted segments are 2..K in segment order, 0 is unpainted.
* Files for the core are NIfTI in ``[i, j, k]`` order with the volume's IJK-to-RAS matrix as affine (NIfTI world
  coordinates are RAS, like Slicer's), so spacing and axis directions travel with the data and any viewer
  shows them where Slicer does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import slicer
import vtk
from vtk.util import numpy_support

BACKGROUND_NAME = "background"
BACKGROUND_COLOR = (0.6, 0.6, 0.6)  # not (0.5, 0.5, 0.5): Slicer reads that as "no colour" and picks one

_segmentation_logics: list = []  # keeps converter-rule registrations of logics made here alive


class ConversionError(ValueError):
    """A plain-language problem with the user's volume or segmentation."""


@dataclass
class ClassInfo:
    """One painted class: the segment it comes from, its name and its colour (r, g, b in 0..1)."""

    segment_id: str
    name: str
    color: tuple[float, float, float]


# -- Segmentations support ---------------------------------------------------------------------------------------


def ensure_segmentation_support(scene) -> None:
    """Register the binary labelmap converter rules if nothing has (only needed outside the Slicer application).

    In Slicer, the Segmentations module's logic registers them at startup (``RegisterNodes``); a bare
    ``slicer-core`` scene has none, and segments then cannot hold labelmaps.
    """
    factory = slicer.vtkSegmentationConverterFactory.GetInstance()
    try:
        if len(factory.GetConverterRules()) > 0:
            return
    except TypeError:
        return
    logic = slicer.vtkSlicerSegmentationsModuleLogic()
    logic.SetMRMLScene(scene)
    _segmentation_logics.append(logic)


# -- volumes -----------------------------------------------------------------------------------------------------


def ijk_to_ras(volume_node) -> np.ndarray:
    """The volume's 4x4 IJK-to-RAS matrix (origin, spacing and axis directions) as a NumPy array."""
    matrix = vtk.vtkMatrix4x4()
    volume_node.GetIJKToRASMatrix(matrix)
    return np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])


def vtk_matrix(array: np.ndarray) -> vtk.vtkMatrix4x4:
    matrix = vtk.vtkMatrix4x4()
    for r in range(4):
        for c in range(4):
            matrix.SetElement(r, c, float(array[r, c]))
    return matrix


def array_from_volume(volume_node) -> np.ndarray:
    """A copy of the volume's voxels, ``[k, j, i]``; the copy is what goes to files and processes."""
    image = volume_node.GetImageData() if volume_node is not None else None
    if image is None or image.GetPointData() is None or image.GetPointData().GetScalars() is None:
        raise ConversionError("The input volume has no image data.")
    if image.GetNumberOfScalarComponents() != 1:
        raise ConversionError(
            "The input volume has several components per voxel (colour or vector); pick a single-channel scalar volume."
        )
    shape = tuple(reversed(image.GetDimensions()))
    return np.array(numpy_support.vtk_to_numpy(image.GetPointData().GetScalars()).reshape(shape), copy=True)


def set_volume_array(volume_node, array: np.ndarray) -> None:
    """Replace the volume's voxels with ``array`` (``[k, j, i]``, deep copy); geometry is left as it is."""
    array = np.ascontiguousarray(array)
    if array.ndim != 3:
        raise ConversionError(f"Expected a 3D array, got shape {array.shape}.")
    image = vtk.vtkImageData()
    image.SetDimensions(array.shape[2], array.shape[1], array.shape[0])
    image.AllocateScalars(numpy_support.get_vtk_array_type(array.dtype), 1)
    numpy_support.vtk_to_numpy(image.GetPointData().GetScalars()).reshape(array.shape)[:] = array
    volume_node.SetAndObserveImageData(image)


def add_volume_node(
    scene, array: np.ndarray, ijk_to_ras_matrix: np.ndarray, name: str = "", class_name: str = "vtkMRMLScalarVolumeNode"
):
    """A new volume node in ``scene`` holding a copy of ``array`` (``[k, j, i]``) on the given grid."""
    node = scene.AddNewNodeByClass(class_name, name)
    node.SetIJKToRASMatrix(vtk_matrix(ijk_to_ras_matrix))
    set_volume_array(node, array)
    return node


# -- segments -> classes -----------------------------------------------------------------------------------------


def segment_ids(segmentation_node) -> list[str]:
    segmentation = segmentation_node.GetSegmentation()
    return [segmentation.GetNthSegmentID(i) for i in range(segmentation.GetNumberOfSegments())]


def find_background_segment(segmentation_node) -> str | None:
    """The ID of the segment named "background" (any case, surrounding spaces ignored), or None."""
    segmentation = segmentation_node.GetSegmentation()
    for segment_id in segment_ids(segmentation_node):
        name = segmentation.GetSegment(segment_id).GetName() or ""
        if name.strip().lower() == BACKGROUND_NAME:
            return segment_id
    return None


def add_background_segment(segmentation_node) -> str:
    """Add an empty "background" segment (only on the user's request) and return its ID."""
    existing = find_background_segment(segmentation_node)
    if existing:
        return existing
    return segmentation_node.GetSegmentation().AddEmptySegment("", BACKGROUND_NAME, list(BACKGROUND_COLOR))


def painted_classes(segmentation_node) -> list[ClassInfo]:
    """The classes, in class-value order: "background" first (value 1), then the other segments (2..K)."""
    if segmentation_node is None:
        raise ConversionError("Pick the segmentation you painted.")
    background = find_background_segment(segmentation_node)
    if background is None:
        raise ConversionError(
            'The painted segmentation needs a segment named "background", painted on some '
            "voxels that belong to none of the structures."
        )
    segmentation = segmentation_node.GetSegmentation()
    ordered = [background] + [s for s in segment_ids(segmentation_node) if s != background]
    classes = []
    for segment_id in ordered:
        segment = segmentation.GetSegment(segment_id)
        classes.append(ClassInfo(segment_id, segment.GetName() or segment_id, tuple(segment.GetColor())))
    if len(classes) < 2:
        raise ConversionError('Add at least one segment besides "background" and paint it.')
    return classes


def label_array_from_segments(segmentation_node, ids: list[str], reference_volume_node) -> np.ndarray:
    """Segments ``ids`` as one label array on the reference volume's grid (``[k, j, i]``).

    Voxels of ``ids[n]`` get value ``n + 1`` (later segments win where segments overlap), unpainted voxels 0.
    The segmentation is only read: the export goes through a temporary labelmap node that is removed again.
    """
    scene = reference_volume_node.GetScene()
    ensure_segmentation_support(scene)
    id_array = vtk.vtkStringArray()
    for segment_id in ids:
        id_array.InsertNextValue(segment_id)
    color_tables_before = _node_ids(scene, "vtkMRMLColorTableNode")
    labelmap = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "__ContrastSeg_export__")
    try:
        ok = slicer.vtkSlicerSegmentationsModuleLogic.ExportSegmentsToLabelmapNode(
            segmentation_node,
            id_array,
            labelmap,
            reference_volume_node,
            slicer.vtkSegmentation.EXTENT_REFERENCE_GEOMETRY,
        )
        if not ok:
            raise ConversionError("Slicer could not export the painted segments to a label volume.")
        labels = array_from_volume(labelmap)
    finally:
        _remove_temporary_volume(scene, labelmap)
        for node_id in _node_ids(scene, "vtkMRMLColorTableNode") - color_tables_before:
            scene.RemoveNode(scene.GetNodeByID(node_id))  # the colour table the export made for the labelmap
    expected = tuple(reversed(reference_volume_node.GetImageData().GetDimensions()))
    if labels.shape != expected:
        raise ConversionError(f"The exported labels have shape {labels.shape}, the volume {expected}.")
    return labels.astype(np.uint8 if len(ids) < 256 else np.uint16)


def training_labels(segmentation_node, volume_node) -> tuple[np.ndarray, list[ClassInfo], list[str]]:
    """Labels for training: values 1..K for the painted classes, 0 unpainted.

    Segments with no painted voxel are left out (the others are renumbered); their names are returned as notes.
    Raises :class:`ConversionError` when "background" or every other class is unpainted.
    """
    classes = painted_classes(segmentation_node)
    labels = label_array_from_segments(segmentation_node, [c.segment_id for c in classes], volume_node)
    counts = np.bincount(labels.ravel(), minlength=len(classes) + 1)
    if counts[1] == 0:
        raise ConversionError('Paint some voxels in the "background" segment first.')
    kept = [n for n in range(1, len(classes) + 1) if counts[n] > 0]
    skipped = [classes[n - 1].name for n in range(1, len(classes) + 1) if counts[n] == 0]
    if len(kept) < 2:
        raise ConversionError('Paint at least one structure segment besides "background".')
    if skipped:
        lut = np.zeros(len(classes) + 1, dtype=labels.dtype)
        for new_value, old_value in enumerate(kept, start=1):
            lut[old_value] = new_value
        labels = lut[labels]
    return labels, [classes[n - 1] for n in kept], skipped


# -- classes -> segments -----------------------------------------------------------------------------------------


def set_segments_from_labels(
    labels: np.ndarray,
    segmentation_node,
    reference_volume_node,
    names: list[str],
    colors: list | None = None,
    replace: bool = True,
) -> list[str]:
    """Write label values 1..K of ``labels`` (``[k, j, i]`` on the reference grid) as K segments.

    Segment ``n`` is named ``names[n]`` and coloured ``colors[n]``; with ``replace``, the segmentation's existing
    segments are removed first. Returns the new segment IDs in class-value order.
    """
    scene = reference_volume_node.GetScene()
    ensure_segmentation_support(scene)
    expected = tuple(reversed(reference_volume_node.GetImageData().GetDimensions()))
    if labels.shape != expected:
        raise ConversionError(f"The labels have shape {labels.shape}, the volume {expected}.")
    segmentation = segmentation_node.GetSegmentation()
    if replace:
        segmentation.RemoveAllSegments()
        segmentation_node.SetReferenceImageGeometryParameterFromVolumeNode(reference_volume_node)
    ids = []
    for n, name in enumerate(names):
        color = colors[n] if colors is not None and n < len(colors) and colors[n] is not None else None
        ids.append(segmentation.AddEmptySegment("", name, list(color) if color is not None else None))
    labelmap = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "__ContrastSeg_import__")
    try:
        labelmap.SetIJKToRASMatrix(vtk_matrix(ijk_to_ras(reference_volume_node)))
        labelmap.SetAndObserveTransformNodeID(segmentation_node.GetTransformNodeID())
        dtype = np.uint8 if len(names) < 256 else np.uint16
        set_volume_array(labelmap, np.where(labels <= len(names), labels, 0).astype(dtype))
        id_array = vtk.vtkStringArray()
        for segment_id in ids:
            id_array.InsertNextValue(segment_id)
        ok = slicer.vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(
            labelmap, segmentation_node, id_array
        )
        if not ok:
            raise ConversionError("Slicer could not import the predicted labels as segments.")
    finally:
        _remove_temporary_volume(scene, labelmap)
    return ids


def _node_ids(scene, class_name: str) -> set[str]:
    return {scene.GetNthNodeByClass(n, class_name).GetID() for n in range(scene.GetNumberOfNodesByClass(class_name))}


def _remove_temporary_volume(scene, node) -> None:
    display = node.GetDisplayNode()
    if display is not None:
        scene.RemoveNode(display)
    storage = node.GetStorageNode()
    if storage is not None:
        scene.RemoveNode(storage)
    scene.RemoveNode(node)


# -- files -------------------------------------------------------------------------------------------------------


def write_nifti(path, array: np.ndarray, ijk_to_ras_matrix: np.ndarray):
    """Write ``array`` (``[k, j, i]``) as NIfTI (``[i, j, k]``, affine = IJK-to-RAS) through the core's writer."""
    from napari_contrastseg.core.image_io import ImageFile, write_image

    like = ImageFile(np.empty(0), affine=np.asarray(ijk_to_ras_matrix, dtype=float))
    return write_image(path, np.ascontiguousarray(np.transpose(array, (2, 1, 0))), like=like)


def read_nifti(path) -> tuple[np.ndarray, np.ndarray]:
    """Read a NIfTI file written on a volume's grid: (array ``[k, j, i]``, 4x4 affine)."""
    from napari_contrastseg.core.image_io import read_image

    image = read_image(path)
    array = np.asarray(image.array)
    if array.ndim != 3:
        raise ConversionError(f"{path} holds a {array.ndim}D array, expected 3D.")
    return np.ascontiguousarray(np.transpose(array, (2, 1, 0))), image.affine
