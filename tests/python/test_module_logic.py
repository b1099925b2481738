"""ADGAN.py's logic class run against fake Slicer modules (tests/python/fake_slicer.py):
the module's own data flow with the real library and program. Slicer's
behaviour itself is covered by the module's ScriptedLoadableModuleTest,
run inside Slicer."""

import importlib
import os

import fake_slicer
import numpy as np
import pytest
from ADGANLib import maps, nifti
from ADGANLib.errors import AdganError
from conftest import DEMO_FLAIR, THREADS, TINY


@pytest.fixture(scope="module")
def env(binary_path, library_path):
    scene, layers, restore = fake_slicer.install()
    try:
        ADGAN = importlib.import_module("ADGAN")
        logic = ADGAN.ADGANLogic()
        logic.librarySetting = str(library_path)
        logic.binarySetting = str(binary_path)
        yield ADGAN, logic, scene, layers
    finally:
        restore()


@pytest.fixture(scope="module")
def volume(env):
    _, _, scene, _ = env
    img = nifti.read(DEMO_FLAIR)
    m = img.affine.copy()
    m[:3, :3] = m[:3, :3] @ np.diag([1.0, 1.0, 1.5])  # anisotropic, as a Slicer volume may be
    m[:3, 3] += [5.0, -7.0, 11.0]
    node = fake_slicer.VolumeNode("flair", img.array[60:84, 40:200, 40:200], m)
    node.transform_id = "vtkMRMLLinearTransformNode7"
    return scene.AddNode(node)


@pytest.fixture(scope="module")
def trained_in_module(env, volume, tmp_path_factory):
    ADGAN, logic, scene, _ = env
    out = tmp_path_factory.mktemp("module") / "m.adgan"
    events = []
    final = logic.train([[volume]], [None], str(out), timeout=300, onEvent=events.append,
                        **dict(TINY, threads=THREADS))
    return out, events, final


def test_module_trains_out_of_process(trained_in_module):
    out, events, final = trained_in_module
    assert final["status"] == "succeeded", final["message"]
    assert out.is_file()
    assert {e.get("stage") for e in events if e["event"] == "progress"} >= {"wgan", "critic", "calibrate"}


def test_training_export_and_environment(env, volume, tmp_path):
    ADGAN, logic, scene, _ = env
    label = fake_slicer.LabelMapVolumeNode("lesion", np.zeros(volume.image.array.shape, np.int16),
                                           volume.ijk_to_ras)
    label.image.array[:, 10:20, 10:20] = 2
    scene.AddNode(label)
    proc = logic.startTraining([[volume]], [label], str(tmp_path / "x.adgan"),
                               **dict(TINY, phase1_iterations=100000))
    try:
        args = proc.args
        vol_file = args[args.index("--volume") + 1]
        lab_file = args[args.index("--exclude") + 1]
        exported = nifti.read(vol_file)
        assert np.array_equal(exported.array, volume.image.array)
        assert np.allclose(exported.affine, volume.ijk_to_ras, atol=1e-4)
        lab = nifti.read(lab_file)
        assert lab.array.dtype == np.uint8 and lab.array.sum() == 24 * 100
        assert proc.env == {"PATH": "/usr/bin:/bin", "FROM_STARTUP_ENVIRONMENT": "1"}
    finally:
        proc.cancel()
        proc.wait(timeout=30)
        logic.finishTraining(proc)
    assert not os.path.exists(proc.exportFolder)


def test_module_scores_onto_input_geometry(env, volume, trained_in_module):
    ADGAN, logic, scene, layers = env
    model = logic.getModel(str(trained_in_module[0]), "cpu")
    assert logic.getModel(str(trained_in_module[0]), "cpu") is model  # cached
    mapNode = logic.score(model, [volume], stride=16, timeout=300)
    assert np.array_equal(mapNode.ijk_to_ras, volume.ijk_to_ras)
    assert mapNode.GetSpacing() == pytest.approx(volume.GetSpacing())
    assert mapNode.GetOrigin() == pytest.approx(volume.GetOrigin())
    assert mapNode.transform_id == volume.transform_id
    score_map = mapNode.image.array
    assert score_map.shape == volume.image.array.shape and score_map.dtype == np.float32
    np.testing.assert_allclose(score_map, model.score(volume.image.array, stride=16), atol=1e-5)
    assert layers == {"background": volume, "foreground": mapNode, "opacity": 0.6}
    calls = mapNode.display.calls
    assert calls["SetAndObserveColorNodeID"] == ("vtkMRMLColorTableNodeFileColdToHotRainbow.txt",)
    assert "ApplyThresholdOn" in calls and calls["SetLowerThreshold"][0] <= model.threshold

    segNode, stats = logic.updateSegmentation(mapNode, None, model.threshold)
    mask = segNode.segmentation.segments[ADGAN.SEGMENT_ID]["mask"]
    assert mask.sum() == stats["voxels"] == maps.anomaly_mask(score_map, model.threshold).sum()
    assert stats["volume_ml"] == pytest.approx(stats["voxels"] * 1.5 / 1000)
    assert segNode.reference is mapNode and segNode.transform_id == volume.transform_id
    again, _ = logic.updateSegmentation(mapNode, segNode, model.threshold + 100)
    assert again is segNode and segNode.segmentation.segments[ADGAN.SEGMENT_ID]["mask"].sum() == 0


def test_module_error_messages(env, volume, trained_in_module, tmp_path):
    ADGAN, logic, scene, _ = env
    model = logic.getModel(str(trained_in_module[0]), "cpu")
    with pytest.raises(AdganError, match=r"needs 1 input volume\(s\) \(flair\), but 2 were given"):
        logic.startScoring(model, [volume, volume])
    other = scene.AddNode(fake_slicer.VolumeNode("moved", volume.image.array, volume.ijk_to_ras + np.eye(4) * 0))
    other.ijk_to_ras[0, 3] += 3
    with pytest.raises(AdganError, match="moved and flair are not on the same voxel grid"):
        logic.volumeArrays([volume, other])
    mask = scene.AddNode(fake_slicer.LabelMapVolumeNode("small mask", np.ones((2, 2, 2)), np.eye(4)))
    with pytest.raises(AdganError, match="not on the same voxel grid"):
        logic.startScoring(model, [volume], mask)
    with pytest.raises(AdganError, match="The model file does not exist"):
        logic.getModel(str(tmp_path / "nope.adgan"))
    broken = ADGAN.ADGANLogic()
    broken.librarySetting = str(tmp_path / "libadgan.so")
    with pytest.raises(AdganError, match="set by the panel setting does not exist"):
        broken.library()
    report = broken.setupReport()
    assert "does not exist" in report and "Program:" in report


def test_module_brain_mask(env, volume, trained_in_module):
    ADGAN, logic, scene, _ = env
    model = logic.getModel(str(trained_in_module[0]), "cpu")
    arr = np.zeros(volume.image.array.shape, np.int16)
    arr[:, 40:120, 40:120] = 1
    mask = scene.AddNode(fake_slicer.LabelMapVolumeNode("mask", arr, volume.ijk_to_ras))
    job = logic.startScoring(model, [volume], mask, stride=16)
    assert logic.waitFor(job, timeout=120)["status"] == "succeeded"
    assert np.all(job.map[arr == 0] == 0)
