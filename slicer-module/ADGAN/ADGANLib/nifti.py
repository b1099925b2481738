"""A small NIfTI-1 reader and writer (numpy only; .nii and .nii.gz).

Used to hand Slicer volumes to the ``adgan`` program (training runs in its
own process and reads files) and to read maps back. Arrays are ``[k, j, i]``
(C order, ``i`` fastest): the file's voxel order and Slicer's
``arrayFromVolume`` layout. The affine maps (i, j, k) to RAS millimetres: the
sform when its code is set, else the qform, else the pixel spacing; for
Slicer it is the IJK-to-RAS matrix.
"""

import gzip
import os
import struct
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HEADER_SIZE = 348
VOX_OFFSET = 352

DTYPES = {
    2: np.uint8, 4: np.int16, 8: np.int32, 16: np.float32, 64: np.float64,
    256: np.int8, 512: np.uint16, 768: np.uint32, 1024: np.int64, 1280: np.uint64,
}
CODES = {np.dtype(v): k for k, v in DTYPES.items()}

XFORM_SCANNER = 1


class NiftiError(ValueError):
    pass


@dataclass
class NiftiImage:
    array: np.ndarray  # [k, j, i] (3-D) or [t, k, j, i]
    affine: np.ndarray  # 4x4, voxel (i, j, k) -> RAS mm
    header: dict = field(default_factory=dict)

    @property
    def dims(self):
        return tuple(int(s) for s in self.array.shape[::-1])

    @property
    def spacing(self):
        return tuple(float(v) for v in np.linalg.norm(self.affine[:3, :3], axis=0))


def _open(path):
    path = Path(path)
    with open(path, "rb") as f:
        magic = f.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rb")
    return open(path, "rb")


def quaternion_to_matrix(b, c, d):
    a = 1.0 - (b * b + c * c + d * d)
    a = np.sqrt(a) if a > 0 else 0.0
    return np.array([
        [a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
        [2 * (b * c + a * d), a * a + c * c - b * b - d * d, 2 * (c * d - a * b)],
        [2 * (b * d - a * c), 2 * (c * d + a * b), a * a + d * d - c * c - b * b],
    ])


def matrix_to_quaternion(r):
    """(b, c, d) of a proper rotation (a = sqrt(1 - b^2 - c^2 - d^2) >= 0)."""
    u, _, vt = np.linalg.svd(np.asarray(r, dtype=np.float64))
    r = u @ vt  # nearest rotation
    t = np.trace(r)
    if t > 0:
        s = np.sqrt(t + 1.0) * 2
        a, b, c, d = 0.25 * s, (r[2, 1] - r[1, 2]) / s, (r[0, 2] - r[2, 0]) / s, (r[1, 0] - r[0, 1]) / s
    elif r[0, 0] > r[1, 1] and r[0, 0] > r[2, 2]:
        s = np.sqrt(1.0 + r[0, 0] - r[1, 1] - r[2, 2]) * 2
        a, b, c, d = (r[2, 1] - r[1, 2]) / s, 0.25 * s, (r[0, 1] + r[1, 0]) / s, (r[0, 2] + r[2, 0]) / s
    elif r[1, 1] > r[2, 2]:
        s = np.sqrt(1.0 + r[1, 1] - r[0, 0] - r[2, 2]) * 2
        a, b, c, d = (r[0, 2] - r[2, 0]) / s, (r[0, 1] + r[1, 0]) / s, 0.25 * s, (r[1, 2] + r[2, 1]) / s
    else:
        s = np.sqrt(1.0 + r[2, 2] - r[0, 0] - r[1, 1]) * 2
        a, b, c, d = (r[1, 0] - r[0, 1]) / s, (r[0, 2] + r[2, 0]) / s, (r[1, 2] + r[2, 1]) / s, 0.25 * s
    if a < 0:
        b, c, d = -b, -c, -d
    return float(b), float(c), float(d)


def _parse_header(raw, path):
    if len(raw) < HEADER_SIZE:
        raise NiftiError(f"{path}: too short for a NIfTI-1 header")
    for endian in "<>":
        if struct.unpack(endian + "i", raw[:4])[0] == HEADER_SIZE:
            break
    else:
        if struct.unpack("<i", raw[:4])[0] == 540 or struct.unpack(">i", raw[:4])[0] == 540:
            raise NiftiError(f"{path}: NIfTI-2 files are not supported; save it as NIfTI-1")
        raise NiftiError(f"{path}: not a NIfTI-1 file")

    def get(fmt, offset):
        return struct.unpack_from(endian + fmt, raw, offset)

    h = {
        "endian": endian,
        "dim": get("8h", 40),
        "datatype": get("h", 70)[0],
        "bitpix": get("h", 72)[0],
        "pixdim": get("8f", 76),
        "vox_offset": get("f", 108)[0],
        "scl_slope": get("f", 112)[0],
        "scl_inter": get("f", 116)[0],
        "xyzt_units": raw[123],
        "descrip": raw[148:228].split(b"\0")[0].decode("latin-1"),
        "qform_code": get("h", 252)[0],
        "sform_code": get("h", 254)[0],
        "quatern": get("3f", 256),
        "qoffset": get("3f", 268),
        "srow": np.array([get("4f", 280), get("4f", 296), get("4f", 312)], dtype=np.float64),
        "magic": raw[344:348],
    }
    if h["magic"] not in (b"n+1\0", b"ni1\0"):
        raise NiftiError(f"{path}: bad NIfTI magic {h['magic']!r}")
    return h


def header_affine(h):
    """The affine of a parsed header: sform, else qform, else spacing only."""
    if h["sform_code"] > 0:
        m = np.eye(4)
        m[:3] = h["srow"]
        return m
    pixdim = h["pixdim"]
    spacing = np.array([pixdim[1] or 1.0, pixdim[2] or 1.0, pixdim[3] or 1.0], dtype=np.float64)
    m = np.eye(4)
    if h["qform_code"] > 0:
        qfac = -1.0 if pixdim[0] < 0 else 1.0
        r = quaternion_to_matrix(*[float(v) for v in h["quatern"]])
        m[:3, :3] = r @ np.diag([spacing[0], spacing[1], qfac * spacing[2]])
        m[:3, 3] = h["qoffset"]
    else:
        m[:3, :3] = np.diag(spacing)
    return m


def read_header(path):
    with _open(path) as f:
        raw = f.read(VOX_OFFSET)
    return _parse_header(raw, path)


def read(path, scale=True):
    """Read a NIfTI-1 file. With ``scale``, ``scl_slope``/``scl_inter`` are
    applied (float32 result) when they are not the identity."""
    with _open(path) as f:
        raw = f.read()
    h = _parse_header(raw, path)
    ndim = h["dim"][0]
    if not 1 <= ndim <= 7:
        raise NiftiError(f"{path}: bad dim[0] = {ndim}")
    dims = [max(1, int(d)) for d in h["dim"][1:ndim + 1]]
    while len(dims) < 3:
        dims.append(1)
    while len(dims) > 3 and dims[-1] == 1:
        dims.pop()
    if h["datatype"] not in DTYPES:
        raise NiftiError(f"{path}: unsupported NIfTI datatype {h['datatype']}")
    dtype = np.dtype(DTYPES[h["datatype"]]).newbyteorder(h["endian"])
    count = int(np.prod(dims))
    offset = int(h["vox_offset"])
    if len(raw) < offset + count * dtype.itemsize:
        raise NiftiError(f"{path}: truncated: {count} voxels of {dtype} do not fit")
    data = np.frombuffer(raw, dtype=dtype, count=count, offset=offset)
    data = data.reshape(dims[::-1]).astype(dtype.newbyteorder("="), copy=True)
    slope, inter = float(h["scl_slope"]), float(h["scl_inter"])
    if scale and np.isfinite(slope) and slope != 0 and (slope != 1 or inter != 0):
        data = (data.astype(np.float64) * slope + inter).astype(np.float32)
    return NiftiImage(data, header_affine(h), h)


def _header_bytes(dims, dtype, affine, descrip):
    affine = np.asarray(affine, dtype=np.float64)
    linear = affine[:3, :3]
    spacing = np.linalg.norm(linear, axis=0)
    if np.any(spacing <= 0):
        raise NiftiError(f"degenerate affine (voxel spacing {spacing})")
    r = linear / spacing
    qfac = 1.0
    if np.linalg.det(r) < 0:
        qfac = -1.0
        r = r.copy()
        r[:, 2] *= -1
    b, c, d = matrix_to_quaternion(r)
    hdr = bytearray(VOX_OFFSET)
    struct.pack_into("<i", hdr, 0, HEADER_SIZE)
    dim = [len(dims)] + list(dims) + [1] * (7 - len(dims))
    struct.pack_into("<8h", hdr, 40, *dim)
    struct.pack_into("<hh", hdr, 70, CODES[np.dtype(dtype)], np.dtype(dtype).itemsize * 8)
    pixdim = [qfac, *spacing] + [1.0] * (7 - 3)
    struct.pack_into("<8f", hdr, 76, *pixdim)
    struct.pack_into("<fff", hdr, 108, float(VOX_OFFSET), 1.0, 0.0)
    hdr[123] = 2 | 8  # mm, s
    desc = descrip.encode("latin-1", errors="replace")[:79]
    hdr[148:148 + len(desc)] = desc
    struct.pack_into("<hh", hdr, 252, XFORM_SCANNER, XFORM_SCANNER)
    struct.pack_into("<3f", hdr, 256, b, c, d)
    struct.pack_into("<3f", hdr, 268, *affine[:3, 3])
    for row in range(3):
        struct.pack_into("<4f", hdr, 280 + 16 * row, *affine[row])
    hdr[344:348] = b"n+1\0"
    return bytes(hdr)


def write(path, array, affine, dtype=None, descrip="adGAN"):
    """Write ``array`` ([k, j, i]) with its IJK-to-RAS ``affine`` (4x4) as a
    NIfTI-1 file (gzip when the name ends with .gz), atomically. Both sform
    and qform hold the geometry. ``dtype``: stored type (default: the
    array's, when NIfTI has it, else float32)."""
    path = Path(path)
    a = np.asarray(array)
    if a.ndim != 3:
        raise NiftiError(f"expected a 3-D [k, j, i] array, got shape {a.shape}")
    if dtype is None:
        if a.dtype == np.bool_:
            dtype = np.uint8
        else:
            dtype = a.dtype if a.dtype in CODES else np.float32
    dtype = np.dtype(dtype)
    if dtype not in CODES:
        raise NiftiError(f"NIfTI cannot store {dtype}")
    a = np.ascontiguousarray(a, dtype=dtype.newbyteorder("<"))
    header = _header_bytes(a.shape[::-1], dtype, affine, descrip)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as raw_file:
            if path.name.endswith(".gz"):
                with gzip.GzipFile(fileobj=raw_file, mode="wb", compresslevel=1) as f:
                    f.write(header)
                    f.write(a.tobytes())
            else:
                raw_file.write(header)
                raw_file.write(a.tobytes())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
