"""ADGANLib's NIfTI reader and writer (what the panel hands to adgan train)."""

import struct

import numpy as np
import pytest
from ADGANLib import nifti
from helpers import read_nifti_f32
from test_geometry import random_affine


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
@pytest.mark.parametrize("dtype", [np.float32, np.int16, np.uint8, np.float64])
def test_write_read_round_trip(tmp_path, suffix, dtype):
    rng = np.random.default_rng(1)
    a = (rng.uniform(0, 100, size=(4, 5, 6))).astype(dtype)
    m = random_affine(rng, flip=True)
    path = nifti.write(tmp_path / ("v" + suffix), a, m)
    img = nifti.read(path)
    assert img.array.dtype == np.dtype(dtype)
    assert np.array_equal(img.array, a)
    assert np.allclose(img.affine, m, atol=1e-4)
    assert img.dims == (6, 5, 4)


def test_qform_alone_gives_the_same_affine(tmp_path):
    rng = np.random.default_rng(7)
    for flip in (False, True):
        m = random_affine(rng, flip)
        path = nifti.write(tmp_path / "q.nii", np.zeros((2, 3, 4), np.float32), m)
        raw = bytearray(path.read_bytes())
        struct.pack_into("<h", raw, 254, 0)  # sform_code = 0
        path.write_bytes(bytes(raw))
        img = nifti.read(path)
        assert img.header["sform_code"] == 0
        assert np.allclose(img.affine, m, atol=1e-4)


def test_quaternion_round_trip():
    rng = np.random.default_rng(3)
    for _ in range(50):
        q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        if np.linalg.det(q) < 0:
            q[:, 0] *= -1
        assert np.allclose(nifti.quaternion_to_matrix(*nifti.matrix_to_quaternion(q)), q, atol=1e-9)


def test_reads_real_data_like_an_independent_reader(shared_flair):
    img = nifti.read(shared_flair)
    data, affine = read_nifti_f32(shared_flair)
    assert img.array.shape == data.shape == (155, 240, 240)
    assert np.array_equal(img.array.astype(np.float32), data)
    assert np.allclose(img.affine, affine)


def test_bool_arrays_become_uint8(tmp_path):
    a = np.zeros((2, 2, 2), bool)
    a[0, 1, 1] = True
    img = nifti.read(nifti.write(tmp_path / "m.nii.gz", a, np.eye(4)))
    assert img.array.dtype == np.uint8 and img.array.sum() == 1


def test_errors(tmp_path):
    bad = tmp_path / "bad.nii"
    bad.write_bytes(b"\0" * 400)
    with pytest.raises(nifti.NiftiError, match="not a NIfTI-1 file"):
        nifti.read(bad)
    with pytest.raises(nifti.NiftiError, match="3-D"):
        nifti.write(tmp_path / "x.nii", np.zeros((2, 2)), np.eye(4))
