import logging
import os
import sys
from functools import partial

import qt
import slicer
import vtk
from ContrastSegLib import messages
from ContrastSegLib.conversions import ConversionError, add_background_segment, find_background_segment
from ContrastSegLib.logic import ContrastSegLogic, TrainingOptions
from ContrastSegLib.process import kill_all
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin


class ContrastSeg(ScriptedLoadableModule):
    """Uses ScriptedLoadableModule base class, available at:
    https://github.com/Slicer/Slicer/blob/main/Base/Python/slicer/ScriptedLoadableModule.py
    """

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("ContrastSeg")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Segmentation")]
        self.parent.dependencies = []  # PyTorch (SlicerPyTorch extension) is checked on first use
        self.parent.contributors = ["napari-contrastseg developers"]
        self.parent.helpText = _("""
Train a segmentation network from a few painted slices, in the background, and get the structures back as segments.
Paint a segment named "background" and one segment per structure with the Segment Editor (any slice view),
press Train, keep working, then press Apply. The painted segmentation is never modified.
More in docs/slicer.md of the napari-contrastseg source.
""")
        self.parent.acknowledgementText = _("""
Built on the napari-contrastseg engine (semi-supervised contrastive learning for few-label segmentation).
Uses the SlicerPyTorch extension to install PyTorch.
""")


class ContrastSegWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """Uses ScriptedLoadableModuleWidget base class, available at:
    https://github.com/Slicer/Slicer/blob/main/Base/Python/slicer/ScriptedLoadableModule.py
    """

    POLL_INTERVAL_MS = 250

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._observedSegmentation = None
        self._timer = None
        self._estimateNote = ""  # what the last estimate cannot see (the trainer's note)
        self._predictionTarget = None  # (volume, painted segmentation) of the running Apply
        self._uncertaintyNode = None

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/ContrastSeg.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)

        self.logic = ContrastSegLogic()
        self._timer = qt.QTimer()
        self._timer.setInterval(self.POLL_INTERVAL_MS)
        self._timer.connect("timeout()", self.onTimer)

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)

        self.ui.trainButton.connect("clicked(bool)", self.onTrainButton)
        self.ui.stopButton.connect("clicked(bool)", self.onStopButton)
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.nextSliceButton.connect("clicked(bool)", self.onNextSliceButton)
        self.ui.pretrainButton.connect("clicked(bool)", self.onPretrainButton)
        self.ui.addBackgroundButton.connect("clicked(bool)", self.onAddBackgroundButton)

        self.initializeParameterNode()

    def cleanup(self) -> None:
        """Called when the application closes and the module widget is destroyed."""
        if self._timer:
            self._timer.stop()
        if self.logic:
            self.logic.cleanup()
        kill_all()
        self.removeObservers()

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.updateGUIState)

    def onSceneStartClose(self, caller, event) -> None:
        if self.logic and self.logic.busy:
            self.logic.task.runner.kill()
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        from ContrastSegLib.parameters import getParameterNode

        self.setParameterNode(getParameterNode())
        if not self._parameterNode.inputVolume:
            firstVolumeNode = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
            if firstVolumeNode:
                self._parameterNode.inputVolume = firstVolumeNode

    def setParameterNode(self, inputParameterNode) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.updateGUIState)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.updateGUIState)
        self.updateGUIState()

    # -- GUI state ---------------------------------------------------------------------------------------------

    def _observePaintedSegmentation(self, node) -> None:
        if node is self._observedSegmentation:
            return
        segmentation = slicer.vtkSegmentation
        events = (segmentation.SegmentAdded, segmentation.SegmentRemoved, segmentation.SegmentModified)
        for event in events if self._observedSegmentation is not None else ():
            self.removeObserver(self._observedSegmentation, event, self.updateGUIState)
        self._observedSegmentation = node
        for event in events if node is not None else ():
            self.addObserver(node, event, self.updateGUIState)

    def updateGUIState(self, caller=None, event=None) -> None:
        p = self._parameterNode
        busy = bool(self.logic and self.logic.busy)
        painted = p.paintedSegmentation if p else None
        self._observePaintedSegmentation(painted)
        hasBackground = bool(painted and find_background_segment(painted))
        self.ui.backgroundStatusLabel.text = (
            _("Pick or create a segmentation and paint it in the Segment Editor.")
            if painted is None
            else _('"background" segment: found.')
            if hasBackground
            else _('A segment named "background" is required.')
        )
        self.ui.addBackgroundButton.visible = painted is not None and not hasBackground
        self.ui.addBackgroundButton.enabled = not busy
        self.ui.trainButton.enabled = bool(p and p.inputVolume and painted and hasBackground and not busy)
        self.ui.pretrainButton.enabled = bool(p and p.inputVolume and not busy)
        self.ui.stopButton.enabled = busy
        ready = bool(p and p.inputVolume and self.logic and self.logic.has_model and not busy)
        self.ui.applyButton.enabled = ready
        self.ui.nextSliceButton.enabled = ready and painted is not None

    def setStatus(self, text: str) -> None:
        self.ui.statusLabel.text = text
        slicer.util.showStatusMessage(f"ContrastSeg: {text}", 3000)

    # -- actions -----------------------------------------------------------------------------------------------

    def onAddBackgroundButton(self) -> None:
        painted = self._parameterNode.paintedSegmentation
        if painted is None:
            return
        if not slicer.util.confirmYesNoDisplay(
            _('Add an empty segment named "background" to "{name}"?').format(name=painted.GetName()),
            windowTitle="ContrastSeg",
        ):
            return
        add_background_segment(painted)
        self.setStatus(_('Paint some "background" voxels (anything that is none of the structures), then Train.'))
        self.updateGUIState()

    def _ensureDependencies(self) -> bool:
        from ContrastSegLib.dependencies import DependencyError, ensure_dependencies

        try:
            ensure_dependencies()  # asks before installing anything; nothing happens when all is there
        except DependencyError as err:
            slicer.util.errorDisplay(str(err), windowTitle="ContrastSeg")
            self.setStatus(str(err))
            return False
        return True

    def _options(self) -> TrainingOptions:
        p = self._parameterNode
        return TrainingOptions(method=p.method, time_budget=p.timeBudget, iterations=p.iterations, device=p.device,
                               norm=p.norm, warm_start=p.warmStart)  # fmt: skip

    def _startTask(self, failure: str, start, status: str, maximum: int = messages.BAR_UNITS) -> None:
        """Run ``start()`` (a logic call that starts a background task), then poll it with the timer."""
        if not self._ensureDependencies():
            return
        with slicer.util.tryWithErrorDisplay(failure, waitCursor=True):
            try:
                notes = start() or []
            except ConversionError as err:
                slicer.util.errorDisplay(str(err), windowTitle="ContrastSeg")
                return
            p = self._parameterNode
            self._predictionTarget = (p.inputVolume, p.paintedSegmentation)
            self.ui.progressBar.maximum, self.ui.progressBar.value = maximum, 0  # 0: busy until told
            self.setStatus(" ".join([status, *notes]))
            self._timer.start()
        self.updateGUIState()

    def onTrainButton(self) -> None:
        p = self._parameterNode
        self.ui.estimateLabel.text = ""
        start = partial(self.logic.start_training, p.inputVolume, p.paintedSegmentation, self._options())
        self._startTask(_("Could not start training."), start, _("Starting training..."))

    def onPretrainButton(self) -> None:
        start = partial(self.logic.start_pretraining, self._parameterNode.inputVolume, self._options())
        self._startTask(_("Could not start pre-training."), start, _("Pre-training on the volume (no paint needed)..."))

    def onStopButton(self) -> None:
        if not self.logic.busy:
            return
        secondPress = self.logic.task.runner.stop_requested
        self.logic.stop()
        self.setStatus(
            _("Ending now...") if secondPress else _("Stopping after the current step (press again to end at once)...")
        )

    def onApplyButton(self) -> None:
        p = self._parameterNode
        if p.outputSegmentation is not None and p.outputSegmentation is p.paintedSegmentation:
            slicer.util.errorDisplay(
                _("Pick an output segmentation other than the one you painted."), windowTitle="ContrastSeg"
            )
            return
        start = partial(self.logic.start_prediction, p.inputVolume, device=p.device, uncertainty=p.showUncertainty)
        self._startTask(_("Could not start the prediction."), start, _("Predicting..."), maximum=0)

    def onNextSliceButton(self) -> None:
        p = self._parameterNode
        start = partial(self.logic.start_suggestion, p.inputVolume, p.paintedSegmentation, device=p.device)
        self._startTask(_("Could not suggest a slice."), start, _("Looking for the slice to paint next..."), 0)

    # -- background process ------------------------------------------------------------------------------------

    def onTimer(self) -> None:
        try:
            events = self.logic.poll()
        except Exception as err:  # noqa: BLE001 - never let the timer die silently
            logging.exception("ContrastSeg: polling failed")
            events = [{"kind": "ended", "task": "?", "ok": False, "cancelled": False, "message": str(err)}]
        for event in events:
            self.onEvent(event)
        if not self.logic.busy:
            self._timer.stop()
            self.updateGUIState()

    def onEvent(self, event: dict) -> None:
        kind = event.get("kind")
        if kind == "started":
            self.setStatus(messages.started_text(event))
        elif kind == "step":
            self.ui.progressBar.maximum = messages.BAR_UNITS
            self.ui.progressBar.value = messages.progress_value(event)
            self.ui.statusLabel.text = messages.step_text(event, self.logic.device_description)
        elif kind == "estimate":
            self._estimateNote = event.get("note", "")
            self.ui.estimateLabel.text = messages.estimate_text(event.get("mean"), self._estimateNote)
        elif kind == "progress":
            self.ui.progressBar.maximum = max(1, int(event["total"]))
            self.ui.progressBar.value = int(event["done"])
        elif kind == "failed":
            self.setStatus(event.get("message", _("Training failed.")))
        elif kind == "log":
            logging.info("ContrastSeg: %s", event.get("text", ""))
        elif kind == "ended":
            self.onTaskEnded(event)

    def onTaskEnded(self, event: dict) -> None:
        self.ui.progressBar.maximum = max(1, self.ui.progressBar.maximum)
        if not event.get("ok"):
            self.setStatus(event.get("message", ""))
            if not event.get("cancelled"):
                slicer.util.errorDisplay(event.get("message", ""), windowTitle="ContrastSeg")
            return
        if event.get("task") == "pretrain":
            self.setStatus(event["message"])
            return
        if event.get("task") == "train":
            self.ui.progressBar.value = self.ui.progressBar.maximum
            self.ui.estimateLabel.text = messages.gain_text(self.logic.estimates, self._estimateNote)
            self.setStatus(event["message"] + " " + _("Press Apply to segment the volume."))
            return
        if event.get("task") == "suggest":
            volume = self._parameterNode.inputVolume
            if self.logic.suggestions and volume is not None:
                point = self.logic.slice_centre(volume, self.logic.suggestions[0])
                slicer.modules.markups.logic().JumpSlicesToLocation(*point, True)
                self.ui.nextSliceLabel.text = messages.suggestion_text(self.logic.suggestions[0])
            self.setStatus(event["message"])
            return
        self.ui.progressBar.value = self.ui.progressBar.maximum
        volume, painted = self._predictionTarget or (None, None)
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay(_("Could not write the predicted segments."), waitCursor=True):
            output = p.outputSegmentation
            if output is None:
                output = slicer.mrmlScene.AddNewNodeByClass(
                    "vtkMRMLSegmentationNode", slicer.mrmlScene.GenerateUniqueName("ContrastSeg prediction")
                )
                p.outputSegmentation = output
            self.logic.apply_prediction(output, volume, painted)
            if p.showUncertainty:
                self._uncertaintyNode = self.logic.load_uncertainty(volume, existing_node=self._uncertaintyNode)
                if self._uncertaintyNode is not None:
                    self._uncertaintyNode.CreateDefaultDisplayNodes()
                    slicer.util.setSliceViewerLayers(foreground=self._uncertaintyNode, foregroundOpacity=0.4)
            self.setStatus(_("Segments written to {name}.").format(name=output.GetName()))


class ContrastSegTest(ScriptedLoadableModuleTest):
    """Runs the slicer-core test flows inside the application: sample volume -> painted segments ->
    background training -> predicted segments; and Stop. Uses ScriptedLoadableModuleTest base class, available at:
    https://github.com/Slicer/Slicer/blob/main/Base/Python/slicer/ScriptedLoadableModule.py
    """

    def setUp(self):
        slicer.mrmlScene.Clear()
        flowsDir = os.path.join(os.path.dirname(__file__), "Testing", "Python")
        if flowsDir not in sys.path:
            sys.path.append(flowsDir)

    def runTest(self):
        self.setUp()
        self.test_ContrastSeg_dependencies()
        self.setUp()
        self.test_ContrastSeg_train_and_apply()
        self.setUp()
        self.test_ContrastSeg_stop()
        self.setUp()
        self.test_ContrastSeg_widget()

    def test_ContrastSeg_dependencies(self):
        from ContrastSegLib.dependencies import ensure_dependencies, missing_modules

        self.delayDisplay("Checking PyTorch and napari-contrastseg (installed on first use)")
        ensure_dependencies()
        self.assertEqual(missing_modules(), [])

    def test_ContrastSeg_train_and_apply(self):
        import ContrastSegTestFlows as flows

        self.delayDisplay("Training on the bundled sample in a background process")
        result = flows.run_full_flow(slicer.mrmlScene, idle=slicer.app.processEvents)
        self.assertEqual(
            [result["output"].GetSegmentation().GetSegment(i).GetName() for i in result["segment_ids"]], result["names"]
        )
        self.assertTrue(result["painted_unchanged"])
        foreground = [result["dice"][name] for name in result["names"][1:]]
        self.assertGreater(sum(foreground) / len(foreground), 0.5)
        self.delayDisplay(f"Dice per class: {result['dice']}")

    def test_ContrastSeg_stop(self):
        import ContrastSegTestFlows as flows

        self.delayDisplay("Stop keeps the model")
        result = flows.run_stop_flow(slicer.mrmlScene, idle=slicer.app.processEvents)
        self.assertTrue(result["ended"]["ok"])
        self.assertTrue(result["ended"]["cancelled"])
        self.assertFalse(result["runner"].running)

    def test_ContrastSeg_widget(self):
        """The user's path: pick nodes, press Train (the timer polls), press Apply, segments appear."""
        import ContrastSegTestFlows as flows

        volume, painted, _, names = flows.sample_scene(slicer.mrmlScene)
        slicer.util.selectModule("ContrastSeg")
        widget = slicer.modules.contrastseg.widgetRepresentation().self()
        self.delayDisplay("Train and Apply from the widget")
        output = flows.run_widget_flow(widget, volume, painted, idle=slicer.app.processEvents)
        segmentation = output.GetSegmentation()
        self.assertEqual(
            [segmentation.GetNthSegment(n).GetName() for n in range(segmentation.GetNumberOfSegments())], names
        )
        self.delayDisplay("Test passed")
