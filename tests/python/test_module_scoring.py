"""The module's out-of-process scoring and model information against the real
``adgan`` program, with real MRML nodes (fake_slicer): volumes exported to
NIfTI, ``adgan score --json`` polled (progress, cancel), the map read back on
the input's geometry; ``adgan info --json``; errors naming the file."""

import importlib
import os
import time

import fake_slicer
import numpy as np
import pytest
from ADGANLib import maps, nifti
from ADGANLib.errors import AdganError
from conftest import DEMO_FLAIR, THREADS, TINY


@pytest.fixture(scope="module")
def mrml(binary_path):
    env, restore = fake_slicer.install()
    try:
        env.ADGAN = importlib.import_module("ADGAN")
        env.slicer = importlib.import_module("slicer")
        env.logic = env.ADGAN.ADGANLogic()
        env.logic.binarySetting = str(binary_path)
        env.logic.threads = THREADS
        yield env
    finally:
        restore()


def anisotropic(affine):
    m = affine.copy()
    m[:3, :3] = m[:3, :3] @ np.diag([1.0, 1.0, 1.5])
    m[:3, 3] += [5.0, -7.0, 11.0]
    return m


@pytest.fixture(scope="module")
def flair(mrml):
    """16 axial slices of the demo FLAIR, anisotropic, in a real volume node."""
    img = nifti.read(DEMO_FLAIR)
    node = mrml.scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "flair")
    mrml.slicer.util.updateVolumeFromArray(node, np.ascontiguousarray(img.array[64:80, 40:200, 40:200]))
    mrml.logic.setIjkToRas(node, anisotropic(img.affine))
    return node


def poll_until_finished(job, timeout=120, on_event=None):
    deadline = time.monotonic() + timeout
    events = []
    while job.finished is None:
        for e in job.poll():
            events.append(e)
            if on_event is not None:
                on_event(e)
        assert time.monotonic() < deadline, "adgan did not finish"
        time.sleep(0.02)
    return events + job.poll()


def test_model_info_out_of_process(mrml, trained):
    info = mrml.logic.getModelInfo(str(trained["path"]))
    assert info.channels == 1 and info.channel_names == ["flair"]
    doc = info.document
    assert info.threshold == pytest.approx(doc["calibration"]["map"]["threshold"])
    assert info.patch_threshold == pytest.approx(doc["calibration"]["threshold"])
    assert info.curve and info.budget["phase1_iterations"] == TINY["phase1_iterations"]
    text = info.describe()
    assert "1 channel(s) (flair)" in text and "N=3 phase-1, M=3 phase-2" in text
    assert "map threshold" in text and "Validation: 1 point(s)" in text
    # A quick-preset model trained on volumes gates its maps on its first
    # channel, and the map threshold is the gated maps'.
    assert doc["intensity_gate"]["channel"] == 0 and doc["calibration"]["map"]["gated"] is True
    assert "Maps gated by intensity on flair" in text
    with pytest.raises(AdganError, match=r"needs 1 input volume\(s\) \(flair\), but 2 were given"):
        info.check_channel_count(2)


def test_bad_model_file_is_named(mrml, flair, tmp_path):
    bad = tmp_path / "broken.adgan"
    bad.write_bytes(b"not a model at all")
    with pytest.raises(AdganError, match=r"broken\.adgan: not an adGAN model"):
        mrml.logic.getModelInfo(str(bad))
    with pytest.raises(AdganError, match=r"model file does not exist: .*nope\.adgan"):
        mrml.logic.getModelInfo(str(tmp_path / "nope.adgan"))
    job = mrml.logic.startScoring(str(bad), [flair], stride=16, device="cpu")
    final = mrml.logic.waitFor(job, timeout=60)
    mrml.logic.finishScoring(job)
    assert final["status"] == "failed"
    assert "broken.adgan" in final["message"] and "not an adGAN model" in final["message"]
    assert not os.path.exists(job.exportFolder)


def test_scoring_out_of_process_onto_the_input_grid(mrml, flair, trained):
    """Progress reaches the caller, the map comes back on the input's
    IJK-to-RAS and transform, a segmentation mask keeps it inside."""
    logic, slicer = mrml.logic, mrml.slicer
    transform = mrml.scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", "moved")
    flair.SetAndObserveTransformNodeID(transform.GetID())
    shape = slicer.util.arrayFromVolume(flair).shape
    seg = mrml.scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "brain")
    seg.CreateDefaultDisplayNodes()
    seg.SetReferenceImageGeometryParameterFromVolumeNode(flair)
    seg.SetAndObserveTransformNodeID(transform.GetID())
    box = np.zeros(shape, np.uint8)
    box[:, 30:130, 30:130] = 1
    seg.GetSegmentation().AddEmptySegment("brain", "brain", [0.0, 1.0, 0.0])
    slicer.util.updateSegmentBinaryLabelmapFromArray(box, seg, "brain", flair)

    info = logic.getModelInfo(str(trained["path"]))
    job = logic.startScoring(str(trained["path"]), [flair], seg, stride=16, device="cpu", modelInfo=info)
    assert job.running and "--mask" in job.args and job.args[job.args.index("--device") + 1] == "cpu"
    assert job.env.get("FROM_STARTUP_ENVIRONMENT") == "1"  # Slicer's startup environment
    exported = nifti.read(job.options.volumes[0])
    assert np.array_equal(exported.array, slicer.util.arrayFromVolume(flair))
    assert exported.affine == pytest.approx(logic.ijkToRas(flair), abs=1e-4)

    events = poll_until_finished(job)
    progress = [e for e in events if e["event"] == "progress"]
    assert progress and all(e["stage"] == "score" for e in progress)
    assert progress[-1]["iteration"] == progress[-1]["total"]
    assert job.finished["status"] == "succeeded", job.finished["message"]
    written = nifti.read(job.options.output).array

    node, score_map = logic.readScoreResult(job, show=False)
    logic.finishScoring(job)
    assert not os.path.exists(job.exportFolder)
    assert job.threshold == pytest.approx(info.threshold)
    assert score_map.shape == shape and score_map.dtype == np.float32
    assert np.array_equal(score_map, written)
    assert np.isfinite(score_map).all() and (score_map != 0).sum() > 1000
    assert np.all(score_map[box == 0] == 0)
    assert logic.ijkToRas(node) == pytest.approx(logic.ijkToRas(flair))
    assert node.GetSpacing() == pytest.approx(flair.GetSpacing())
    assert node.GetTransformNodeID() == transform.GetID()
    stats = logic.updateSegmentation(node, None, job.threshold)[1]
    assert stats["voxels"] == int(maps.anomaly_mask(score_map, job.threshold).sum())
    flair.SetAndObserveTransformNodeID(None)


def test_cancel_ends_the_scoring_process(mrml, flair, trained):
    job = mrml.logic.startScoring(str(trained["path"]), [flair], stride=8, device="cpu")
    deadline = time.monotonic() + 60
    seen = []
    while not any(e["event"] == "progress" for e in seen):
        assert job.finished is None, job.finished
        assert time.monotonic() < deadline, "no progress"
        seen += job.poll()
        time.sleep(0.02)
    t0 = time.monotonic()
    job.cancel()
    final = mrml.logic.waitFor(job, timeout=30)
    assert time.monotonic() - t0 < 5
    assert final["status"] == "cancelled"
    assert job._proc.poll() is not None  # the process is gone
    mrml.logic.finishScoring(job)
    assert not os.path.exists(job.exportFolder)
    with pytest.raises(AdganError, match="has not succeeded"):
        mrml.logic.readScoreResult(job)


def test_finish_while_cancelling_leaves_no_exported_files(mrml, flair, trained):
    """The panel closed (or Slicer quit) during scoring: the exported volumes
    go at once, not only from a timer that may never fire."""
    fake_slicer.QTimer.single_shots.clear()
    job = mrml.logic.startScoring(str(trained["path"]), [flair], stride=8, device="cpu")
    folder = job.exportFolder
    assert os.listdir(folder)
    job.cancel()
    mrml.logic.finishScoring(job)
    assert not os.path.exists(folder)
    assert len(fake_slicer.QTimer.single_shots) == 1  # and again once the process had time to end
    final = mrml.logic.waitFor(job, timeout=30)
    assert final["status"] == "cancelled", final["message"]
    fake_slicer.QTimer.single_shots.pop()[1]()
    assert not os.path.exists(folder)


def test_logic_score_waits(mrml, flair, trained):
    """The script API: score() waits, Slicer's events processed (training
    through the logic: test_module_widget.py)."""
    before = mrml.app.processed
    node = mrml.logic.score(str(trained["path"]), [flair], stride=16, device="cpu", timeout=120, show=False)
    assert mrml.slicer.util.arrayFromVolume(node).shape == mrml.slicer.util.arrayFromVolume(flair).shape
    assert mrml.app.processed > before
    with pytest.raises(AdganError, match=r"needs 1 input volume\(s\)"):
        mrml.logic.startScoring(str(trained["path"]), [flair, flair],
                                modelInfo=mrml.logic.getModelInfo(str(trained["path"])))


def test_real_adgan_lists_its_devices(mrml):
    """adgan devices --json as the panel reads it (the CPU is always there;
    a CUDA device only where libtorch sees one)."""
    devices = mrml.logic.getDevices(timeout=60)
    assert devices is not None, "adgan devices --json gave no device list"
    assert "cpu" in devices["devices"] and devices["default"] in devices["devices"]
    cudas = [d for d in devices["devices"] if d.startswith("cuda:")]
    assert len(cudas) == devices["cuda_device_count"]
    from ADGANLib.process import resolve_device

    assert resolve_device("cuda:7", devices)[0] == ("cuda:7" if "cuda:7" in cudas else "cpu")
