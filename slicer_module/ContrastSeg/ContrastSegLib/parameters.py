"""The module's parameter node (Slicer application only): the user's choices, saved with the scene."""

from typing import Annotated

from slicer import vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import ScriptedLoadableModuleLogic

from .logic import DEVICES, METHODS, NORM, NORMS, TIME_BUDGET


@parameterNodeWrapper
class ContrastSegParameterNode:
    """
    inputVolume - the image to segment.
    paintedSegmentation - the segmentation painted in the Segment Editor (read only; needs "background").
    outputSegmentation - where predicted segments are written (created on Apply when empty).
    method, timeBudget, iterations, device, norm, warmStart - training settings (0 leaves a limit out).
    showUncertainty - also load the prediction's uncertainty map as a volume.
    """

    inputVolume: vtkMRMLScalarVolumeNode
    paintedSegmentation: vtkMRMLSegmentationNode
    outputSegmentation: vtkMRMLSegmentationNode
    method: Annotated[str, Choice(list(METHODS))] = "supervised"
    timeBudget: Annotated[float, WithinRange(0.0, 86400.0)] = TIME_BUDGET
    iterations: Annotated[int, WithinRange(0, 1000000)] = 0
    device: Annotated[str, Choice(list(DEVICES))] = "auto"
    norm: Annotated[str, Choice(list(NORMS))] = NORM
    warmStart: bool = True
    showUncertainty: bool = False


class _ParameterNodeLogic(ScriptedLoadableModuleLogic):
    """Finds or makes the module's singleton parameter node (named after the module, "ContrastSeg")."""

    def __init__(self):
        ScriptedLoadableModuleLogic.__init__(self)
        self.moduleName = "ContrastSeg"


def getParameterNode() -> ContrastSegParameterNode:
    return ContrastSegParameterNode(_ParameterNodeLogic().getParameterNode())
