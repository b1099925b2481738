"""libadgan through ctypes, on real volumes, against the adgan program."""

import json
import os
import subprocess
import time

import numpy as np
import pytest
from ADGANLib import geometry, nifti
from ADGANLib.errors import STATUS_FORMAT, STATUS_INVALID_ARGUMENT, STATUS_IO, AdganError, CancelledError
from ADGANLib.jobs import ScoreJob
from conftest import DEMO_FLAIR, THREADS
from helpers import read_nifti_f32

# Stride of the full-volume comparison: windows grow as 1/stride^2; 16 keeps
# the suite short on a 2-core machine (ADGAN_TEST_STRIDE=8 for adgan's default).
STRIDE = int(os.environ.get("ADGAN_TEST_STRIDE", "16"))


@pytest.fixture(scope="module")
def crop(tmp_path_factory):
    """A small real sub-volume (the demo FLAIR), written by ADGANLib with an
    oblique, mirrored affine: quick to score, and a check that the library
    reads what ADGANLib writes."""
    img = nifti.read(DEMO_FLAIR)
    sub = np.ascontiguousarray(img.array[70:86, 50:170, 50:170])
    theta = np.deg2rad(20)
    m = np.eye(4)
    m[:3, :3] = np.array([[np.cos(theta), -np.sin(theta), 0], [np.sin(theta), np.cos(theta), 0], [0, 0, 1]])
    m[:3, :3] = m[:3, :3] @ np.diag([0.9, 0.9, -2.0])
    m[:3, 3] = [12.5, -30.0, 40.0]
    path = nifti.write(tmp_path_factory.mktemp("crop") / "crop.nii.gz", sub, m)
    return {"path": path, "array": sub, "affine": m}


def test_library_identity(library):
    assert library.abi_version == 1
    assert library.version.count(".") == 2
    assert library.cuda_device_count() >= 0


def test_model_metadata_matches_adgan_info(model, binary_path, trained):
    info = json.loads(subprocess.run([str(binary_path), "info", "--json", str(trained["path"])],
                                     check=True, capture_output=True, text=True).stdout)
    assert model.channels == info["channels"] == 1
    assert model.channel_names == info["channel_names"] == ["flair"]
    assert model.slice_axis == info["slice_axis"]
    # The threshold the C API gives is the default maps' own (the map
    # calibration of a volume-trained model), which the panel's slider and
    # segmentation use; the window threshold is for window scores.
    cal = info["calibration"]
    # The quick preset's model has an intensity gate, so its maps are
    # painted mixed (attribution and mean), and so calibrated.
    assert cal["map"]["gated"] is True
    assert cal["map"]["painting"] == "mixed:5"
    assert model.calibration["threshold"] == pytest.approx(cal["map"]["threshold"])
    assert model.calibration["threshold"] >= cal["threshold"]
    assert model.calibration["mean"] == pytest.approx(info["calibration"]["mean"])
    assert model.metadata["training"]["phase1_iterations"] == 3
    assert model.device_name == "cpu"
    assert "flair" in model.describe()


def test_score_real_volume_matches_adgan_score(model, binary_path, trained, shared_flair, tmp_path):
    """A shared-data volume scored through ctypes equals `adgan score` on the
    same file and model; the map `adgan score` writes keeps the input's geometry."""
    ref_path = tmp_path / "ref.nii.gz"
    t0 = time.monotonic()
    subprocess.run([str(binary_path), "score", "-m", str(trained["path"]), "-v", str(shared_flair),
                    "-o", str(ref_path), "--stride", str(STRIDE), "--device", "cpu", "--threads", str(THREADS)],
                   check=True, capture_output=True, text=True)
    t_cli = time.monotonic() - t0
    ref, ref_affine = read_nifti_f32(ref_path)

    img = nifti.read(shared_flair)
    stages = []
    t0 = time.monotonic()
    out = model.score([img.array], stride=STRIDE, progress=lambda *a: stages.append(a) and False)
    t_ctypes = time.monotonic() - t0
    print(f"stride {STRIDE}: adgan score {t_cli:.1f} s, ctypes {t_ctypes:.1f} s")

    assert out.shape == ref.shape == img.array.shape
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-4)
    assert (out != 0).sum() > 100000
    assert np.all(out[img.array == 0] == 0)  # 0 outside the brain
    # progress: one call per slice, stage "score"
    assert stages[-1][0] == "score" and stages[-1][1] == stages[-1][2] == 155
    # geometry: the written map sits on the input's grid
    assert np.allclose(ref_affine, img.affine)
    assert geometry.VolumeGeometry.from_ijk_to_ras(ref_affine).is_close(
        geometry.VolumeGeometry.from_ijk_to_ras(img.affine))


def test_score_file_equals_score_volume(model, crop, tmp_path):
    out_path = model.score_file([crop["path"]], tmp_path / "map.nii.gz", stride=8)
    written = nifti.read(out_path)
    direct = model.score(crop["array"], stride=8)
    np.testing.assert_allclose(written.array, direct, rtol=0, atol=1e-5)
    assert np.allclose(written.affine, crop["affine"], atol=1e-4)  # oblique, mirrored: kept
    assert (direct != 0).sum() > 1000


def test_brain_mask(model, crop):
    mask = np.zeros(crop["array"].shape, np.uint8)
    mask[:, 20:100, 20:100] = 1
    out = model.score(crop["array"], mask=mask, stride=8)
    assert np.all(out[mask == 0] == 0)
    assert (out[mask == 1] != 0).sum() > 0


def test_cancel_from_progress(model, crop):
    calls = []

    def progress(stage, it, total, *_):
        calls.append(it)
        return it >= 3

    with pytest.raises(CancelledError):
        model.score(crop["array"], stride=8, progress=progress)
    assert calls[:3] == [1, 2, 3] and len(calls) <= 4


def test_exception_in_progress_is_raised(model, crop):
    def progress(*_):
        raise KeyError("from the callback")

    with pytest.raises(KeyError):
        model.score(crop["array"], stride=8, progress=progress)


def test_wrong_channel_count_message(model, crop):
    with pytest.raises(AdganError) as e:
        model.score([crop["array"], crop["array"]])
    assert str(e.value) == "The model tiny.adgan needs 1 input volume(s) (flair), but 2 were given."
    with pytest.raises(AdganError) as e:
        model.score_file([crop["path"]] * 2, "/tmp/never-written.nii.gz")
    assert "needs 1 input volume(s) (flair), but 2 were given" in str(e.value)


def test_library_checks_channel_count_too(library, model):
    """The library's own message, as the panel would show it if Python did not check first."""
    import ctypes

    from ADGANLib import native

    out = (ctypes.c_float * 8)()
    buf = (ctypes.c_float * 8)()
    ptrs = (ctypes.POINTER(ctypes.c_float) * 2)(buf, buf)
    status = library.raw.adgan_score_volume(model._handle, ptrs, 2, 2, 2, 2, None, 8, -1, out,
                                            native._NULL_PROGRESS, None)
    with pytest.raises(AdganError) as e:
        library.check(status, "Scoring")
    assert e.value.status == STATUS_INVALID_ARGUMENT
    assert "Scoring failed (invalid argument)" in str(e.value)
    assert "needs 1 channel(s) (flair), got 2" in str(e.value)


def test_shape_and_argument_errors(model, crop):
    a = crop["array"]
    with pytest.raises(AdganError, match="brain mask has"):
        model.score(a, mask=np.ones((2, 2, 2)))
    with pytest.raises(AdganError, match="must be a 3-D volume"):
        model.score([a[0]])
    with pytest.raises(AdganError) as e:
        model.score(a, stride=0)
    assert e.value.status == STATUS_INVALID_ARGUMENT and "stride 0 (expected 1 to 32)" in str(e.value)
    with pytest.raises(AdganError) as e:
        model.score(np.full(a.shape, np.nan, np.float32))
    assert e.value.status == STATUS_FORMAT


def test_model_load_errors(library, tmp_path):
    missing = tmp_path / "missing.adgan"
    with pytest.raises(AdganError) as e:
        library.load_model(missing, "cpu")
    assert e.value.status == STATUS_IO
    assert str(e.value).startswith(f"Loading the model {missing} failed (I/O error):")
    junk = tmp_path / "junk.adgan"
    junk.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{}" + b"x" * 100)
    with pytest.raises(AdganError) as e:
        library.load_model(junk, "cpu")
    assert e.value.status in (STATUS_FORMAT, STATUS_IO)
    with pytest.raises(AdganError) as e:
        library.load_model(junk, "tpu")
    assert e.value.status == STATUS_INVALID_ARGUMENT


def test_closed_model(library, trained):
    m = library.load_model(trained["path"], "cpu")
    m.close()
    m.close()  # twice is fine
    with pytest.raises(AdganError, match="closed"):
        m.score(np.zeros((2, 2, 2)))


def test_score_job_on_a_thread(model, crop):
    job = ScoreJob(model, [crop["array"]], stride=8).start()
    events = []
    final = job.wait(timeout=120, on_event=events.append)
    assert final["status"] == "succeeded", final["message"]
    assert [e["iteration"] for e in events if e["event"] == "progress"][-1] == crop["array"].shape[0]
    np.testing.assert_allclose(job.map, model.score(crop["array"], stride=8), atol=1e-5)


def test_score_job_cancel_and_failure(model, crop):
    job = ScoreJob(model, [crop["array"]], stride=8)
    job.cancel()  # before it starts: the first progress call cancels
    job.start()
    assert job.wait(timeout=120)["status"] == "cancelled"
    job = ScoreJob(model, [crop["array"], crop["array"]]).start()
    final = job.wait(timeout=60)
    assert final["status"] == "failed" and "needs 1 input volume(s)" in final["message"]
