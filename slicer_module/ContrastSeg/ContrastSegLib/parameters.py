"""The module's parameter node (Slicer application only): the user's choices, saved with the scene."""

from typing import Annotated

from slicer import vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import ScriptedLoadableModuleLogic

from .logic import DEVICES, METHODS, NORMS


@parameterNodeWrapper
class ContrastSegParameterNode:
    """
    inputVolume - the image to segment.
    paintedSegmentation - the segmentation painted in the Segment Editor (read only; needs "background").
    outputSegmentation - where predicted segments are written (created on Apply when empty).
    method, iterations, device, norm, warmStart - training settings.
    showUncertainty - also load the prediction's uncertainty map as a volume.
    """

    inputVolume: vtkMRMLScalarVolumeNode
    paintedSegmentation: vtkMRMLSegmentationNode
    outputSegmentation: vtkMRMLSegmentationNode
    method: Annotated[str, Choice(list(METHODS))] = "supervised"
    iterations: Annotated[int, WithinRange(1, 100000)] = 300
    device: Annotated[str, Choice(list(DEVICES))] = "auto"
    norm: Annotated[str, Choice(list(NORMS))] = "batch"
    warmStart: bool = True
    showUncertainty: bool = False


class _ParameterNodeLogic(ScriptedLoadableModuleLogic):
    """Finds or makes the module's singleton parameter node (named after the module, "ContrastSeg")."""

    def __init__(self):
        ScriptedLoadableModuleLogic.__init__(self)
        self.moduleName = "ContrastSeg"


def getParameterNode() -> ContrastSegParameterNode:
    return ContrastSegParameterNode(_ParameterNodeLogic().getParameterNode())
