"""Geometry: Slicer's IJK-to-RAS, NIfTI affines and ITK's LPS form."""

import numpy as np
import pytest
from ADGANLib import geometry, nifti
from ADGANLib.geometry import VolumeGeometry
from helpers import read_nifti_f32


def random_affine(rng, flip=False):
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    if (np.linalg.det(q) < 0) != flip:
        q[:, 0] *= -1
    m = np.eye(4)
    m[:3, :3] = q * rng.uniform(0.3, 3.0, size=3)
    m[:3, 3] = rng.uniform(-200, 200, size=3)
    return m


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("flip", [False, True])
def test_ras_lps_round_trip(seed, flip):
    m = random_affine(np.random.default_rng(seed), flip)
    lps = geometry.ras_to_lps(m)
    assert np.allclose(lps[:2], -m[:2]) and np.allclose(lps[2:], m[2:])
    assert np.allclose(geometry.lps_to_ras(lps), m)
    g = VolumeGeometry.from_ijk_to_ras(m)
    assert np.allclose(g.ijk_to_ras(), m)
    origin, spacing, direction = g.to_itk()
    back = VolumeGeometry.from_itk(origin, spacing, direction)
    assert back.is_close(g, atol=1e-9)
    assert np.allclose(direction.T @ direction, np.eye(3))  # ITK directions are orthonormal
    assert np.allclose(g.ijk_to_lps(), lps)
    p = np.array([3.0, 4.0, 5.0])
    assert np.allclose(geometry.point_lps_to_ras(geometry.point_ras_to_lps(p)), p)


def test_itk_identity_is_ras_flip():
    """An ITK image with identity direction at the LPS origin is, in Slicer,
    the volume whose i and j axes point to -R and -A."""
    g = VolumeGeometry.from_itk([10.0, 20.0, 30.0], [0.5, 0.5, 2.0], np.eye(3))
    m = g.ijk_to_ras()
    assert np.allclose(m[:3, :3], np.diag([-0.5, -0.5, 2.0]))
    assert np.allclose(m[:3, 3], [-10.0, -20.0, 30.0])
    assert g.spacing == (0.5, 0.5, 2.0)
    assert np.allclose(g.voxel_to_ras([1, 0, 0]), [-10.5, -20.0, 30.0])
    assert g.voxel_volume_mm3() == pytest.approx(0.5)


def test_degenerate_matrices_are_refused():
    with pytest.raises(ValueError):
        VolumeGeometry.from_ijk_to_ras(np.zeros((4, 4)))
    with pytest.raises(ValueError):
        VolumeGeometry.from_ijk_to_ras(np.eye(3))


def test_dims_and_same_grid():
    a = np.zeros((5, 6, 7))
    assert geometry.dims_of(a) == (7, 6, 5)
    m = np.eye(4)
    assert geometry.same_grid(a.shape, m, (5, 6, 7), m)
    m2 = m.copy()
    m2[0, 3] = 1
    assert not geometry.same_grid(a.shape, m, (5, 6, 7), m2)
    assert not geometry.same_grid(a.shape, m, (5, 6, 8), m)


def test_real_file_affine_is_slicer_ijk_to_ras(shared_flair):
    """The affine ADGANLib reads from a shared-data volume is the sform an
    independent reader finds; as IJK-to-RAS it gives 1 mm BraTS geometry."""
    img = nifti.read(shared_flair)
    _, srow = read_nifti_f32(shared_flair)
    assert np.allclose(img.affine, srow)
    g = VolumeGeometry.from_ijk_to_ras(img.affine)
    assert np.allclose(g.spacing, 1.0)
    assert img.dims == (240, 240, 155)
    # through LPS and back: unchanged
    assert np.allclose(geometry.lps_to_ras(geometry.ras_to_lps(img.affine)), img.affine)
