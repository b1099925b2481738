"""adGAN anomaly detection in 3D Slicer: train on normal MR volumes, score a
case into a voxel anomaly map, threshold it into a segmentation.

The module is Slicer glue only. Everything that needs no Slicer (loading
libadgan with ctypes, geometry, NIfTI export, the training process runner,
progress text) lives in ADGANLib beside this file and is tested with pytest.
"""

import contextlib
import logging
import math
import os
import shutil
import sys
import tempfile
import time

import numpy as np
import qt
import slicer
import vtk
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

_MODULE_DIR = os.path.dirname(os.path.abspath(__file__))
if _MODULE_DIR not in sys.path:
    sys.path.insert(0, _MODULE_DIR)

from ADGANLib import geometry, locate, maps, native, nifti  # noqa: E402
from ADGANLib import parameters as P  # noqa: E402
from ADGANLib.errors import AdganError  # noqa: E402
from ADGANLib.jobs import ScoreJob  # noqa: E402
from ADGANLib.process import PRESETS, TrainingProcess, TrainOptions  # noqa: E402
from ADGANLib.progress import STAGE_LABELS, ProgressTracker, describe, wait_for_finish  # noqa: E402

SETTING_LIBRARY = "ADGAN/LibraryPath"
SETTING_BINARY = "ADGAN/BinaryPath"
SEGMENT_ID = "anomaly"
SEGMENT_NAME = "Anomalous region"
DEVICES = [("auto", "auto (GPU when available)"), ("cpu", "CPU"), ("cuda", "CUDA GPU")]
POLL_YIELD_SECONDS = 0.01


@contextlib.contextmanager
def errorsShown(message):
    """Show an exception in a dialog (Slicer's tryWithErrorDisplay) and
    carry on: a failed click must not leave the panel half-updated."""
    try:
        with slicer.util.tryWithErrorDisplay(message, waitCursor=True):
            yield
    except Exception:
        logging.exception(message)


#
# ADGAN
#


class ADGAN(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "adGAN Anomaly Detection"
        self.parent.categories = ["Segmentation"]
        self.parent.dependencies = []
        self.parent.contributors = ["adGAN developers"]
        self.parent.helpText = """
Unsupervised anomaly detection in brain MR: a GAN's critic trained on normal
32x32 patches scores every voxel of a case. <b>Score</b>: choose a model file,
one volume per channel the model needs, and Apply; the anomaly map (standard
deviations of normal tissue) appears over the input, and the threshold slider
makes a segmentation of the anomalous region. <b>Train</b>: choose healthy
volumes (or patients with their lesions labelled), a preset and an output file;
training runs in a separate <tt>adgan</tt> process and can be cancelled.
The module needs libadgan and the adgan program: see Settings.
"""
        self.parent.acknowledgementText = """
Method: H. Shen, J. Chen, R. Wang, J. Zhang, "Counterfeit Anomaly Using
Generative Adversarial Network for Anomaly Detection", IEEE Access 8, 2020,
doi:10.1109/ACCESS.2020.3010612.
"""


#
# ADGANWidget
#


class ADGANWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._updatingGUIFromParameterNode = False
        self._channelSelectors = []
        self._channelLabels = []
        self._modelKey = None
        self._model = None
        self._scoreJob = None
        self._scoreInputs = None
        self._scoreStartedModel = None
        self._trainProcess = None
        self._trainTracker = None
        self._lastLoggedPercent = -1

    # -- setup ---------------------------------------------------------------

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/ADGAN.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)

        self.logic = ADGANLogic()
        settings = qt.QSettings()
        self.ui.libraryPathLineEdit.currentPath = settings.value(SETTING_LIBRARY, "") or ""
        self.ui.binaryPathLineEdit.currentPath = settings.value(SETTING_BINARY, "") or ""
        self.logic.librarySetting = self.ui.libraryPathLineEdit.currentPath
        self.logic.binarySetting = self.ui.binaryPathLineEdit.currentPath

        for combo in (self.ui.deviceComboBox, self.ui.trainDeviceComboBox):
            for value, text in DEVICES:
                combo.addItem(text, value)
        for name in PRESETS:
            self.ui.trainPresetComboBox.addItem(name, name)
        self.ui.trainCriticInitComboBox.addItem("fine-tune (adGAN(c))", "fine-tune")
        self.ui.trainCriticInitComboBox.addItem("reset (adGAN)", "reset")
        for axis, text in ((0, "0 (sagittal on RAS grids)"), (1, "1 (coronal)"), (2, "2 (axial)")):
            self.ui.trainSliceAxisComboBox.addItem(text, axis)

        self.ui.scoreProgressBar.hide()
        self.ui.trainProgressBar.hide()
        self.ui.trainCasesTableWidget.horizontalHeader().setStretchLastSection(True)
        self.ui.trainCasesTableWidget.setSelectionBehavior(qt.QAbstractItemView.SelectRows)
        self.ui.trainCasesTableWidget.verticalHeader().setVisible(True)

        # The timers poll worker threads (scoring) and the training process's
        # reader threads. Each poll also sleeps a few milliseconds, which
        # releases Python's GIL: the workers progress even where the host keeps
        # the GIL while its event loop is idle.
        self._scoreTimer = qt.QTimer()
        self._scoreTimer.setInterval(50)
        self._scoreTimer.connect("timeout()", self.onScorePoll)
        self._trainTimer = qt.QTimer()
        self._trainTimer.setInterval(200)
        self._trainTimer.connect("timeout()", self.onTrainPoll)
        self._thresholdTimer = qt.QTimer()
        self._thresholdTimer.setSingleShot(True)
        self._thresholdTimer.setInterval(250)
        self._thresholdTimer.connect("timeout()", self.onThresholdTimer)

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)

        # GUI -> parameter node
        self.ui.modelPathLineEdit.connect("currentPathChanged(QString)", self.onModelPathChanged)
        for selector in (self.ui.brainMaskSelector, self.ui.outputMapSelector, self.ui.outputSegmentationSelector):
            selector.connect("currentNodeChanged(vtkMRMLNode*)", self.updateParameterNodeFromGUI)
        for combo in (self.ui.deviceComboBox, self.ui.trainDeviceComboBox, self.ui.trainCriticInitComboBox,
                      self.ui.trainSliceAxisComboBox):
            combo.connect("currentIndexChanged(int)", self.updateParameterNodeFromGUI)
        for spin in (self.ui.strideSpinBox, self.ui.trainPhase1SpinBox, self.ui.trainPhase2SpinBox,
                     self.ui.trainBatchSizeSpinBox, self.ui.trainMaxPatchesSpinBox, self.ui.trainSeedSpinBox,
                     self.ui.trainAlphaSpinBox):
            spin.connect("valueChanged(double)" if isinstance(spin, qt.QDoubleSpinBox) else "valueChanged(int)",
                         self.updateParameterNodeFromGUI)
        self.ui.trainChannelCountSpinBox.connect("valueChanged(int)", self.onTrainChannelCountChanged)
        self.ui.trainChannelNamesLineEdit.connect("editingFinished()", self.updateParameterNodeFromGUI)
        self.ui.trainPresetComboBox.connect("currentIndexChanged(int)", self.onPresetChanged)
        self.ui.trainOutputPathLineEdit.connect("currentPathChanged(QString)", self.updateParameterNodeFromGUI)
        self.ui.thresholdSliderWidget.connect("valueChanged(double)", self.onThresholdChanged)
        self.ui.libraryPathLineEdit.connect("currentPathChanged(QString)", self.onLocationSettingsChanged)
        self.ui.binaryPathLineEdit.connect("currentPathChanged(QString)", self.onLocationSettingsChanged)

        # Buttons
        self.ui.scoreApplyButton.connect("clicked(bool)", self.onScoreApply)
        self.ui.trainApplyButton.connect("clicked(bool)", self.onTrainApply)
        self.ui.addTrainCaseButton.connect("clicked(bool)", self.onAddTrainCase)
        self.ui.removeTrainCaseButton.connect("clicked(bool)", self.onRemoveTrainCase)
        self.ui.checkSetupButton.connect("clicked(bool)", self.onCheckSetup)

        self.initializeParameterNode()

    def cleanup(self):
        self.removeObservers()
        for timer in ("_scoreTimer", "_trainTimer", "_thresholdTimer"):
            if hasattr(self, timer):
                getattr(self, timer).stop()
        if self._scoreJob is not None and self._scoreJob.running:
            self._scoreJob.cancel()
        if self._trainProcess is not None and self._trainProcess.running:
            self._trainProcess.cancel()
            self.logic.finishTraining(self._trainProcess)

    def enter(self):
        self.initializeParameterNode()

    def exit(self):
        if self._parameterNode is not None:
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.updateGUIFromParameterNode)

    def onSceneStartClose(self, caller, event):
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event):
        if self.parent.isEntered:
            self.initializeParameterNode()

    # -- parameter node ---------------------------------------------------------

    def initializeParameterNode(self):
        self.setParameterNode(self.logic.getParameterNode())
        node = self._parameterNode
        if not node.GetNodeReference(P.input_volume_role(0)):
            first = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
            if first and not first.IsA("vtkMRMLLabelMapVolumeNode"):
                node.SetNodeReferenceID(P.input_volume_role(0), first.GetID())

    def setParameterNode(self, inputParameterNode):
        if inputParameterNode:
            self.logic.setDefaultParameters(inputParameterNode)
        if self._parameterNode is not None:
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.updateGUIFromParameterNode)
        self._parameterNode = inputParameterNode
        if self._parameterNode is not None:
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.updateGUIFromParameterNode)
        self.updateGUIFromParameterNode()

    def _nodeSelector(self, nodeTypes, noneEnabled, noneDisplay=None, toolTip=""):
        selector = slicer.qMRMLNodeComboBox()
        selector.nodeTypes = nodeTypes
        selector.showChildNodeTypes = False
        selector.noneEnabled = noneEnabled
        if noneDisplay:
            selector.noneDisplay = noneDisplay
        selector.addEnabled = False
        selector.removeEnabled = False
        selector.toolTip = toolTip
        selector.setMRMLScene(slicer.mrmlScene)
        selector.connect("currentNodeChanged(vtkMRMLNode*)", self.updateParameterNodeFromGUI)
        return selector

    def _rebuildChannelSelectors(self, names):
        if [label.text for label in self._channelLabels] == [f"{n}:" for n in names]:
            return
        layout = self.ui.channelSelectorsWidget.layout()
        self._channelLabels, self._channelSelectors = [], []
        while layout.rowCount() > 0:
            layout.removeRow(0)  # deletes the row's widgets
        for c, name in enumerate(names):
            label = qt.QLabel(f"{name}:")
            selector = self._nodeSelector(["vtkMRMLScalarVolumeNode"], False,
                                          toolTip=f"Input volume for channel {c + 1} ({name}) of the model.")
            layout.addRow(label, selector)
            self._channelLabels.append(label)
            self._channelSelectors.append(selector)

    def _rebuildTrainTable(self, cases, channels):
        table = self.ui.trainCasesTableWidget
        names = self._trainChannelNames(channels)
        headers = names + ["lesion label (optional)"]
        if table.rowCount == cases and table.columnCount == channels + 1:
            table.setHorizontalHeaderLabels(headers)
            return
        table.setRowCount(0)  # deletes the old cell widgets
        table.setRowCount(cases)
        table.setColumnCount(channels + 1)
        table.setHorizontalHeaderLabels(headers)
        for r in range(cases):
            for c in range(channels):
                table.setCellWidget(r, c, self._nodeSelector(
                    ["vtkMRMLScalarVolumeNode"], True, "(none)", f"Case {r + 1}, channel {names[c]}."))
            table.setCellWidget(r, channels, self._nodeSelector(
                ["vtkMRMLLabelMapVolumeNode", "vtkMRMLSegmentationNode", "vtkMRMLScalarVolumeNode"], True,
                "no lesion label", f"Case {r + 1}: voxels to keep out of training (non-zero = lesion)."))
        table.resizeColumnsToContents()

    def _trainChannelNames(self, channels):
        text = self.ui.trainChannelNamesLineEdit.text.strip()
        names = [n.strip() for n in text.split(",") if n.strip()] if text else []
        if len(names) != channels:
            names = ["flair"] if channels == 1 else [f"ch{c}" for c in range(channels)]
        return names

    def updateGUIFromParameterNode(self, caller=None, event=None):
        if self._parameterNode is None or self._updatingGUIFromParameterNode:
            return
        self._updatingGUIFromParameterNode = True
        try:
            node = self._parameterNode
            values = P.read_all(node)
            if self.ui.modelPathLineEdit.currentPath != values["ModelPath"]:
                self.ui.modelPathLineEdit.currentPath = values["ModelPath"]
            self._refreshModel()
            for c, selector in enumerate(self._channelSelectors):
                selector.setCurrentNode(node.GetNodeReference(P.input_volume_role(c)))
            self.ui.brainMaskSelector.setCurrentNode(node.GetNodeReference(P.BRAIN_MASK))
            self.ui.outputMapSelector.setCurrentNode(node.GetNodeReference(P.OUTPUT_MAP))
            self.ui.outputSegmentationSelector.setCurrentNode(node.GetNodeReference(P.OUTPUT_SEGMENTATION))
            self.ui.deviceComboBox.setCurrentIndex(self.ui.deviceComboBox.findData(values["Device"]))
            self.ui.strideSpinBox.value = values["Stride"]
            threshold = values["Threshold"]
            if not math.isnan(threshold):
                self.ui.thresholdSliderWidget.value = threshold

            self.ui.trainChannelCountSpinBox.value = values["TrainChannelCount"]
            self.ui.trainChannelNamesLineEdit.text = values["TrainChannelNames"]
            self._rebuildTrainTable(values["TrainCaseCount"], values["TrainChannelCount"])
            table = self.ui.trainCasesTableWidget
            for r in range(table.rowCount):
                for c in range(values["TrainChannelCount"]):
                    table.cellWidget(r, c).setCurrentNode(node.GetNodeReference(P.train_volume_role(r, c)))
                table.cellWidget(r, values["TrainChannelCount"]).setCurrentNode(
                    node.GetNodeReference(P.train_label_role(r)))
            self.ui.trainPresetComboBox.setCurrentIndex(self.ui.trainPresetComboBox.findData(values["TrainPreset"]))
            self.ui.trainPhase1SpinBox.value = values["TrainPhase1Iterations"]
            self.ui.trainPhase2SpinBox.value = values["TrainPhase2Iterations"]
            self.ui.trainBatchSizeSpinBox.value = values["TrainBatchSize"]
            self.ui.trainAlphaSpinBox.value = values["TrainAlpha"]
            self.ui.trainCriticInitComboBox.setCurrentIndex(
                self.ui.trainCriticInitComboBox.findData(values["TrainCriticInit"]))
            self.ui.trainSliceAxisComboBox.setCurrentIndex(
                self.ui.trainSliceAxisComboBox.findData(values["TrainSliceAxis"]))
            self.ui.trainMaxPatchesSpinBox.value = values["TrainMaxPatches"]
            self.ui.trainSeedSpinBox.value = values["TrainSeed"]
            self.ui.trainDeviceComboBox.setCurrentIndex(
                self.ui.trainDeviceComboBox.findData(values["TrainDevice"]))
            if self.ui.trainOutputPathLineEdit.currentPath != values["TrainOutputModel"]:
                self.ui.trainOutputPathLineEdit.currentPath = values["TrainOutputModel"]
            self._updateButtons()
        finally:
            self._updatingGUIFromParameterNode = False

    def updateParameterNodeFromGUI(self, caller=None, event=None):
        if self._parameterNode is None or self._updatingGUIFromParameterNode:
            return
        node = self._parameterNode
        wasModified = node.StartModify()
        try:
            node.SetParameter("ModelPath", self.ui.modelPathLineEdit.currentPath)
            for c, selector in enumerate(self._channelSelectors):
                node.SetNodeReferenceID(P.input_volume_role(c), selector.currentNodeID)
            node.SetNodeReferenceID(P.BRAIN_MASK, self.ui.brainMaskSelector.currentNodeID)
            node.SetNodeReferenceID(P.OUTPUT_MAP, self.ui.outputMapSelector.currentNodeID)
            node.SetNodeReferenceID(P.OUTPUT_SEGMENTATION, self.ui.outputSegmentationSelector.currentNodeID)
            P.set_value(node, "Device", self.ui.deviceComboBox.currentData or "auto")
            P.set_value(node, "Stride", self.ui.strideSpinBox.value)

            channels = self.ui.trainChannelCountSpinBox.value
            P.set_value(node, "TrainChannelCount", channels)
            node.SetParameter("TrainChannelNames", self.ui.trainChannelNamesLineEdit.text.strip())
            table = self.ui.trainCasesTableWidget
            if table.columnCount == channels + 1:
                P.set_value(node, "TrainCaseCount", table.rowCount)
                for r in range(table.rowCount):
                    for c in range(channels):
                        node.SetNodeReferenceID(P.train_volume_role(r, c), table.cellWidget(r, c).currentNodeID)
                    node.SetNodeReferenceID(P.train_label_role(r), table.cellWidget(r, channels).currentNodeID)
            P.set_value(node, "TrainPreset", self.ui.trainPresetComboBox.currentData or "quick")
            P.set_value(node, "TrainPhase1Iterations", self.ui.trainPhase1SpinBox.value)
            P.set_value(node, "TrainPhase2Iterations", self.ui.trainPhase2SpinBox.value)
            P.set_value(node, "TrainBatchSize", self.ui.trainBatchSizeSpinBox.value)
            P.set_value(node, "TrainAlpha", self.ui.trainAlphaSpinBox.value)
            P.set_value(node, "TrainCriticInit", self.ui.trainCriticInitComboBox.currentData or "fine-tune")
            P.set_value(node, "TrainSliceAxis", self.ui.trainSliceAxisComboBox.currentData
                        if self.ui.trainSliceAxisComboBox.currentData is not None else 2)
            P.set_value(node, "TrainMaxPatches", self.ui.trainMaxPatchesSpinBox.value)
            P.set_value(node, "TrainSeed", self.ui.trainSeedSpinBox.value)
            P.set_value(node, "TrainDevice", self.ui.trainDeviceComboBox.currentData or "auto")
            node.SetParameter("TrainOutputModel", self.ui.trainOutputPathLineEdit.currentPath)
        finally:
            node.EndModify(wasModified)

    def _updateButtons(self):
        scoring = self._scoreJob is not None and self._scoreJob.running
        training = self._trainProcess is not None and self._trainProcess.running
        inputsSet = bool(self._channelSelectors) and all(s.currentNode() for s in self._channelSelectors)
        self.ui.scoreApplyButton.text = "Cancel" if scoring else "Apply"
        self.ui.scoreApplyButton.enabled = scoring or (self._model is not None and inputsSet)
        if scoring:
            self.ui.scoreApplyButton.toolTip = "Cancel scoring."
        elif self._model is None:
            self.ui.scoreApplyButton.toolTip = "Choose a model file first."
        elif not inputsSet:
            self.ui.scoreApplyButton.toolTip = "Choose an input volume for every channel."
        else:
            self.ui.scoreApplyButton.toolTip = "Score the input volumes with the model."
        table = self.ui.trainCasesTableWidget
        haveCase = table.rowCount > 0 and table.cellWidget(0, 0) is not None and table.cellWidget(0, 0).currentNode()
        if training:
            cancelling = self._trainProcess.cancel_requested
            self.ui.trainApplyButton.text = "Cancelling..." if cancelling else "Cancel"
            self.ui.trainApplyButton.enabled = not cancelling
            self.ui.trainApplyButton.toolTip = "Stop the training process."
        else:
            self.ui.trainApplyButton.text = "Apply"
            self.ui.trainApplyButton.enabled = bool(haveCase) and bool(self.ui.trainOutputPathLineEdit.currentPath)
            self.ui.trainApplyButton.toolTip = "Train a model in a separate adgan process."
        self.ui.thresholdSliderWidget.enabled = self._mapNode() is not None

    # -- locating -------------------------------------------------------------

    def onLocationSettingsChanged(self, _path=None):
        settings = qt.QSettings()
        settings.setValue(SETTING_LIBRARY, self.ui.libraryPathLineEdit.currentPath)
        settings.setValue(SETTING_BINARY, self.ui.binaryPathLineEdit.currentPath)
        self.logic.librarySetting = self.ui.libraryPathLineEdit.currentPath
        self.logic.binarySetting = self.ui.binaryPathLineEdit.currentPath
        self._modelKey = None
        self._refreshModel()

    def onCheckSetup(self):
        report = self.logic.setupReport()
        self.ui.setupStatusLabel.text = report
        self.log(report)

    # -- model ----------------------------------------------------------------

    def onModelPathChanged(self, path):
        self.updateParameterNodeFromGUI()
        self._refreshModel()
        self._updateButtons()

    def _refreshModel(self):
        path = self.ui.modelPathLineEdit.currentPath
        device = self.ui.deviceComboBox.currentData or "auto"
        key = (path, device)
        if key == self._modelKey:
            return
        self._modelKey = key
        self._model = None
        if not path:
            self.ui.modelInfoLabel.text = "Choose a model file (made by adgan train or the Train tab)."
            self._rebuildChannelSelectors([])
            return
        try:
            self._model = self.logic.getModel(path, device)
        except AdganError as e:
            self.ui.modelInfoLabel.text = str(e)
            self._rebuildChannelSelectors([])
            return
        self.ui.modelInfoLabel.text = self._model.describe()
        wasUpdating = self._updatingGUIFromParameterNode
        self._updatingGUIFromParameterNode = True
        try:
            self._rebuildChannelSelectors(self._model.channel_names)
            if self._parameterNode is not None:
                for c, selector in enumerate(self._channelSelectors):
                    selector.setCurrentNode(self._parameterNode.GetNodeReference(P.input_volume_role(c)))
        finally:
            self._updatingGUIFromParameterNode = wasUpdating

    # -- scoring --------------------------------------------------------------

    def onScoreApply(self):
        if self._scoreJob is not None and self._scoreJob.running:
            self._scoreJob.cancel()
            self.log("Cancelling scoring...")
            return
        with errorsShown("Scoring could not start."):
            self._modelKey = None
            self._refreshModel()
            if self._model is None:
                raise AdganError(self.ui.modelInfoLabel.text)
            inputs = [s.currentNode() for s in self._channelSelectors]
            for c, node in enumerate(inputs):
                if node is None:
                    raise AdganError(f"Choose the input volume for channel {c + 1} "
                                     f"({self._model.channel_names[c]}).")
            self._scoreJob = self.logic.startScoring(self._model, inputs, self.ui.brainMaskSelector.currentNode(),
                                                     self.ui.strideSpinBox.value)
            self._scoreInputs = inputs
            self._scoreStartedModel = self._model
            self.ui.scoreProgressBar.value = 0
            self.ui.scoreProgressBar.show()
            self.log(f"Scoring {', '.join(n.GetName() for n in inputs)} with {self._model.path.name} "
                     f"(stride {self.ui.strideSpinBox.value}, {self._model.device_name})...")
            self._scoreTimer.start()
        self._updateButtons()

    def onScorePoll(self):
        job = self._scoreJob
        if job is None:
            self._scoreTimer.stop()
            return
        time.sleep(POLL_YIELD_SECONDS)
        for event in job.poll():
            if event["event"] == "progress" and event.get("total"):
                self.ui.scoreProgressBar.value = int(100 * event["iteration"] / event["total"])
        final = job.finished
        if final is None:
            return
        self._scoreTimer.stop()
        self.ui.scoreProgressBar.hide()
        try:
            if final["status"] == "succeeded":
                with errorsShown("Could not show the anomaly map."):
                    self._showScoreResult(job)
            elif final["status"] == "cancelled":
                self.log("Scoring cancelled.")
            else:
                self.log(final["message"])
                slicer.util.errorDisplay(final["message"], windowTitle="adGAN scoring failed")
        finally:
            self._scoreJob = None
            self._updateButtons()

    def _showScoreResult(self, job):
        model = self._scoreStartedModel
        reference = self._scoreInputs[0]
        outputNode = self.ui.outputMapSelector.currentNode()
        outputNode = self.logic.makeMapVolume(reference, job.map, outputNode, threshold=model.threshold)
        self.ui.outputMapSelector.setCurrentNode(outputNode)
        lo, hi, step = maps.slider_range(job.map, model.threshold)
        slider = self.ui.thresholdSliderWidget
        slider.blockSignals(True)
        slider.minimum, slider.maximum, slider.singleStep = lo, hi, step
        slider.value = model.threshold
        slider.blockSignals(False)
        P.set_value(self._parameterNode, "Threshold", model.threshold)
        self.log(f"Anomaly map {outputNode.GetName()}: max score {float(job.map.max()):.3g} "
                 f"in {job.seconds:.1f} s.")
        self._updateButtons()
        self.onThresholdTimer()

    def _mapNode(self):
        return self.ui.outputMapSelector.currentNode()

    def onThresholdChanged(self, value):
        if self._updatingGUIFromParameterNode:
            return
        if self._parameterNode is not None:
            P.set_value(self._parameterNode, "Threshold", value)
        self._thresholdTimer.start()

    def onThresholdTimer(self):
        mapNode = self._mapNode()
        if mapNode is None or mapNode.GetImageData() is None:
            return
        with errorsShown("Could not update the segmentation."):
            segNode = self.ui.outputSegmentationSelector.currentNode()
            segNode, stats = self.logic.updateSegmentation(mapNode, segNode, self.ui.thresholdSliderWidget.value)
            self.ui.outputSegmentationSelector.setCurrentNode(segNode)
            self.ui.regionStatsLabel.text = (f"{stats['voxels']} voxels ({stats['volume_ml']:.2f} mL) at or above "
                                             f"{stats['threshold']:.2f}; max score {stats['max_score']:.2f}.")

    # -- training -------------------------------------------------------------

    def onPresetChanged(self, _index=None):
        if self._updatingGUIFromParameterNode:
            return
        preset = PRESETS.get(self.ui.trainPresetComboBox.currentData or "quick")
        if preset:
            self.ui.trainPhase1SpinBox.value = preset["phase1_iterations"]
            self.ui.trainPhase2SpinBox.value = preset["phase2_iterations"]
            self.ui.trainBatchSizeSpinBox.value = preset["batch_size"]
        self.updateParameterNodeFromGUI()

    def onTrainChannelCountChanged(self, channels):
        if self._updatingGUIFromParameterNode or self._parameterNode is None:
            return
        # The parameter node drives the table: its observer rebuilds the table
        # and restores the selections.
        P.set_value(self._parameterNode, "TrainChannelCount", channels)

    def onAddTrainCase(self):
        if self._parameterNode is None:
            return
        P.set_value(self._parameterNode, "TrainCaseCount", self.ui.trainCasesTableWidget.rowCount + 1)

    def onRemoveTrainCase(self):
        table = self.ui.trainCasesTableWidget
        node = self._parameterNode
        if node is None or table.rowCount <= 1:
            return
        row = table.currentRow() if table.currentRow() >= 0 else table.rowCount - 1
        channels = self.ui.trainChannelCountSpinBox.value
        wasModified = node.StartModify()
        try:
            # Shift the references of the rows below up by one.
            for r in range(row, table.rowCount - 1):
                for c in range(channels):
                    node.SetNodeReferenceID(P.train_volume_role(r, c),
                                            node.GetNodeReferenceID(P.train_volume_role(r + 1, c)))
                node.SetNodeReferenceID(P.train_label_role(r), node.GetNodeReferenceID(P.train_label_role(r + 1)))
            last = table.rowCount - 1
            for c in range(channels):
                node.SetNodeReferenceID(P.train_volume_role(last, c), None)
            node.SetNodeReferenceID(P.train_label_role(last), None)
            P.set_value(node, "TrainCaseCount", last)
        finally:
            node.EndModify(wasModified)

    def onTrainApply(self):
        if self._trainProcess is not None and self._trainProcess.running:
            self._trainProcess.cancel()
            self.log("Cancelling training...")
            self._updateButtons()
            return
        with errorsShown("Training could not start."):
            table = self.ui.trainCasesTableWidget
            channels = self.ui.trainChannelCountSpinBox.value
            cases, labels = [], []
            for r in range(table.rowCount):
                nodes = [table.cellWidget(r, c).currentNode() for c in range(channels)]
                if not any(nodes):
                    continue
                if not all(nodes):
                    raise AdganError(f"Training case {r + 1} lacks a volume for some channel.")
                cases.append(nodes)
                labels.append(table.cellWidget(r, channels).currentNode())
            options = dict(
                preset=self.ui.trainPresetComboBox.currentData or "quick",
                phase1_iterations=self.ui.trainPhase1SpinBox.value,
                phase2_iterations=self.ui.trainPhase2SpinBox.value,
                batch_size=self.ui.trainBatchSizeSpinBox.value,
                alpha=self.ui.trainAlphaSpinBox.value,
                critic_init=self.ui.trainCriticInitComboBox.currentData,
                slice_axis=self.ui.trainSliceAxisComboBox.currentData,
                max_patches=self.ui.trainMaxPatchesSpinBox.value,
                seed=self.ui.trainSeedSpinBox.value,
                device=self.ui.trainDeviceComboBox.currentData or "auto",
            )
            names = self._trainChannelNames(channels)
            self._trainProcess = self.logic.startTraining(
                cases, labels, self.ui.trainOutputPathLineEdit.currentPath, channelNames=names, **options)
            self._trainTracker = ProgressTracker(options["phase1_iterations"], options["phase2_iterations"])
            self._lastLoggedPercent = -1
            self.ui.trainProgressBar.value = 0
            self.ui.trainProgressBar.format = "Starting %p%"
            self.ui.trainProgressBar.show()
            self.ui.trainStatusLabel.text = "Starting adgan train..."
            self.log("Training: " + " ".join(self._trainProcess.command))
            self._trainTimer.start()
        self._updateButtons()

    def onTrainPoll(self):
        proc = self._trainProcess
        if proc is None:
            self._trainTimer.stop()
            return
        time.sleep(POLL_YIELD_SECONDS)
        for event in proc.poll():
            self._trainTracker.update(event)
            kind = event.get("event")
            if kind in ("info", "error", "result") or (kind == "log" and event.get("message")):
                self.log(describe(event))
            elif kind == "progress":
                decile = self._trainTracker.value // 10
                if decile != self._lastLoggedPercent:
                    self._lastLoggedPercent = decile
                    self.log(describe(event))
        self.ui.trainProgressBar.value = self._trainTracker.value
        if self._trainTracker.stage:
            self.ui.trainProgressBar.format = f"{STAGE_LABELS.get(self._trainTracker.stage, '')} %p%"
        self.ui.trainStatusLabel.text = self._trainTracker.text
        final = proc.finished
        if final is None:
            self._updateButtons()
            return
        self._trainTimer.stop()
        self.logic.finishTraining(proc)
        self._trainProcess = None
        self.ui.trainProgressBar.hide()
        self.ui.trainStatusLabel.text = final["message"]
        self.log(final["message"])
        if final["status"] == "succeeded":
            output = proc.options.output
            self.ui.modelPathLineEdit.currentPath = output
            self.ui.trainStatusLabel.text = f"Model written: {output}. It is selected in the Score tab."
        elif final["status"] == "failed":
            slicer.util.errorDisplay(f"Training failed:\n{final['message']}", windowTitle="adGAN training failed")
        self._updateButtons()

    # -- log ------------------------------------------------------------------

    def log(self, text):
        logging.info(text)
        self.ui.logTextEdit.appendPlainText(text)


#
# ADGANLogic
#


class ADGANLogic(ScriptedLoadableModuleLogic):
    """Slicer-side operations; usable from scripts without the widget::

        logic = ADGANLogic()
        model = logic.getModel("/path/model.adgan", "cpu")
        mapNode = logic.score(model, [flairNode])
        segNode, stats = logic.updateSegmentation(mapNode, None, model.threshold)
    """

    def __init__(self):
        ScriptedLoadableModuleLogic.__init__(self)
        self.librarySetting = ""
        self.binarySetting = ""
        self._models = {}

    def setDefaultParameters(self, parameterNode):
        P.set_defaults(parameterNode)

    # locating

    @staticmethod
    def extraPrefixes():
        prefixes = []
        for attr in ("slicerHome", "extensionsInstallPath"):
            value = getattr(slicer.app, attr, None)
            if value:
                prefixes.append(value)
        return prefixes

    def library(self):
        return native.load_library(setting=self.librarySetting or None, extra_prefixes=self.extraPrefixes())

    def binary(self):
        library = None
        if not self.binarySetting:
            try:
                library = locate.find_library(setting=self.librarySetting or None,
                                              extra_prefixes=self.extraPrefixes())
            except AdganError:
                library = None
        return locate.find_binary(setting=self.binarySetting or None, library=library,
                                  extra_prefixes=self.extraPrefixes())

    def setupReport(self):
        lines = []
        try:
            lib = self.library()
            lines.append(f"Library: {lib.path} (adGAN {lib.version}, ABI {lib.abi_version}, "
                         f"{lib.cuda_device_count()} CUDA device(s)).")
        except AdganError as e:
            lines.append(str(e))
        try:
            lines.append(f"Program: {self.binary()}.")
        except AdganError as e:
            lines.append(str(e))
        return "\n".join(lines)

    # models

    def getModel(self, path, device="auto"):
        path = os.path.abspath(os.path.expanduser(path))
        if not os.path.isfile(path):
            raise AdganError(f"The model file does not exist: {path}")
        key = (path, os.path.getmtime(path), device or "auto", self.librarySetting)
        model = self._models.get(key)
        if model is None:
            model = self.library().load_model(path, device or "auto")
            self._models = {key: model}  # keep one: models hold network weights
        return model

    # geometry and arrays

    @staticmethod
    def ijkToRas(volumeNode):
        m = vtk.vtkMatrix4x4()
        volumeNode.GetIJKToRASMatrix(m)
        return slicer.util.arrayFromVTKMatrix(m)

    @staticmethod
    def setIjkToRas(volumeNode, matrix):
        volumeNode.SetIJKToRASMatrix(slicer.util.vtkMatrixFromArray(np.asarray(matrix, dtype=float)))

    def volumeArrays(self, nodes):
        """Voxel arrays ([k, j, i]) of volumes on one grid."""
        arrays = []
        reference = nodes[0]
        refShape = slicer.util.arrayFromVolume(reference).shape
        refMatrix = self.ijkToRas(reference)
        for node in nodes:
            if node.GetImageData() is None:
                raise AdganError(f"The volume {node.GetName()} has no voxels.")
            a = slicer.util.arrayFromVolume(node)
            if a.ndim != 3:
                raise AdganError(f"The volume {node.GetName()} is not a scalar 3-D volume.")
            if not geometry.same_grid(a.shape, self.ijkToRas(node), refShape, refMatrix):
                raise AdganError(
                    f"{node.GetName()} and {reference.GetName()} are not on the same voxel grid "
                    "(dimensions and IJK-to-RAS): resample one onto the other first "
                    "(e.g. with the Resample Scalar/Vector/DWI Volume module).")
            arrays.append(a)
        return arrays

    @staticmethod
    def segmentationArray(segmentationNode, referenceNode):
        """All segments of a segmentation (hidden ones too) as one uint8 array
        (non-zero = in a segment) on the reference volume's voxel grid.

        The extent is the reference geometry's: the export's default
        (EXTENT_UNION_OF_EFFECTIVE_SEGMENTS) would crop to the segments'
        bounding box whenever the reference lacks voxels."""
        if referenceNode is None or referenceNode.GetImageData() is None:
            raise AdganError(f"{segmentationNode.GetName()}: a segmentation needs a reference volume with voxels.")
        segmentIds = vtk.vtkStringArray()
        segmentationNode.GetSegmentation().GetSegmentIDs(segmentIds)
        shape = slicer.util.arrayFromVolume(referenceNode).shape
        if segmentIds.GetNumberOfValues() == 0:
            return np.zeros(shape, dtype=np.uint8)
        labelNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "__adgan_temp__")
        try:
            if not slicer.modules.segmentations.logic().ExportSegmentsToLabelmapNode(
                    segmentationNode, segmentIds, labelNode, referenceNode,
                    slicer.vtkSegmentation.EXTENT_REFERENCE_GEOMETRY):
                raise AdganError(f"Could not export the segmentation {segmentationNode.GetName()} "
                                 f"onto {referenceNode.GetName()}.")
            array = np.array(slicer.util.arrayFromVolume(labelNode) != 0, dtype=np.uint8)
        finally:
            display = labelNode.GetDisplayNode()
            if display is not None and display.GetColorNode() is not None:
                slicer.mrmlScene.RemoveNode(display.GetColorNode())
            slicer.mrmlScene.RemoveNode(labelNode)
        if array.shape != shape:
            raise AdganError(f"{segmentationNode.GetName()} exported as {array.shape}, not on the voxel grid "
                             f"of {referenceNode.GetName()} {shape}.")
        return array

    def maskArray(self, maskNode, referenceNode):
        if maskNode is None:
            return None
        if maskNode.IsA("vtkMRMLSegmentationNode"):
            return self.segmentationArray(maskNode, referenceNode)
        self.volumeArrays([referenceNode, maskNode])  # same grid, or a clear error
        return np.array(slicer.util.arrayFromVolume(maskNode) != 0, dtype=np.uint8)

    # scoring

    def startScoring(self, model, inputNodes, maskNode=None, stride=8):
        model.check_channel_count(len(inputNodes))
        arrays = self.volumeArrays(list(inputNodes))
        mask = self.maskArray(maskNode, inputNodes[0])
        return ScoreJob(model, arrays, mask=mask, stride=int(stride)).start()

    @staticmethod
    def waitFor(job, timeout=None, onEvent=None):
        """Wait for a ScoreJob or TrainingProcess while keeping Slicer responsive."""
        return wait_for_finish(job, "the job", timeout, onEvent, interval=0.02,
                               on_idle=slicer.app.processEvents)

    def score(self, model, inputNodes, maskNode=None, stride=8, outputNode=None, timeout=None, show=True):
        """Score and wait (keeps the GUI responsive); returns the map volume."""
        job = self.startScoring(model, inputNodes, maskNode, stride)
        final = self.waitFor(job, timeout)
        if final["status"] != "succeeded":
            raise AdganError(final["message"])
        return self.makeMapVolume(inputNodes[0], job.map, outputNode, threshold=model.threshold, show=show)

    def makeMapVolume(self, referenceNode, scoreMap, outputNode=None, threshold=3.0, show=True):
        """Put a map on the reference volume's geometry (IJK-to-RAS: spacing,
        origin, directions; and its parent transform) and show it over it."""
        if outputNode is None:
            name = slicer.mrmlScene.GenerateUniqueName(referenceNode.GetName() + " anomaly map")
            outputNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", name)
        slicer.util.updateVolumeFromArray(outputNode, np.asarray(scoreMap, dtype=np.float32))
        geom = geometry.VolumeGeometry.from_ijk_to_ras(self.ijkToRas(referenceNode))
        self.setIjkToRas(outputNode, geom.ijk_to_ras())
        outputNode.SetAndObserveTransformNodeID(referenceNode.GetTransformNodeID())
        if show:
            self.showMap(referenceNode, outputNode, threshold)
        return outputNode

    @staticmethod
    def showMap(referenceNode, mapNode, threshold):
        mapNode.CreateDefaultDisplayNodes()
        display = mapNode.GetDisplayNode()
        for colorId in ("vtkMRMLColorTableNodeFileColdToHotRainbow.txt", "vtkMRMLColorTableNodeFileInferno.txt",
                        "vtkMRMLColorTableNodeRainbow"):
            if slicer.mrmlScene.GetNodeByID(colorId) is not None:
                display.SetAndObserveColorNodeID(colorId)
                break
        below, lo, hi = maps.display_range(slicer.util.arrayFromVolume(mapNode), threshold)
        display.AutoWindowLevelOff()
        display.SetWindowLevelMinMax(lo, hi)
        display.AutoThresholdOff()
        display.SetLowerThreshold(below)
        display.SetUpperThreshold(max(hi, below) * 10 + 1)
        display.ApplyThresholdOn()
        slicer.util.setSliceViewerLayers(background=referenceNode, foreground=mapNode, foregroundOpacity=0.6)

    def updateSegmentation(self, mapNode, segmentationNode, threshold):
        """Make (or update) the segment of voxels at or above the threshold."""
        scoreMap = slicer.util.arrayFromVolume(mapNode)
        if segmentationNode is None:
            name = slicer.mrmlScene.GenerateUniqueName(mapNode.GetName() + " region")
            segmentationNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", name)
        segmentationNode.CreateDefaultDisplayNodes()
        segmentationNode.SetReferenceImageGeometryParameterFromVolumeNode(mapNode)
        segmentationNode.SetAndObserveTransformNodeID(mapNode.GetTransformNodeID())
        segmentation = segmentationNode.GetSegmentation()
        if segmentation.GetSegment(SEGMENT_ID) is None:
            segmentation.AddEmptySegment(SEGMENT_ID, SEGMENT_NAME, [1.0, 0.85, 0.1])
        mask = maps.anomaly_mask(scoreMap, threshold)
        slicer.util.updateSegmentBinaryLabelmapFromArray(mask, segmentationNode, SEGMENT_ID, mapNode)
        spacing = mapNode.GetSpacing()
        stats = maps.region_stats(scoreMap, threshold, spacing[0] * spacing[1] * spacing[2])
        return segmentationNode, stats

    # training

    def exportVolume(self, node, path, referenceNode=None, label=False):
        """Write a volume (or a segmentation, as a label map on the reference
        grid) as NIfTI for the adgan program."""
        if node.IsA("vtkMRMLSegmentationNode"):
            array = self.segmentationArray(node, referenceNode)
            return nifti.write(path, array, self.ijkToRas(referenceNode))
        if referenceNode is not None and node is not referenceNode:
            self.volumeArrays([referenceNode, node])
        array = slicer.util.arrayFromVolume(node)
        if label:
            array = (array != 0).astype(np.uint8)
        return nifti.write(path, array, self.ijkToRas(node))

    def startTraining(self, cases, labels, outputPath, channelNames=None, preset="quick", **overrides):
        """Export the cases and start ``adgan train`` in its own process.

        ``cases``: list of lists of volume nodes (channels of each case);
        ``labels``: per case a label/segmentation node of voxels to exclude, or None.
        Returns a :class:`ADGANLib.process.TrainingProcess` (poll it)."""
        if not cases:
            raise AdganError("Choose at least one training volume.")
        if not outputPath:
            raise AdganError("Choose the output model file.")
        binary = self.binary()
        folder = tempfile.mkdtemp(prefix="adgan-train-")
        try:
            casePaths, labelPaths = [], []
            for i, nodes in enumerate(cases):
                self.volumeArrays(list(nodes))
                paths = []
                for c, node in enumerate(nodes):
                    paths.append(str(self.exportVolume(node, os.path.join(folder, f"case{i}_ch{c}.nii.gz"))))
                casePaths.append(paths)
                label = labels[i] if labels and i < len(labels) else None
                if label is not None:
                    labelPaths.append(str(self.exportVolume(
                        label, os.path.join(folder, f"case{i}_label.nii.gz"), referenceNode=nodes[0], label=True)))
                else:
                    labelPaths.append(None)
            if any(labelPaths) and not all(labelPaths):
                # adgan takes a label for every case or for none: an empty one
                # excludes nothing.
                for i, p in enumerate(labelPaths):
                    if p is None:
                        ref = cases[i][0]
                        empty = np.zeros(slicer.util.arrayFromVolume(ref).shape, dtype=np.uint8)
                        labelPaths[i] = str(nifti.write(os.path.join(folder, f"case{i}_label.nii.gz"),
                                                        empty, self.ijkToRas(ref)))
            outputPath = os.path.abspath(os.path.expanduser(outputPath))
            options = TrainOptions(cases=casePaths, output=outputPath,
                                   excludes=labelPaths if any(labelPaths) else None,
                                   channel_names=channelNames, preset=preset, **overrides)
            env = None
            startupEnvironment = getattr(slicer.util, "startupEnvironment", None)
            if startupEnvironment is not None:
                env = dict(startupEnvironment())  # without the Slicer launcher's library paths
            proc = TrainingProcess(binary, options, env=env)
            proc.exportFolder = folder
            return proc.start()
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise

    @staticmethod
    def finishTraining(proc):
        """Remove the exported volumes (after the process ended or was cancelled)."""
        folder = getattr(proc, "exportFolder", None)
        if folder and proc.finished is not None:
            shutil.rmtree(folder, ignore_errors=True)
        elif folder:
            # Still running (cancel pending): remove once it ended.
            qt.QTimer.singleShot(10000, lambda: shutil.rmtree(folder, ignore_errors=True))

    def train(self, cases, labels, outputPath, timeout=None, onEvent=None, **options):
        """Train and wait (keeps the GUI responsive); returns the final event."""
        proc = self.startTraining(cases, labels, outputPath, **options)
        try:
            return self.waitFor(proc, timeout, onEvent)
        finally:
            if proc.finished is None:
                proc.cancel()
            self.finishTraining(proc)


#
# ADGANTest
#


class ADGANTest(ScriptedLoadableModuleTest):
    """Run with "Reload and Test" in developer mode, or from the command line
    (see slicer-module/README.md). Needs libadgan and the adgan program (see
    the module's Settings or ADGAN_PREFIX) and a brain MR volume: the
    ADGAN_TEST_VOLUME file, the adgan checkout's demo volume, or Slicer's
    MRBrainTumor1 sample."""

    modelPath = None

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_ADGAN_setup_found()
        self.setUp()
        self.test_ADGAN_train_score_segment()
        self.setUp()
        self.test_ADGAN_errors()
        self.setUp()
        self.test_ADGAN_cancel_training()
        self.setUp()
        self.test_ADGAN_widget()
        self.delayDisplay("adGAN tests passed")

    # helpers

    def _volume(self):
        path = os.environ.get("ADGAN_TEST_VOLUME")
        if not path:
            repo = os.path.abspath(os.path.join(_MODULE_DIR, "..", ".."))
            candidate = os.path.join(repo, "data", "demo", "TCGA-FG-6692", "fla_bet.nii.gz")
            path = candidate if os.path.isfile(candidate) else None
        if path:
            return slicer.util.loadVolume(path)
        import SampleData

        return SampleData.downloadSample("MRBrainTumor1")

    def _tempDir(self):
        if not hasattr(self, "_tmp"):
            self._tmp = tempfile.mkdtemp(prefix="adgan-slicer-test-")
        return self._tmp

    def _tinyOptions(self):
        return dict(preset="quick", phase1_iterations=3, phase2_iterations=3, batch_size=8,
                    max_patches=500, device="cpu")

    # tests

    def test_ADGAN_setup_found(self):
        self.delayDisplay("Finding libadgan and the adgan program")
        logic = ADGANLogic()
        lib = logic.library()
        self.assertTrue(lib.version)
        self.assertTrue(os.path.isfile(str(logic.binary())))

    def test_ADGAN_train_score_segment(self):
        self.delayDisplay("Training a tiny model out of process")
        logic = ADGANLogic()
        volume = self._volume()
        modelPath = os.path.join(self._tempDir(), "model.adgan")
        events = []
        final = logic.train([[volume]], [None], modelPath, timeout=600, onEvent=events.append,
                            **self._tinyOptions())
        self.assertEqual(final["status"], "succeeded", final["message"])
        stages = {e.get("stage") for e in events if e.get("event") == "progress"}
        self.assertTrue({"wgan", "critic"} <= stages, stages)
        self.assertTrue(os.path.isfile(modelPath))
        ADGANTest.modelPath = modelPath

        self.delayDisplay("Scoring through libadgan")
        model = logic.getModel(modelPath, "cpu")
        self.assertEqual(model.channels, 1)
        mapNode = logic.score(model, [volume], stride=16, timeout=600)
        self.assertTrue(geometry.same_grid(slicer.util.arrayFromVolume(mapNode).shape, logic.ijkToRas(mapNode),
                                           slicer.util.arrayFromVolume(volume).shape, logic.ijkToRas(volume)))
        self.assertEqual(mapNode.GetSpacing(), volume.GetSpacing())
        self.assertEqual(mapNode.GetOrigin(), volume.GetOrigin())
        scoreMap = slicer.util.arrayFromVolume(mapNode)
        self.assertTrue(np.isfinite(scoreMap).all())
        self.assertGreater(int((scoreMap != 0).sum()), 1000)
        layout = slicer.app.layoutManager()
        if layout is not None:
            compositeNode = layout.sliceWidget("Red").sliceLogic().GetSliceCompositeNode()
            self.assertEqual(compositeNode.GetForegroundVolumeID(), mapNode.GetID())

        self.delayDisplay("Thresholding into a segmentation")
        segNode, stats = logic.updateSegmentation(mapNode, None, model.threshold)
        segArray = slicer.util.arrayFromSegmentBinaryLabelmap(segNode, SEGMENT_ID, mapNode)
        self.assertEqual(int(segArray.sum()), stats["voxels"])
        self.assertEqual(stats["voxels"], int(maps.anomaly_mask(scoreMap, model.threshold).sum()))

    def test_ADGAN_errors(self):
        self.delayDisplay("Error messages")
        logic = ADGANLogic()
        logic.librarySetting = os.path.join(self._tempDir(), "no-such-libadgan.so")
        with self.assertRaises(AdganError) as ctx:
            logic.library()
        self.assertIn("does not exist", str(ctx.exception))
        self.assertIn("no-such-libadgan.so", str(ctx.exception))
        if ADGANTest.modelPath:
            logic = ADGANLogic()
            model = logic.getModel(ADGANTest.modelPath, "cpu")
            volume = self._volume()
            with self.assertRaises(AdganError) as ctx:
                logic.startScoring(model, [volume, volume])
            self.assertIn("needs 1 input volume(s)", str(ctx.exception))

    def test_ADGAN_cancel_training(self):
        self.delayDisplay("Cancelling a training run")
        logic = ADGANLogic()
        volume = self._volume()
        out = os.path.join(self._tempDir(), "cancelled.adgan")
        options = self._tinyOptions()
        options.update(phase1_iterations=100000, phase2_iterations=100000)
        proc = logic.startTraining([[volume]], [None], out, **options)
        seen = []
        deadline = time.monotonic() + 300
        while not any(e.get("event") == "progress" for e in seen) and proc.finished is None:
            seen.extend(proc.poll())
            slicer.app.processEvents()
            self.assertLess(time.monotonic(), deadline, "no progress from adgan train")
            time.sleep(0.05)
        proc.cancel()
        final = logic.waitFor(proc, timeout=60)
        logic.finishTraining(proc)
        self.assertEqual(final["status"], "cancelled", final["message"])
        self.assertFalse(os.path.exists(out))

    def test_ADGAN_widget(self):
        self.delayDisplay("Module panel")
        widget = slicer.modules.adgan.widgetRepresentation().self()
        for name in ("modelPathLineEdit", "scoreApplyButton", "trainApplyButton", "thresholdSliderWidget",
                     "trainCasesTableWidget", "libraryPathLineEdit", "binaryPathLineEdit"):
            self.assertTrue(hasattr(widget.ui, name), name)
        if ADGANTest.modelPath:
            widget.ui.modelPathLineEdit.currentPath = ADGANTest.modelPath
            slicer.app.processEvents()
            self.assertEqual(len(widget._channelSelectors), 1)
            self.assertIn("flair", widget.ui.modelInfoLabel.text)
