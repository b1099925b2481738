"""Volume geometry: Slicer's IJK-to-RAS matrix, NIfTI's affine and ITK's LPS form.

- Slicer keeps a volume's geometry as a 4x4 IJK-to-RAS matrix (RAS: +x
  towards the patient's Right, +y Anterior, +z Superior).
- A NIfTI file's sform/qform affine maps voxel (i, j, k) to RAS millimetres:
  for a volume Slicer loaded from a NIfTI file it *is* the IJK-to-RAS matrix.
- ITK (and DICOM) use LPS: origin, spacing and a direction matrix whose
  columns are the i, j, k axes, with x and y negated relative to RAS.

Arrays are ``[k, j, i]`` (C order, ``i`` fastest); dims are ``(ni, nj, nk)``.
"""

from dataclasses import dataclass

import numpy as np

# Flips x and y: RAS <-> LPS (its own inverse).
RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])
LPS_TO_RAS = RAS_TO_LPS


def _matrix(m):
    m = np.asarray(m, dtype=np.float64)
    if m.shape != (4, 4):
        raise ValueError(f"expected a 4x4 matrix, got shape {m.shape}")
    return m


def ras_to_lps(matrix):
    """IJK-to-RAS 4x4 -> IJK-to-LPS 4x4."""
    return RAS_TO_LPS @ _matrix(matrix)


def lps_to_ras(matrix):
    """IJK-to-LPS 4x4 -> IJK-to-RAS 4x4."""
    return LPS_TO_RAS @ _matrix(matrix)


def point_ras_to_lps(point):
    p = np.asarray(point, dtype=np.float64)
    return p * np.array([-1.0, -1.0, 1.0])


point_lps_to_ras = point_ras_to_lps


def dims_of(array):
    """(ni, nj, nk) of a ``[k, j, i]`` array."""
    shape = np.shape(array)
    if len(shape) != 3:
        raise ValueError(f"expected a 3-D array, got shape {shape}")
    return tuple(int(s) for s in shape[::-1])


@dataclass(frozen=True)
class VolumeGeometry:
    """Origin (RAS, mm), spacing (mm) and directions (3x3, RAS; column c is the
    unit vector of voxel axis c) of a voxel grid."""

    origin: tuple
    spacing: tuple
    directions: tuple  # row-major 3x3

    @staticmethod
    def from_ijk_to_ras(matrix):
        m = _matrix(matrix)
        if not np.allclose(m[3], [0, 0, 0, 1]):
            raise ValueError(f"not an affine matrix (last row {m[3]})")
        linear = m[:3, :3]
        spacing = np.linalg.norm(linear, axis=0)
        if np.any(spacing <= 0) or not np.all(np.isfinite(spacing)):
            raise ValueError(f"degenerate voxel spacing {spacing}")
        directions = linear / spacing
        return VolumeGeometry(tuple(float(v) for v in m[:3, 3]),
                              tuple(float(v) for v in spacing),
                              tuple(tuple(float(v) for v in row) for row in directions))

    def ijk_to_ras(self):
        m = np.eye(4)
        m[:3, :3] = np.asarray(self.directions) * np.asarray(self.spacing)
        m[:3, 3] = self.origin
        return m

    def ras_to_ijk(self):
        return np.linalg.inv(self.ijk_to_ras())

    # ITK / LPS form
    @staticmethod
    def from_itk(origin_lps, spacing, direction_lps):
        """From ITK's origin (LPS), spacing and direction matrix (LPS, columns = axes)."""
        d = np.asarray(direction_lps, dtype=np.float64).reshape(3, 3)
        m = np.eye(4)
        m[:3, :3] = d * np.asarray(spacing, dtype=np.float64)
        m[:3, 3] = np.asarray(origin_lps, dtype=np.float64)
        return VolumeGeometry.from_ijk_to_ras(lps_to_ras(m))

    def to_itk(self):
        """(origin_lps, spacing, direction_lps 3x3) as ITK wants them."""
        m = ras_to_lps(self.ijk_to_ras())
        spacing = np.asarray(self.spacing)
        return m[:3, 3].copy(), spacing.copy(), m[:3, :3] / spacing

    def ijk_to_lps(self):
        return ras_to_lps(self.ijk_to_ras())

    def is_close(self, other, atol=1e-4):
        return bool(np.allclose(self.ijk_to_ras(), other.ijk_to_ras(), atol=atol))

    def voxel_volume_mm3(self):
        return float(abs(np.linalg.det(self.ijk_to_ras()[:3, :3])))

    def voxel_to_ras(self, ijk):
        p = np.append(np.asarray(ijk, dtype=np.float64), 1.0)
        return (self.ijk_to_ras() @ p)[:3]


def same_grid(shape_a, matrix_a, shape_b, matrix_b, atol=1e-3):
    """True when two volumes have the same dims and IJK-to-RAS matrix."""
    return tuple(shape_a) == tuple(shape_b) and np.allclose(_matrix(matrix_a), _matrix(matrix_b), atol=atol)
