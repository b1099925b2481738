"""adGAN anomaly detection in 3D Slicer: train on normal MR volumes, score a
case into a voxel anomaly map, threshold it into a segmentation.

The module is Slicer glue only. Every computation runs in the ``adgan``
program, out of Slicer's process (training, scoring, model information, the
device list): the panel exports the volumes to temporary NIfTI files, starts
``adgan ... --json``, polls its JSON lines from a QTimer, and reads the map
back. A libtorch crash therefore never takes the scene down, Slicer's own
PyTorch (if loaded) cannot clash with adgan's libtorch, and the GUI never
waits. Everything that needs no Slicer (finding the program, the process
runner, geometry, NIfTI, progress text) lives in ADGANLib beside this file and
is tested with pytest.
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

from ADGANLib import geometry, locate, maps, nifti  # noqa: E402
from ADGANLib import parameters as P  # noqa: E402
from ADGANLib.errors import AdganError  # noqa: E402
from ADGANLib.process import (  # noqa: E402
    PRESETS,
    ModelInfo,
    ScoreOptions,
    ScoreProcess,
    TrainingProcess,
    TrainOptions,
    cpu_training_estimate,
    devices_from_final,
    devices_process,
    format_duration,
    model_info_process,
    resolve_device,
    runs_on_cpu,
)
from ADGANLib.progress import STAGE_LABELS, ProgressTracker, describe, wait_for_finish  # noqa: E402

SETTING_BINARY = "ADGAN/BinaryPath"
SETTING_MODELS_FOLDER = "ADGAN/ModelsFolder"
SETTING_RECENT_MODELS = "ADGAN/RecentModels"
MAX_RECENT_MODELS = 10
MODEL_SUFFIXES = (".adgan", ".safetensors")
SEGMENT_ID = "anomaly"
SEGMENT_NAME = "Anomalous region"
SEGMENT_COLOR = (1.0, 0.85, 0.1)
# The segment's TerminologyEntry tag. Format (7 parts separated by "~", each
# code a "scheme^value^meaning" triplet): context ~ category ~ type ~ type
# modifier ~ anatomic context ~ region ~ region modifier; specified in Slicer's
# developer guide, modules/segmentations.md ("TerminologyEntry tag"), and
# written the same way by SlicerTotalSegmentator (TotalSegmentator.py,
# loadTotalSegmentatorLabelTerminology). Category: SNOMED CT 49755003
# "Morphologically Altered Structure" (DICOM master list); type: SNOMED CT
# 52988006 "Lesion" (a morphologic abnormality; the DICOM list's types under
# that category - mass, cyst, oedema, neoplasm, ... - each claim more than an
# anomaly map shows); region: SNOMED CT 12738006 "Brain".
SEGMENT_TERMINOLOGY = (
    "Segmentation category and type - DICOM master list"
    "~SCT^49755003^Morphologically Altered Structure"
    "~SCT^52988006^Lesion"
    "~^^"
    "~Anatomic codes - DICOM master list"
    "~SCT^12738006^Brain"
    "~^^"
)
DEVICES = [("auto", "auto (GPU when available)"), ("cpu", "CPU")]
TIMER_MS = 100


@contextlib.contextmanager
def errorsShown(message):
    """Show an exception in a dialog (Slicer's tryWithErrorDisplay) and
    carry on: a failed click must not leave the panel half-updated."""
    try:
        with slicer.util.tryWithErrorDisplay(message, waitCursor=True):
            yield
    except Exception:
        logging.exception(message)


def _settingList(value):
    """A QSettings list value (PythonQt gives a str for a one-item list)."""
    if not value:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


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
32x32 patches scores every voxel of a case. <b>Score</b>: choose a model (a
recent one, one of the models folder, or a file; its channels, budget,
calibration and validation curve are shown), one volume per channel the model
needs, the device, and Apply; the anomaly map (standard deviations of normal
tissue) appears over the input, placed in the input's study, and the
threshold slider makes a segmentation of the anomalous region. <b>Train</b>:
choose healthy volumes (or patients with their lesions labelled), a preset and
an output file. Scoring, training and reading a model all run in a separate
<tt>adgan</tt> process and can be cancelled; Slicer never waits for them.
The module needs the adgan program: see Settings.
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
        self._modelInfo = None  # ModelInfo of the chosen model, once adgan info answered
        self._infoPath = None  # the model path the info (or its request) is for
        self._infoProcess = None
        self._curveProcess = None
        self._devicesProcess = None
        self._devices = None  # adgan devices' answer (None: not known)
        self._scoreJob = None
        self._trainProcess = None
        self._trainTracker = None
        self._lastLoggedPercent = -1
        self._tempDir = None

    # -- setup ---------------------------------------------------------------

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/ADGAN.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)

        self.logic = ADGANLogic()
        settings = qt.QSettings()
        self.ui.binaryPathLineEdit.currentPath = settings.value(SETTING_BINARY, "") or ""
        self.ui.modelsFolderPathLineEdit.currentPath = settings.value(SETTING_MODELS_FOLDER, "") or ""
        self.logic.binarySetting = self.ui.binaryPathLineEdit.currentPath

        self._fillDeviceCombos()
        for name in PRESETS:
            self.ui.trainPresetComboBox.addItem(name, name)
        self.ui.trainCriticInitComboBox.addItem("fine-tune (adGAN(c))", "fine-tune")
        self.ui.trainCriticInitComboBox.addItem("reset (adGAN)", "reset")
        for axis, text in ((0, "0 (sagittal on RAS grids)"), (1, "1 (coronal)"), (2, "2 (axial)")):
            self.ui.trainSliceAxisComboBox.addItem(text, axis)

        self.ui.scoreProgressBar.hide()
        self.ui.trainProgressBar.hide()
        self.ui.modelCurveLabel.hide()
        self.ui.trainCasesTableWidget.horizontalHeader().setStretchLastSection(True)
        self.ui.trainCasesTableWidget.setSelectionBehavior(qt.QAbstractItemView.SelectRows)
        self.ui.trainCasesTableWidget.verticalHeader().setVisible(True)

        # One timer polls every adgan process the panel runs (reading a
        # model, the device list, scoring); training has its own, slower one.
        # Polling only reads queues the reader threads fill: it never waits.
        self._processTimer = qt.QTimer()
        self._processTimer.setInterval(TIMER_MS)
        self._processTimer.connect("timeout()", self.onProcessPoll)
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
        self.ui.recentModelsComboBox.connect("currentIndexChanged(int)", self.onRecentModelChosen)
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
        self.ui.binaryPathLineEdit.connect("currentPathChanged(QString)", self.onLocationSettingsChanged)
        self.ui.modelsFolderPathLineEdit.connect("currentPathChanged(QString)", self.onModelsFolderChanged)

        # Buttons
        self.ui.scoreApplyButton.connect("clicked(bool)", self.onScoreApply)
        self.ui.trainApplyButton.connect("clicked(bool)", self.onTrainApply)
        self.ui.addTrainCaseButton.connect("clicked(bool)", self.onAddTrainCase)
        self.ui.removeTrainCaseButton.connect("clicked(bool)", self.onRemoveTrainCase)
        self.ui.checkSetupButton.connect("clicked(bool)", self.onCheckSetup)

        self._refreshRecentModels()
        self.initializeParameterNode()
        self._startDevices()

    def cleanup(self):
        self.removeObservers()
        for timer in ("_processTimer", "_trainTimer", "_thresholdTimer"):
            if hasattr(self, timer):
                getattr(self, timer).stop()
        for proc in (self._infoProcess, self._curveProcess, self._devicesProcess):
            if proc is not None and proc.running:
                proc.cancel()
        if self._scoreJob is not None and self._scoreJob.running:
            self._scoreJob.cancel()
            self.logic.finishScoring(self._scoreJob)
        if self._trainProcess is not None and self._trainProcess.running:
            self._trainProcess.cancel()
            self.logic.finishTraining(self._trainProcess)
        if self._tempDir:
            shutil.rmtree(self._tempDir, ignore_errors=True)
            self._tempDir = None

    def onReload(self):
        """Slicer's reload re-executes ADGAN.py only: drop ADGANLib's modules
        first so that its imports read them from disk again."""
        for name in [n for n in sys.modules if n == "ADGANLib" or n.startswith("ADGANLib.")]:
            del sys.modules[name]
        ScriptedLoadableModuleWidget.onReload(self)

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

    def _temporaryFolder(self):
        if not self._tempDir or not os.path.isdir(self._tempDir):
            self._tempDir = tempfile.mkdtemp(prefix="adgan-panel-")
        return self._tempDir

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
            self._requestModelInfo(values["ModelPath"])
            for c, selector in enumerate(self._channelSelectors):
                selector.setCurrentNode(node.GetNodeReference(P.input_volume_role(c)))
            self.ui.brainMaskSelector.setCurrentNode(node.GetNodeReference(P.BRAIN_MASK))
            self.ui.outputMapSelector.setCurrentNode(node.GetNodeReference(P.OUTPUT_MAP))
            self.ui.outputSegmentationSelector.setCurrentNode(node.GetNodeReference(P.OUTPUT_SEGMENTATION))
            self._selectDevice(self.ui.deviceComboBox, values["Device"])
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
            self._selectDevice(self.ui.trainDeviceComboBox, values["TrainDevice"])
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
        if scoring:
            cancelling = self._scoreJob.cancel_requested
            self.ui.scoreApplyButton.text = "Cancelling..." if cancelling else "Cancel"
            self.ui.scoreApplyButton.enabled = not cancelling
            self.ui.scoreApplyButton.toolTip = "Stop the scoring process."
        else:
            self.ui.scoreApplyButton.text = "Apply"
            self.ui.scoreApplyButton.enabled = self._modelInfo is not None and inputsSet
            if self._modelInfo is None:
                self.ui.scoreApplyButton.toolTip = ("The model is being read." if self._infoProcess is not None
                                                    else "Choose a model file first.")
            elif not inputsSet:
                self.ui.scoreApplyButton.toolTip = "Choose an input volume for every channel."
            else:
                self.ui.scoreApplyButton.toolTip = "Score the input volumes with the model (in an adgan process)."
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

    def _startTimer(self):
        if not self._processTimer.isActive():
            self._processTimer.start()

    def onProcessPoll(self):
        """Poll the adgan processes the panel runs; stop when none is left."""
        if self._devicesProcess is not None:
            self._pollDevices()
        if self._infoProcess is not None:
            self._pollModelInfo()
        if self._curveProcess is not None:
            self._pollCurve()
        if self._scoreJob is not None:
            self._pollScoring()
        if all(p is None for p in (self._devicesProcess, self._infoProcess, self._curveProcess, self._scoreJob)):
            self._processTimer.stop()

    # -- settings -------------------------------------------------------------

    def onLocationSettingsChanged(self, _path=None):
        qt.QSettings().setValue(SETTING_BINARY, self.ui.binaryPathLineEdit.currentPath)
        self.logic.binarySetting = self.ui.binaryPathLineEdit.currentPath
        self._infoPath = None
        self._requestModelInfo(self.ui.modelPathLineEdit.currentPath)
        self._startDevices()

    def onModelsFolderChanged(self, path):
        qt.QSettings().setValue(SETTING_MODELS_FOLDER, path or "")
        if path and os.path.isdir(path):
            self.ui.modelsFolderPathLineEdit.addCurrentPathToHistory()
        self._refreshRecentModels()

    def onCheckSetup(self):
        report = self.logic.setupReport(self._devices)
        self.ui.setupStatusLabel.text = report
        self.log(report)
        self._startDevices()

    # -- devices --------------------------------------------------------------

    def _fillDeviceCombos(self):
        devices = [value for value, _ in DEVICES]
        if self._devices is not None:
            devices += [d for d in self._devices["devices"] if d not in devices]
        for combo in (self.ui.deviceComboBox, self.ui.trainDeviceComboBox):
            current = combo.currentData
            wasBlocked = combo.blockSignals(True)
            try:
                combo.clear()
                for value, text in DEVICES:
                    combo.addItem(text, value)
                for value in devices[len(DEVICES):]:
                    combo.addItem(f"{value} (GPU)" if value.startswith("cuda") else value, value)
                index = combo.findData(current) if current else 0
                if index < 0 and current:
                    combo.addItem(f"{current} (not found)", current)
                    index = combo.findData(current)
                combo.setCurrentIndex(max(index, 0))
            finally:
                combo.blockSignals(wasBlocked)

    @staticmethod
    def _selectDevice(combo, value):
        """Select a device; one the list lacks (a scene saved on another
        computer) stays selected, marked, and falls back at Apply."""
        index = combo.findData(value)
        if index < 0:
            combo.addItem(f"{value} (not found)", value)
            index = combo.findData(value)
        combo.setCurrentIndex(index)

    def _startDevices(self):
        if self._devicesProcess is not None and self._devicesProcess.running:
            return
        try:
            self._devicesProcess = self.logic.startDevices()
        except AdganError as e:
            self._devicesProcess = None
            self.log(str(e))
            return
        self._startTimer()

    def _pollDevices(self):
        proc = self._devicesProcess
        proc.poll()
        if proc.finished is None:
            return
        self._devicesProcess = None
        devices = devices_from_final(proc.finished)
        if devices is None:
            self.log("This adgan cannot list its devices (adgan devices --json: "
                     f"{proc.finished['message'].splitlines()[0]}); offering auto and CPU.")
            return
        self._devices = devices
        self._fillDeviceCombos()
        self.log(f"Devices: {', '.join(devices['devices'])} (default {devices['default']}).")

    def _resolveDevice(self, requested, what):
        device, message = resolve_device(requested, self._devices)
        if message:
            self.log(f"{what}: {message}")
        return device

    # -- models ---------------------------------------------------------------

    def _recentModels(self):
        return [p for p in _settingList(qt.QSettings().value(SETTING_RECENT_MODELS)) if p]

    def _rememberModel(self, path):
        path = os.path.abspath(path)
        recent = [path] + [p for p in self._recentModels() if p != path]
        qt.QSettings().setValue(SETTING_RECENT_MODELS, recent[:MAX_RECENT_MODELS])
        self._refreshRecentModels()

    def _refreshRecentModels(self):
        """The combo: recent models (newest first), then the models folder's."""
        combo = self.ui.recentModelsComboBox
        paths = [p for p in self._recentModels() if os.path.isfile(p)]
        folder = self.ui.modelsFolderPathLineEdit.currentPath
        if folder and os.path.isdir(folder):
            found = [os.path.join(folder, f) for f in os.listdir(folder) if f.endswith(MODEL_SUFFIXES)]
            found.sort(key=lambda p: os.path.getmtime(p), reverse=True)
            paths += [os.path.abspath(p) for p in found if os.path.abspath(p) not in paths]
        wasBlocked = combo.blockSignals(True)
        try:
            combo.clear()
            combo.addItem(f"Recent and folder models ({len(paths)})" if paths else "No recent models", "")
            for p in paths:
                combo.addItem(os.path.basename(p) + "  -  " + os.path.dirname(p), p)
            index = combo.findData(os.path.abspath(self.ui.modelPathLineEdit.currentPath)) \
                if self.ui.modelPathLineEdit.currentPath else -1
            combo.setCurrentIndex(max(index, 0))
        finally:
            combo.blockSignals(wasBlocked)

    def onRecentModelChosen(self, index):
        path = self.ui.recentModelsComboBox.itemData(index) if index >= 0 else None
        if path:
            self.ui.modelPathLineEdit.currentPath = path

    def onModelPathChanged(self, path):
        self.updateParameterNodeFromGUI()
        self._requestModelInfo(path)
        self._updateButtons()

    def _requestModelInfo(self, path):
        """Read the model's information with ``adgan info --json`` (a process,
        polled): the panel never waits for a model to load."""
        path = path or ""
        if path == self._infoPath:
            return
        self._infoPath = path
        self._modelInfo = None
        for proc in (self._infoProcess, self._curveProcess):
            if proc is not None and proc.running:
                proc.cancel()
        self._infoProcess = self._curveProcess = None
        self.ui.modelCurveLabel.hide()
        if not path:
            self.ui.modelInfoLabel.text = "Choose a model file (made by adgan train or the Train tab)."
            self._rebuildChannelSelectors([])
            return
        try:
            self._infoProcess = self.logic.startModelInfo(path)
        except AdganError as e:
            self.ui.modelInfoLabel.text = str(e)
            self._rebuildChannelSelectors([])
            return
        self.ui.modelInfoLabel.text = f"Reading {os.path.basename(path)}..."
        self._startTimer()

    def _pollModelInfo(self):
        proc = self._infoProcess
        proc.poll()
        final = proc.finished
        if final is None:
            return
        self._infoProcess = None
        path = proc.modelPath
        if path != self._infoPath:
            return  # another model was chosen meanwhile
        if final["status"] != "succeeded":
            self.ui.modelInfoLabel.text = f"Cannot use {path}: {final['message']}"
            self._rebuildChannelSelectors([])
            self._updateButtons()
            return
        self._modelInfo = ModelInfo(path, proc.document)
        self.ui.modelInfoLabel.text = self._modelInfo.describe()
        self.ui.modelPathLineEdit.addCurrentPathToHistory()
        self._rememberModel(path)
        wasUpdating = self._updatingGUIFromParameterNode
        self._updatingGUIFromParameterNode = True
        try:
            self._rebuildChannelSelectors(self._modelInfo.channel_names)
            if self._parameterNode is not None:
                for c, selector in enumerate(self._channelSelectors):
                    selector.setCurrentNode(self._parameterNode.GetNodeReference(P.input_volume_role(c)))
        finally:
            self._updatingGUIFromParameterNode = wasUpdating
        if self._modelInfo.curve:
            png = os.path.join(self._temporaryFolder(), f"validation-{abs(hash(path))}.png")
            try:
                self._curveProcess = self.logic.startModelInfo(path, validationPng=png)
                self._curveProcess.pngPath = png
            except AdganError as e:
                self.log(str(e))
        self._updateButtons()

    def _pollCurve(self):
        proc = self._curveProcess
        proc.poll()
        if proc.finished is None:
            return
        self._curveProcess = None
        if proc.modelPath != self._infoPath:
            return
        if proc.finished["status"] == "succeeded" and os.path.isfile(proc.pngPath):
            pixmap = qt.QPixmap(proc.pngPath)
            if not pixmap.isNull():
                self.ui.modelCurveLabel.setPixmap(pixmap.scaledToWidth(360, qt.Qt.SmoothTransformation))
                self.ui.modelCurveLabel.show()
        else:
            self.log(f"No validation curve: {proc.finished['message']}")

    # -- scoring --------------------------------------------------------------

    def onScoreApply(self):
        if self._scoreJob is not None and self._scoreJob.running:
            self._scoreJob.cancel()
            self.log("Cancelling scoring...")
            self._updateButtons()
            return
        with errorsShown("Scoring could not start."):
            if self._modelInfo is None:
                raise AdganError(self.ui.modelInfoLabel.text or "Choose a model file first.")
            inputs = [s.currentNode() for s in self._channelSelectors]
            for c, node in enumerate(inputs):
                if node is None:
                    raise AdganError(f"Choose the input volume for channel {c + 1} "
                                     f"({self._modelInfo.channel_names[c]}).")
            device = self._resolveDevice(self.ui.deviceComboBox.currentData or "auto", "Scoring")
            self._scoreJob = self.logic.startScoring(
                str(self._modelInfo.path), inputs, self.ui.brainMaskSelector.currentNode(),
                self.ui.strideSpinBox.value, device=device, modelInfo=self._modelInfo)
            self.ui.scoreProgressBar.value = 0
            self.ui.scoreProgressBar.show()
            self.log(f"Scoring {', '.join(n.GetName() for n in inputs)} with {self._modelInfo.path.name} "
                     f"(stride {self.ui.strideSpinBox.value}, device {device}): "
                     + " ".join(self._scoreJob.command))
            self._startTimer()
        self._updateButtons()

    def _pollScoring(self):
        job = self._scoreJob
        for event in job.poll():
            kind = event.get("event")
            if kind == "progress" and event.get("total"):
                self.ui.scoreProgressBar.value = int(100 * event["iteration"] / event["total"])
            elif kind in ("info", "warning") or (kind == "log" and event.get("message")):
                self.log(describe(event))
        final = job.finished
        if final is None:
            return
        self._scoreJob = None
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
            self.logic.finishScoring(job)
            self._updateButtons()

    def _showScoreResult(self, job):
        outputNode = self.ui.outputMapSelector.currentNode()
        mapNode, scoreMap = self.logic.readScoreResult(job, outputNode)
        threshold = job.threshold
        self.ui.outputMapSelector.setCurrentNode(mapNode)
        lo, hi, step = maps.slider_range(scoreMap, threshold)
        slider = self.ui.thresholdSliderWidget
        wasBlocked = slider.blockSignals(True)
        slider.minimum, slider.maximum, slider.singleStep = lo, hi, step
        slider.value = threshold
        slider.blockSignals(wasBlocked)
        P.set_value(self._parameterNode, "Threshold", threshold)
        seconds = (job.result or {}).get("seconds")
        self.log(f"Anomaly map {mapNode.GetName()}: max score {float(scoreMap.max()):.3g}"
                 + (f" in {seconds:.1f} s." if seconds else "."))
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
            preset = self.ui.trainPresetComboBox.currentData or "quick"
            device = self._resolveDevice(self.ui.trainDeviceComboBox.currentData or "auto", "Training")
            options = dict(
                preset=preset,
                phase1_iterations=self.ui.trainPhase1SpinBox.value,
                phase2_iterations=self.ui.trainPhase2SpinBox.value,
                batch_size=self.ui.trainBatchSizeSpinBox.value,
                alpha=self.ui.trainAlphaSpinBox.value,
                critic_init=self.ui.trainCriticInitComboBox.currentData,
                slice_axis=self.ui.trainSliceAxisComboBox.currentData,
                max_patches=self.ui.trainMaxPatchesSpinBox.value,
                seed=self.ui.trainSeedSpinBox.value,
                device=device,
            )
            if preset == "paper" and runs_on_cpu(device, self._devices):
                seconds = cpu_training_estimate(options["phase1_iterations"], options["phase2_iterations"])
                question = (
                    f"The paper preset on the CPU takes about {format_duration(seconds)}.\n\n"
                    "This is a rough figure: about 1.9 s per phase-1 iteration at batch 64 and a sixth of "
                    "that per phase-2 iteration, as adgan bench measured on a 2-core CPU; it is scaled by nothing else "
                    "(not by this computer's cores, the batch size or the volumes). The paper preset is "
                    "meant for a GPU; the quick preset trains in minutes on a CPU.\n\nTrain on the CPU anyway?")
                if not slicer.util.confirmOkCancelDisplay(question, windowTitle="adGAN: paper preset on the CPU"):
                    self.log("Training not started: the paper preset on the CPU was declined.")
                    return
            output = self._trainOutputPath()
            names = self._trainChannelNames(channels)
            self._trainProcess = self.logic.startTraining(cases, labels, output, channelNames=names, **options)
            self.ui.trainOutputPathLineEdit.addCurrentPathToHistory()
            self._trainTracker = ProgressTracker(options["phase1_iterations"], options["phase2_iterations"])
            self._lastLoggedPercent = -1
            self.ui.trainProgressBar.value = 0
            self.ui.trainProgressBar.format = "Starting %p%"
            self.ui.trainProgressBar.show()
            self.ui.trainStatusLabel.text = "Starting adgan train..."
            self.log("Training: " + " ".join(self._trainProcess.command))
            self._trainTimer.start()
        self._updateButtons()

    def _trainOutputPath(self):
        """The output model file; a bare file name goes into the models folder."""
        path = self.ui.trainOutputPathLineEdit.currentPath
        folder = self.ui.modelsFolderPathLineEdit.currentPath
        if path and not os.path.dirname(path) and folder:
            path = os.path.join(folder, path)
            self.ui.trainOutputPathLineEdit.currentPath = path
        return path

    def onTrainPoll(self):
        proc = self._trainProcess
        if proc is None:
            self._trainTimer.stop()
            return
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
            self._rememberModel(output)
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
        mapNode = logic.score("/path/model.adgan", [flairNode], device="cpu")
        segNode, stats = logic.updateSegmentation(mapNode, None, logic.getModelInfo(path).threshold)

    Every computation runs in an ``adgan`` process (see the module docstring).
    """

    def __init__(self):
        ScriptedLoadableModuleLogic.__init__(self)
        self.binarySetting = ""
        self.threads = 0  # libtorch threads of the adgan processes (0: its default)

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

    def binary(self):
        return locate.find_binary(setting=self.binarySetting or None, extra_prefixes=self.extraPrefixes())

    @staticmethod
    def processEnvironment():
        """Slicer's startup environment, without the launcher's library paths
        (so that adgan finds its own libtorch, not one Slicer loaded)."""
        startupEnvironment = getattr(slicer.util, "startupEnvironment", None)
        return dict(startupEnvironment()) if startupEnvironment is not None else None

    def startDevices(self):
        return devices_process(self.binary(), env=self.processEnvironment()).start()

    def getDevices(self, timeout=60):
        """adgan's device list (``None`` when this adgan cannot list them)."""
        return devices_from_final(self.waitFor(self.startDevices(), timeout))

    def setupReport(self, devices=None):
        try:
            binary = self.binary()
        except AdganError as e:
            return str(e)
        lines = [f"Program: {binary}."]
        if devices is not None:
            lines.append(f"Devices: {', '.join(devices['devices'])} (default {devices['default']}, "
                         f"{devices['cuda_device_count']} CUDA device(s), {devices.get('cpu_threads')} CPU threads).")
        else:
            lines.append("Devices: not known yet (adgan devices --json has not answered).")
        return "\n".join(lines)

    # models

    def startModelInfo(self, path, validationPng=None):
        """``adgan info --json`` on a model file, started (poll it); its
        ``modelPath`` is the absolute path."""
        path = os.path.abspath(os.path.expanduser(path))
        if not os.path.isfile(path):
            raise AdganError(f"The model file does not exist: {path}")
        proc = model_info_process(self.binary(), path, validation_png=validationPng, env=self.processEnvironment())
        proc.modelPath = path
        return proc.start()

    def getModelInfo(self, path, timeout=120):
        """Read a model's information and wait (keeps Slicer responsive)."""
        proc = self.startModelInfo(path)
        final = self.waitFor(proc, timeout)
        if final["status"] != "succeeded":
            raise AdganError(final["message"])
        return ModelInfo(proc.modelPath, proc.document)

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

    def startScoring(self, modelPath, inputNodes, maskNode=None, stride=8, device="auto", modelInfo=None,
                     threads=None):
        """Export the inputs (and the mask) to NIfTI files and start
        ``adgan score --json`` on them; returns the running
        :class:`ADGANLib.process.ScoreProcess` (poll it, cancel it, then
        :meth:`readScoreResult` and :meth:`finishScoring`)."""
        if not modelPath:
            raise AdganError("Choose a model file first.")
        inputNodes = list(inputNodes)
        if not inputNodes:
            raise AdganError("Choose an input volume for every channel.")
        if modelInfo is not None:
            modelInfo.check_channel_count(len(inputNodes))
        self.volumeArrays(inputNodes)  # same grid, or a clear error
        reference = inputNodes[0]
        binary = self.binary()
        folder = tempfile.mkdtemp(prefix="adgan-score-")
        try:
            paths = [str(self.exportVolume(node, os.path.join(folder, f"ch{c}.nii.gz")))
                     for c, node in enumerate(inputNodes)]
            maskPath = None
            if maskNode is not None:
                maskPath = str(nifti.write(os.path.join(folder, "mask.nii.gz"), self.maskArray(maskNode, reference),
                                           self.ijkToRas(reference)))
            options = ScoreOptions(model=os.path.abspath(modelPath), volumes=paths,
                                   output=os.path.join(folder, "map.nii"), mask=maskPath, stride=int(stride),
                                   device=device or "auto",
                                   threads=self.threads if threads is None else threads)
            job = ScoreProcess(binary, options, env=self.processEnvironment())
            job.exportFolder = folder
            job.referenceNode = reference
            job.modelInfo = modelInfo
            return job.start()
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise

    @staticmethod
    def _scoreThreshold(job):
        result = job.result or {}
        if result.get("threshold") is not None:
            return float(result["threshold"])
        return job.modelInfo.threshold if job.modelInfo is not None else 3.0

    def readScoreResult(self, job, outputNode=None, show=True):
        """The finished job's map as a volume on the input's geometry; returns
        (map node, map array). ``job.threshold`` is the map's threshold."""
        if job.finished is None or job.finished["status"] != "succeeded":
            raise AdganError("Scoring has not succeeded.")
        path = (job.result or {}).get("map") or job.options.output
        if not os.path.isabs(path):
            path = os.path.join(job.cwd or os.getcwd(), path)
        image = nifti.read(path)
        reference = job.referenceNode
        refShape = slicer.util.arrayFromVolume(reference).shape
        if image.array.shape != refShape:
            raise AdganError(f"The map {path} has {image.array.shape} voxels, the input {refShape}.")
        job.threshold = self._scoreThreshold(job)
        scoreMap = np.asarray(image.array, dtype=np.float32)
        node = self.makeMapVolume(reference, scoreMap, outputNode, threshold=job.threshold, show=show)
        return node, slicer.util.arrayFromVolume(node)

    @staticmethod
    def removeExportFolder(proc):
        """Remove the files exported for an adgan process (and what it wrote
        there). A process still running (its cancel pending) has them removed
        now, which POSIX allows while it reads them, and again once it had
        time to end (Windows keeps open files): Slicer may quit before then."""
        folder = getattr(proc, "exportFolder", None)
        if not folder:
            return
        shutil.rmtree(folder, ignore_errors=True)
        if proc.finished is None:
            qt.QTimer.singleShot(10000, lambda: shutil.rmtree(folder, ignore_errors=True))

    @staticmethod
    def finishScoring(job):
        """Remove the exported volumes and the map file (after the process
        ended or was cancelled)."""
        ADGANLogic.removeExportFolder(job)

    @staticmethod
    def waitFor(job, timeout=None, onEvent=None):
        """Wait for an adgan process while keeping Slicer responsive."""
        return wait_for_finish(job, job.name, timeout, onEvent, interval=0.02, on_idle=slicer.app.processEvents)

    def score(self, modelPath, inputNodes, maskNode=None, stride=8, device="auto", outputNode=None, timeout=None,
              show=True, onEvent=None):
        """Score and wait (keeps the GUI responsive); returns the map volume."""
        job = self.startScoring(modelPath, inputNodes, maskNode, stride, device=device)
        try:
            final = self.waitFor(job, timeout, onEvent)
            if final["status"] != "succeeded":
                raise AdganError(final["message"])
            return self.readScoreResult(job, outputNode, show=show)[0]
        finally:
            if job.finished is None:
                job.cancel()
            self.finishScoring(job)

    def makeMapVolume(self, referenceNode, scoreMap, outputNode=None, threshold=3.0, show=True):
        """Put a map on the reference volume's geometry (IJK-to-RAS: spacing,
        origin, directions; and its parent transform), in the reference's
        study, and show it over it."""
        created = outputNode is None
        if created:
            name = slicer.mrmlScene.GenerateUniqueName(referenceNode.GetName() + " anomaly map")
            outputNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", name)
        slicer.util.updateVolumeFromArray(outputNode, np.asarray(scoreMap, dtype=np.float32))
        geom = geometry.VolumeGeometry.from_ijk_to_ras(self.ijkToRas(referenceNode))
        self.setIjkToRas(outputNode, geom.ijk_to_ras())
        outputNode.SetAndObserveTransformNodeID(referenceNode.GetTransformNodeID())
        if created:
            self.placeInStudy(referenceNode, outputNode)
        if show:
            self.showMap(referenceNode, outputNode, threshold)
        return outputNode

    @staticmethod
    def placeInStudy(referenceNode, node):
        """Put a new output node beside its input in the subject hierarchy
        (under the input's study), as SlicerTotalSegmentator does."""
        shNode = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(slicer.mrmlScene)
        if shNode is None or referenceNode is None:
            return
        referenceItem = shNode.GetItemByDataNode(referenceNode)
        item = shNode.GetItemByDataNode(node)
        if not referenceItem or not item:
            return
        parent = shNode.GetItemParent(referenceItem)
        if parent:
            shNode.SetItemParent(item, parent)
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


    def updateSegmentation(self, mapNode, segmentationNode, threshold, referenceNode=None):
        """Make (or update) the segment of voxels at or above the threshold.
        A new segmentation goes into the study of ``referenceNode`` (default:
        the map's)."""
        scoreMap = slicer.util.arrayFromVolume(mapNode)
        created = segmentationNode is None
        if created:
            name = slicer.mrmlScene.GenerateUniqueName(mapNode.GetName() + " region")
            segmentationNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", name)
        segmentationNode.CreateDefaultDisplayNodes()
        segmentationNode.SetReferenceImageGeometryParameterFromVolumeNode(mapNode)
        segmentationNode.SetAndObserveTransformNodeID(mapNode.GetTransformNodeID())
        segmentation = segmentationNode.GetSegmentation()
        if segmentation.GetSegment(SEGMENT_ID) is None:
            segmentation.AddEmptySegment(SEGMENT_ID, SEGMENT_NAME, list(SEGMENT_COLOR))
            segment = segmentation.GetSegment(SEGMENT_ID)
            segment.SetTag(segment.GetTerminologyEntryTagName(), SEGMENT_TERMINOLOGY)
        mask = maps.anomaly_mask(scoreMap, threshold)
        slicer.util.updateSegmentBinaryLabelmapFromArray(mask, segmentationNode, SEGMENT_ID, mapNode)
        if created:
            self.placeInStudy(referenceNode or mapNode, segmentationNode)
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
            overrides.setdefault("threads", self.threads)
            options = TrainOptions(cases=casePaths, output=outputPath,
                                   excludes=labelPaths if any(labelPaths) else None,
                                   channel_names=channelNames, preset=preset, **overrides)
            proc = TrainingProcess(binary, options, env=self.processEnvironment())
            proc.exportFolder = folder
            return proc.start()
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise

    @staticmethod
    def finishTraining(proc):
        """Remove the exported volumes (after the process ended or was cancelled)."""
        ADGANLogic.removeExportFolder(proc)

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
    (see slicer-module/README.md). Needs the adgan program (see the module's
    Settings or ADGAN_PREFIX; without it the test says so and skips) and a
    brain MR volume: the ADGAN_TEST_VOLUME file, the adgan checkout's demo
    volume, or Slicer's MRBrainTumor1 sample."""

    modelPath = None

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        if not self.test_ADGAN_setup_found():
            return  # skipped: no adgan program
        try:
            self.setUp()
            self.test_ADGAN_train_score_segment()
            self.setUp()
            self.test_ADGAN_errors()
            self.setUp()
            self.test_ADGAN_cancel_training()
            self.setUp()
            self.test_ADGAN_widget()
        finally:
            # The models and files the tests wrote.
            if hasattr(self, "_tmp"):
                shutil.rmtree(self._tmp, ignore_errors=True)
                del self._tmp
            ADGANTest.modelPath = None
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
        """True when the adgan program is there; False (skip) when it is not."""
        self.delayDisplay("Finding the adgan program")
        logic = ADGANLogic()
        try:
            binary = logic.binary()
        except AdganError as e:
            self.delayDisplay(f"adGAN tests skipped: {e}")
            logging.warning("adGAN self-test skipped: %s", e)
            return False
        self.assertTrue(os.path.isfile(str(binary)))
        return True

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

        self.delayDisplay("Scoring in an adgan process")
        info = logic.getModelInfo(modelPath)
        self.assertEqual(info.channels, 1)
        progress = []
        mapNode = logic.score(modelPath, [volume], stride=16, device="cpu", timeout=600,
                              onEvent=lambda e: progress.append(e) if e.get("event") == "progress" else None)
        self.assertTrue(progress)
        self.assertTrue(geometry.same_grid(slicer.util.arrayFromVolume(mapNode).shape, logic.ijkToRas(mapNode),
                                           slicer.util.arrayFromVolume(volume).shape, logic.ijkToRas(volume)))
        # The map's geometry went through a 4x4 matrix: equal to rounding.
        for a, b in zip(mapNode.GetSpacing(), volume.GetSpacing()):
            self.assertAlmostEqual(a, b, places=5)
        for a, b in zip(mapNode.GetOrigin(), volume.GetOrigin()):
            self.assertAlmostEqual(a, b, places=4)
        scoreMap = slicer.util.arrayFromVolume(mapNode)
        self.assertTrue(np.isfinite(scoreMap).all())
        self.assertGreater(int((scoreMap != 0).sum()), 1000)
        layout = slicer.app.layoutManager()
        if layout is not None:
            compositeNode = layout.sliceWidget("Red").sliceLogic().GetSliceCompositeNode()
            self.assertEqual(compositeNode.GetForegroundVolumeID(), mapNode.GetID())

        self.delayDisplay("Thresholding into a segmentation")
        segNode, stats = logic.updateSegmentation(mapNode, None, info.threshold, referenceNode=volume)
        segArray = slicer.util.arrayFromSegmentBinaryLabelmap(segNode, SEGMENT_ID, mapNode)
        self.assertEqual(int(segArray.sum()), stats["voxels"])
        self.assertEqual(stats["voxels"], int(maps.anomaly_mask(scoreMap, info.threshold).sum()))
        segment = segNode.GetSegmentation().GetSegment(SEGMENT_ID)
        tag = vtk.reference("")
        self.assertTrue(segment.GetTag(segment.GetTerminologyEntryTagName(), tag))
        self.assertEqual(str(tag), SEGMENT_TERMINOLOGY)

    def test_ADGAN_errors(self):
        self.delayDisplay("Error messages")
        logic = ADGANLogic()
        logic.binarySetting = os.path.join(self._tempDir(), "no-such-adgan")
        with self.assertRaises(AdganError) as ctx:
            logic.binary()
        self.assertIn("no-such-adgan", str(ctx.exception))
        logic = ADGANLogic()
        bad = os.path.join(self._tempDir(), "bad.adgan")
        with open(bad, "w") as f:
            f.write("not a model")
        with self.assertRaises(AdganError) as ctx:
            logic.getModelInfo(bad)
        self.assertIn("bad.adgan", str(ctx.exception))
        if ADGANTest.modelPath:
            info = logic.getModelInfo(ADGANTest.modelPath)
            volume = self._volume()
            with self.assertRaises(AdganError) as ctx:
                logic.startScoring(ADGANTest.modelPath, [volume, volume], modelInfo=info)
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
                     "trainCasesTableWidget", "binaryPathLineEdit", "modelsFolderPathLineEdit",
                     "recentModelsComboBox", "deviceComboBox"):
            self.assertTrue(hasattr(widget.ui, name), name)
        if ADGANTest.modelPath:
            previous = widget.ui.modelPathLineEdit.currentPath
            widget.ui.modelPathLineEdit.currentPath = ADGANTest.modelPath
            try:
                deadline = time.monotonic() + 60
                while widget._modelInfo is None and time.monotonic() < deadline:
                    slicer.app.processEvents()
                    time.sleep(0.05)
                self.assertEqual(len(widget._channelSelectors), 1)
                self.assertIn("flair", widget.ui.modelInfoLabel.text)
            finally:
                # The test's model is removed after the tests: the panel goes
                # back to the user's model.
                widget.ui.modelPathLineEdit.currentPath = previous
