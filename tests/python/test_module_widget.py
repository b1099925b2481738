"""ADGAN.py's widget run with the real MRML scene and a fake UI built from
ADGAN.ui whose widgets behave like PythonQt (fake_slicer): model info,
scoring (Apply, poll, result, cancel), training, presets, devices and their
fallback, the paper-on-CPU confirmation, recent models, reload, the
self-test's skip. The timers are fired by the tests (pump)."""

import ast
import importlib
import os
import stat
import sys
import time

import fake_slicer
import numpy as np
import pytest
from ADGANLib import maps, native, nifti
from conftest import DEMO_FLAIR, MODULE_DIR, THREADS


def fake_adgan(tmp_path, real, devices='["cpu","cuda:0"]', default="cuda:0", name="adgan"):
    """The real adgan, but `adgan devices --json` answers as given (the
    subcommand is being added in parallel; its format is fixed)."""
    path = tmp_path / name
    path.write_text(f"""#!/bin/sh
if [ "$1" = devices ]; then
  echo '{{"event":"result","devices":{devices},"default":"{default}","cuda_device_count":1,"cpu_threads":2}}'
  exit 0
fi
exec "{real}" "$@"
""")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture(scope="module")
def panel(binary_path, tmp_path_factory):
    env, restore = fake_slicer.install()
    saved_load = native.load_library

    def refuse(*a, **k):
        raise AssertionError("the panel loaded libadgan into Slicer's process")

    native.load_library = refuse
    try:
        ADGAN = importlib.import_module("ADGAN")
        slicer = importlib.import_module("slicer")
        binary = fake_adgan(tmp_path_factory.mktemp("bin"), binary_path)
        fake_slicer.QSettings().setValue(ADGAN.SETTING_BINARY, str(binary))
        widget = ADGAN.ADGANWidget()
        widget.setup()
        widget.logic.threads = THREADS
        env.ADGAN, env.slicer, env.widget, env.ui = ADGAN, slicer, widget, widget.ui
        env.binary = binary
        img = nifti.read(DEMO_FLAIR)
        node = env.scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "flair")
        slicer.util.updateVolumeFromArray(node, np.ascontiguousarray(img.array[64:76, 40:200, 40:200]))
        widget.logic.setIjkToRas(node, img.affine)
        env.flair = node
        yield env
        widget.cleanup()
    finally:
        native.load_library = saved_load
        restore()


def pump(env, until, timeout=120, timer="_processTimer"):
    """Fire the panel's timer (as Qt's event loop would) until `until()`."""
    deadline = time.monotonic() + timeout
    t = getattr(env.widget, timer)
    while not until():
        assert time.monotonic() < deadline, "timed out"
        t.fire()
        time.sleep(0.02)


def log(env):
    return env.ui.logTextEdit.toPlainText()


def choose_model(env, path):
    env.ui.modelPathLineEdit.currentPath = str(path)
    pump(env, lambda: env.widget._infoProcess is None and env.widget._curveProcess is None)


def test_panel_does_not_import_libadgan():
    tree = ast.parse((MODULE_DIR / "ADGAN.py").read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            imported |= {a.name for a in node.names} | {node.module or ""}
        elif isinstance(node, ast.Import):
            imported |= {a.name for a in node.names}
    assert not imported & {"native", "jobs", "ADGANLib.native", "ADGANLib.jobs", "ctypes"}


def test_devices_listed_at_setup(panel):
    pump(panel, lambda: panel.widget._devicesProcess is None)
    combo = panel.ui.deviceComboBox
    assert [combo.itemData(i) for i in range(combo.count)] == ["auto", "cpu", "cuda:0"]
    train = panel.ui.trainDeviceComboBox
    assert train.findData("cuda:0") >= 0
    assert "Devices: cpu, cuda:0 (default cuda:0)." in log(panel)


def test_model_info_selectors_curve_and_recents(panel, trained):
    choose_model(panel, trained["path"])
    w, ui = panel.widget, panel.ui
    assert w._modelInfo is not None and w._modelInfo.channel_names == ["flair"]
    assert "1 channel(s) (flair)" in ui.modelInfoLabel.text and "Calibration" in ui.modelInfoLabel.text
    assert len(w._channelSelectors) == 1 and panel.widget._channelLabels[0].text == "flair:"
    assert ui.modelCurveLabel.visible and os.path.isfile(ui.modelCurveLabel.pixmap.path)
    assert open(ui.modelCurveLabel.pixmap.path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert str(trained["path"]) in ui.modelPathLineEdit.history
    assert fake_slicer.QSettings().value("ADGAN/ModelPath") == ui.modelPathLineEdit.history
    recent = fake_slicer.QSettings().value(panel.ADGAN.SETTING_RECENT_MODELS)
    assert recent[0] == os.path.abspath(trained["path"])
    combo = ui.recentModelsComboBox
    assert combo.findData(os.path.abspath(trained["path"])) == combo.currentIndex > 0
    assert panel.widget._parameterNode.GetParameter("ModelPath") == str(trained["path"])


def test_bad_model_disables_apply(panel, trained, tmp_path):
    bad = tmp_path / "broken.adgan"
    bad.write_bytes(b"garbage")
    choose_model(panel, bad)
    assert panel.widget._modelInfo is None
    assert "Cannot use" in panel.ui.modelInfoLabel.text and "broken.adgan" in panel.ui.modelInfoLabel.text
    assert not panel.ui.scoreApplyButton.enabled
    choose_model(panel, trained["path"])
    assert panel.widget._modelInfo is not None


def test_models_folder_lists_its_models(panel, trained, tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "other.adgan").write_bytes(open(trained["path"], "rb").read())
    panel.ui.modelsFolderPathLineEdit.currentPath = str(folder)
    assert fake_slicer.QSettings().value(panel.ADGAN.SETTING_MODELS_FOLDER) == str(folder)
    combo = panel.ui.recentModelsComboBox
    index = combo.findData(str(folder / "other.adgan"))
    assert index > 0
    combo.setCurrentIndex(index)  # choosing it sets the model path
    assert panel.ui.modelPathLineEdit.currentPath == str(folder / "other.adgan")
    choose_model(panel, trained["path"])


def test_score_apply_poll_result(panel, trained):
    w, ui = panel.widget, panel.ui
    choose_model(panel, trained["path"])
    w._channelSelectors[0].setCurrentNode(panel.flair)
    ui.strideSpinBox.value = 16
    ui.deviceComboBox.setCurrentIndex(ui.deviceComboBox.findData("cpu"))
    assert ui.scoreApplyButton.enabled
    ui.scoreApplyButton.click()
    assert w._scoreJob is not None and ui.scoreApplyButton.text == "Cancel" and ui.scoreProgressBar.visible
    assert w._scoreJob.args[w._scoreJob.args.index("--device") + 1] == "cpu"
    values = []
    pump(panel, lambda: (values.append(ui.scoreProgressBar.value) or w._scoreJob is None))
    assert max(values) > 0 and not ui.scoreProgressBar.visible
    assert panel.errors == []
    mapNode = ui.outputMapSelector.currentNode()
    assert mapNode is not None and mapNode.GetName() == "flair anomaly map", log(panel)
    assert panel.slicer.util.arrayFromVolume(mapNode).shape == panel.slicer.util.arrayFromVolume(panel.flair).shape
    seg = ui.outputSegmentationSelector.currentNode()
    assert seg is not None and "voxels" in ui.regionStatsLabel.text
    threshold = float(w._parameterNode.GetParameter("Threshold"))
    assert ui.thresholdSliderWidget.value == pytest.approx(threshold, abs=0.01)
    assert f"at or above the threshold {threshold:.2f}" in log(panel)  # adgan score's own
    assert ui.thresholdSliderWidget.enabled and ui.scoreApplyButton.text == "Apply"
    assert "Anomaly map flair anomaly map: max score" in log(panel)

    # The threshold slider updates the same segmentation (after its timer):
    # the segment and the stats follow the slider's value.
    score_map = panel.slicer.util.arrayFromVolume(mapNode)
    before = int(maps.anomaly_mask(score_map, threshold).sum())
    assert ui.regionStatsLabel.text.startswith(f"{before} voxels")
    other = round(float(np.quantile(score_map[score_map != 0], 0.9)), 2)  # ~10 % of the brain above
    assert other != pytest.approx(threshold, abs=0.01)
    ui.thresholdSliderWidget.value = other
    assert w._thresholdTimer.isActive()
    w._thresholdTimer.fire()
    assert ui.outputSegmentationSelector.currentNode() is seg
    after = int(maps.anomaly_mask(score_map, ui.thresholdSliderWidget.value).sum())
    assert after > 0 and after != before
    assert ui.regionStatsLabel.text.startswith(f"{after} voxels")
    segment = panel.slicer.util.arrayFromSegmentBinaryLabelmap(seg, panel.ADGAN.SEGMENT_ID, mapNode)
    assert int(segment.sum()) == after
    assert float(w._parameterNode.GetParameter("Threshold")) == pytest.approx(ui.thresholdSliderWidget.value)


def test_score_cancel(panel, trained):
    w, ui = panel.widget, panel.ui
    choose_model(panel, trained["path"])
    w._channelSelectors[0].setCurrentNode(panel.flair)
    ui.strideSpinBox.value = 8
    ui.scoreApplyButton.click()
    job = w._scoreJob
    pump(panel, lambda: job.last_progress is not None or job.finished is not None)
    ui.scoreApplyButton.click()  # Cancel
    assert job.cancel_requested and ui.scoreApplyButton.text == "Cancelling..."
    pump(panel, lambda: w._scoreJob is None, timeout=30)
    assert job.finished["status"] == "cancelled" and "Scoring cancelled." in log(panel)
    assert not os.path.exists(job.exportFolder)
    assert ui.scoreApplyButton.text == "Apply" and panel.errors == []


def test_absent_cuda_device_falls_back_to_cpu(panel, trained):
    w, ui = panel.widget, panel.ui
    choose_model(panel, trained["path"])
    # A scene saved on a computer with two GPUs.
    w._parameterNode.SetParameter("Device", "cuda:1")
    assert ui.deviceComboBox.currentData == "cuda:1"
    assert ui.deviceComboBox.currentText == "cuda:1 (not found)"
    w._channelSelectors[0].setCurrentNode(panel.flair)
    ui.strideSpinBox.value = 16
    ui.scoreApplyButton.click()
    job = w._scoreJob
    assert job.args[job.args.index("--device") + 1] == "cpu"
    assert "Scoring: cuda:1 is not available on this computer (devices: cpu, cuda:0): using the CPU instead." \
        in log(panel)
    job.cancel()
    pump(panel, lambda: w._scoreJob is None, timeout=30)
    w._parameterNode.SetParameter("Device", "cpu")


def test_preset_change_sets_the_budget(panel):
    ui, node = panel.ui, panel.widget._parameterNode
    ui.trainPresetComboBox.setCurrentIndex(ui.trainPresetComboBox.findData("paper"))
    assert (ui.trainPhase1SpinBox.value, ui.trainPhase2SpinBox.value, ui.trainBatchSizeSpinBox.value) == \
        (200000, 150000, 64)
    assert node.GetParameter("TrainPreset") == "paper" and node.GetParameter("TrainPhase1Iterations") == "200000"
    ui.trainPresetComboBox.setCurrentIndex(ui.trainPresetComboBox.findData("quick"))
    assert (ui.trainPhase1SpinBox.value, ui.trainPhase2SpinBox.value, ui.trainBatchSizeSpinBox.value) == (0, 600, 32)


def set_train_case(panel, output):
    ui = panel.ui
    ui.trainCasesTableWidget.cellWidget(0, 0).setCurrentNode(panel.flair)
    ui.trainOutputPathLineEdit.currentPath = str(output)


def test_paper_preset_on_cpu_asks_first(panel, tmp_path):
    w, ui = panel.widget, panel.ui
    set_train_case(panel, tmp_path / "paper.adgan")
    ui.trainPresetComboBox.setCurrentIndex(ui.trainPresetComboBox.findData("paper"))
    ui.trainDeviceComboBox.setCurrentIndex(ui.trainDeviceComboBox.findData("cpu"))
    panel.confirm_answer = False
    ui.trainApplyButton.click()
    title, text = panel.confirmations[-1]
    # 1.86 s x (200,000 + 150,000 / 6) iterations = 4.8 days.
    assert "paper preset" in title and "4.8 days" in text
    assert "1.9 s per phase-1 iteration at batch 64" in text and "2-core" in text and "scaled by nothing else" in text
    assert w._trainProcess is None and "declined" in log(panel)

    # A GPU that is there: no question.
    count = len(panel.confirmations)
    ui.trainDeviceComboBox.setCurrentIndex(ui.trainDeviceComboBox.findData("cuda:0"))
    ui.trainApplyButton.click()
    assert len(panel.confirmations) == count and w._trainProcess is not None
    assert w._trainProcess.args[w._trainProcess.args.index("--device") + 1] == "cuda:0"
    w._trainProcess.cancel()  # the real adgan has no GPU here: it fails or is cancelled
    pump(panel, lambda: w._trainProcess is None, timer="_trainTimer", timeout=30)
    ui.trainPresetComboBox.setCurrentIndex(ui.trainPresetComboBox.findData("quick"))
    panel.confirm_answer = True


def test_train_apply_poll_select_model(panel, tmp_path):
    w, ui = panel.widget, panel.ui
    folder = tmp_path / "models"
    folder.mkdir()
    ui.modelsFolderPathLineEdit.currentPath = str(folder)
    set_train_case(panel, "panel.adgan")  # a bare name goes into the models folder
    ui.trainPresetComboBox.setCurrentIndex(ui.trainPresetComboBox.findData("quick"))
    ui.trainPhase2SpinBox.value = 3
    ui.trainBatchSizeSpinBox.value = 8
    ui.trainMaxPatchesSpinBox.value = 500
    ui.trainDeviceComboBox.setCurrentIndex(ui.trainDeviceComboBox.findData("cpu"))
    ui.trainApplyButton.click()
    proc = w._trainProcess
    assert proc is not None and ui.trainApplyButton.text == "Cancel", panel.errors
    assert proc.options.output == str(folder / "panel.adgan")
    assert str(folder / "panel.adgan") in ui.trainOutputPathLineEdit.history
    pump(panel, lambda: w._trainProcess is None, timer="_trainTimer", timeout=120)
    assert proc.finished["status"] == "succeeded", proc.finished["message"]
    assert ui.modelPathLineEdit.currentPath == str(folder / "panel.adgan")
    assert "It is selected in the Score tab" in ui.trainStatusLabel.text
    assert not os.path.exists(proc.exportFolder)
    pump(panel, lambda: w._infoProcess is None)
    assert w._modelInfo is not None and w._modelInfo.path.name == "panel.adgan"


def test_reload_drops_adganlib(panel):
    saved = {k: v for k, v in sys.modules.items() if k == "ADGANLib" or k.startswith("ADGANLib.")}
    try:
        panel.widget.onReload()
        assert panel.reloaded == ["ADGAN"]
        assert not any(k == "ADGANLib" or k.startswith("ADGANLib.") for k in sys.modules)
    finally:
        sys.modules.update(saved)


def test_self_test_skips_without_adgan(panel, monkeypatch, tmp_path):
    monkeypatch.setenv("ADGAN_BINARY", str(tmp_path / "missing-adgan"))
    messages = []
    test = panel.ADGAN.ADGANTest()
    monkeypatch.setattr(test, "delayDisplay", lambda m, msec=0: messages.append(m))
    test.runTest()  # returns, does not raise
    assert any("adGAN tests skipped" in m and "missing-adgan" in m for m in messages)
    assert "adGAN tests passed" not in messages
