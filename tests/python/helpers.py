"""Test helpers independent of ADGANLib (so they can check it)."""

import gzip
import struct

import numpy as np


def read_nifti_f32(path):
    """Minimal NIfTI-1 reader: (array [k, j, i] float32, srow affine 4x4).

    Enough for the maps `adgan score` writes (little-endian, float32 or
    int16/uint8 input, 352-byte header, sform) and the shared data."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    assert struct.unpack("<i", raw[:4])[0] == 348, "not a little-endian NIfTI-1 file"
    dim = struct.unpack_from("<8h", raw, 40)
    datatype = struct.unpack_from("<h", raw, 70)[0]
    vox_offset = int(struct.unpack_from("<f", raw, 108)[0])
    slope, inter = struct.unpack_from("<ff", raw, 112)
    dtype = {2: "<u1", 4: "<i2", 8: "<i4", 16: "<f4", 64: "<f8", 512: "<u2"}[datatype]
    nx, ny, nz = dim[1], dim[2], dim[3]
    data = np.frombuffer(raw, dtype=dtype, count=nx * ny * nz, offset=vox_offset)
    data = data.reshape(nz, ny, nx).astype(np.float32)
    if slope not in (0.0, 1.0) or inter != 0.0:
        data = data * slope + inter
    affine = np.eye(4)
    affine[:3] = np.array(struct.unpack_from("<12f", raw, 280)).reshape(3, 4)
    return data, affine
