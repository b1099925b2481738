"""libadgan through ctypes: load a model, read its metadata, score volumes.

Volumes are numpy arrays indexed ``[k, j, i]`` (C order, ``i`` fastest), as
Slicer's ``slicer.util.arrayFromVolume`` and :func:`ADGANLib.nifti.read`
return them: in memory that is the library's layout (x fastest, dims
``nx, ny, nz`` = ``shape[2], shape[1], shape[0]``).
"""

import ctypes
import json
import os
import threading
from pathlib import Path

import numpy as np

from . import locate
from .errors import (
    STATUS_CANCELLED,
    STATUS_OK,
    AdganError,
    CancelledError,
    LibraryNotFoundError,
    status_name,
)

STAGES = ("prepare", "wgan", "critic", "calibrate", "score")

# ADGAN_ABI_VERSION of the include/adgan.h these bindings follow.
ABI_VERSION = 1

PROGRESS_FN = ctypes.CFUNCTYPE(
    ctypes.c_int32,  # non-zero cancels
    ctypes.c_void_p,  # user_data
    ctypes.c_int32,  # stage
    ctypes.c_uint64,  # iteration
    ctypes.c_uint64,  # total
    ctypes.c_double,  # critic_loss
    ctypes.c_double,  # generator_loss
)

_REQUIRED = {
    # name: (restype, argtypes)
    "adgan_version_string": (ctypes.c_char_p, []),
    "adgan_abi_version": (ctypes.c_uint32, []),
    "adgan_last_error_message": (ctypes.c_char_p, []),
    "adgan_cuda_device_count": (ctypes.c_int32, []),
    "adgan_model_load": (ctypes.c_int32, [ctypes.c_char_p, ctypes.c_char_p,
                                          ctypes.POINTER(ctypes.c_void_p)]),
    "adgan_model_free": (None, [ctypes.c_void_p]),
    "adgan_model_channels": (ctypes.c_int32, [ctypes.c_void_p, ctypes.POINTER(ctypes.c_size_t)]),
    "adgan_model_slice_axis": (ctypes.c_int32, [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int32)]),
    "adgan_model_calibration": (ctypes.c_int32, [ctypes.c_void_p, ctypes.POINTER(ctypes.c_double),
                                                 ctypes.POINTER(ctypes.c_double),
                                                 ctypes.POINTER(ctypes.c_double)]),
    "adgan_model_device_name": (ctypes.c_int32, [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]),
    "adgan_model_metadata_json": (ctypes.c_int32, [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t,
                                                   ctypes.POINTER(ctypes.c_size_t)]),
    "adgan_score_volume": (ctypes.c_int32, [
        ctypes.c_void_p,  # model
        ctypes.POINTER(ctypes.POINTER(ctypes.c_float)),  # channels
        ctypes.c_size_t,  # n_channels
        ctypes.c_size_t, ctypes.c_size_t, ctypes.c_size_t,  # nx ny nz
        ctypes.POINTER(ctypes.c_uint8),  # brain_mask or NULL
        ctypes.c_uint32,  # stride
        ctypes.c_int32,  # slice_axis
        ctypes.POINTER(ctypes.c_float),  # map_out
        PROGRESS_FN, ctypes.c_void_p]),
    "adgan_score_file": (ctypes.c_int32, [
        ctypes.c_void_p, ctypes.POINTER(ctypes.c_char_p), ctypes.c_size_t,
        ctypes.c_char_p, ctypes.c_char_p, ctypes.c_uint32, PROGRESS_FN, ctypes.c_void_p]),
}

_OPTIONAL = {
    "adgan_set_num_threads": (ctypes.c_int32, [ctypes.c_int32]),
}

_NULL_PROGRESS = ctypes.cast(None, PROGRESS_FN)


def _encode_path(path):
    return os.fsencode(str(path))


class Library:
    """The loaded shared library (one per path and process)."""

    def __init__(self, path):
        self.path = Path(path)
        try:
            self._lib = ctypes.CDLL(str(self.path))
        except OSError as e:
            raise LibraryNotFoundError(
                f"Could not load the adGAN library {self.path}: {e}. Check that the file is "
                "libadgan built for this system and that libtorch (which it links) is present."
            ) from e
        missing = [name for name in _REQUIRED if not hasattr(self._lib, name)]
        if missing:
            raise LibraryNotFoundError(
                f"{self.path} is not a usable adGAN library: it lacks {', '.join(missing)} "
                "(too old, or not libadgan). Rebuild adgan or point the panel at a newer library."
            )
        for table in (_REQUIRED, _OPTIONAL):
            for name, (restype, argtypes) in table.items():
                if hasattr(self._lib, name):
                    fn = getattr(self._lib, name)
                    fn.restype = restype
                    fn.argtypes = argtypes
        self.version = self._lib.adgan_version_string().decode("utf-8")
        self.abi_version = int(self._lib.adgan_abi_version())
        if self.abi_version != ABI_VERSION:
            raise LibraryNotFoundError(
                f"{self.path} (adGAN {self.version}) has ABI version {self.abi_version}, but this module "
                f"was written for ABI version {ABI_VERSION}: install matching versions of the module and adgan."
            )

    def __repr__(self):
        return f"Library({str(self.path)!r}, version={self.version!r})"

    @property
    def raw(self):
        """The ctypes handle (for callers that need a function directly)."""
        return self._lib

    def last_error(self):
        message = self._lib.adgan_last_error_message()
        return message.decode("utf-8", errors="replace") if message else ""

    def check(self, status, what):
        """Raise the error for a non-OK status (on the thread that made the call)."""
        if status == STATUS_OK:
            return
        message = self.last_error() or status_name(status)
        if status == STATUS_CANCELLED:
            raise CancelledError(f"{what}: cancelled.")
        raise AdganError(f"{what} failed ({status_name(status)}): {message}", status)

    def cuda_device_count(self):
        return int(self._lib.adgan_cuda_device_count())

    def set_num_threads(self, n):
        if hasattr(self._lib, "adgan_set_num_threads"):
            self.check(self._lib.adgan_set_num_threads(int(n)), "Setting the thread count")

    def load_model(self, path, device="auto"):
        return Model(self, path, device)


_libraries = {}
_libraries_lock = threading.Lock()


def load_library(path=None, setting=None, environ=None, extra_prefixes=()):
    """Load libadgan (cached per resolved path). ``path`` wins over the search
    of :func:`ADGANLib.locate.find_library`."""
    if path is None:
        path = locate.find_library(setting=setting, environ=environ, extra_prefixes=extra_prefixes)
    key = str(Path(path).resolve())
    with _libraries_lock:
        lib = _libraries.get(key)
        if lib is None:
            lib = Library(key)
            _libraries[key] = lib
        return lib


def _as_float32_volume(array, what):
    a = np.asarray(array)
    if a.ndim != 3:
        raise AdganError(f"{what} must be a 3-D volume, got an array of shape {a.shape}.")
    if not np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype, np.complexfloating):
        raise AdganError(f"{what} has voxel type {a.dtype}, expected real numbers.")
    return np.ascontiguousarray(a, dtype=np.float32)


class Model:
    """A loaded adGAN model (a handle of the library). Close it, or use it as a
    context manager; it is also freed when garbage-collected."""

    def __init__(self, library, path, device="auto"):
        self.library = library
        self.path = Path(path)
        self._lib = library.raw
        self._handle = ctypes.c_void_p()
        device = device or "auto"
        status = self._lib.adgan_model_load(_encode_path(self.path), device.encode("utf-8"),
                                            ctypes.byref(self._handle))
        library.check(status, f"Loading the model {self.path}")
        self.requested_device = device
        self.channels = self._size("adgan_model_channels")
        axis = ctypes.c_int32()
        library.check(self._lib.adgan_model_slice_axis(self._handle, ctypes.byref(axis)),
                      "Reading the slice axis")
        self.slice_axis = int(axis.value)
        mean, std, thr = ctypes.c_double(), ctypes.c_double(), ctypes.c_double()
        library.check(self._lib.adgan_model_calibration(self._handle, ctypes.byref(mean),
                                                        ctypes.byref(std), ctypes.byref(thr)),
                      "Reading the calibration")
        self.calibration = {"mean": mean.value, "std": std.value, "threshold": thr.value}
        buf = ctypes.create_string_buffer(64)
        library.check(self._lib.adgan_model_device_name(self._handle, buf, len(buf)),
                      "Reading the device name")
        self.device_name = buf.value.decode("utf-8")
        self.metadata = self._metadata()
        names = self.metadata.get("channel_names") or []
        if len(names) != self.channels:
            names = [f"ch{c}" for c in range(self.channels)]
        self.channel_names = list(names)

    def _size(self, fn_name):
        out = ctypes.c_size_t()
        self.library.check(getattr(self._lib, fn_name)(self._handle, ctypes.byref(out)),
                           f"Reading {fn_name}")
        return int(out.value)

    def _metadata(self):
        needed = ctypes.c_size_t()
        self.library.check(self._lib.adgan_model_metadata_json(self._handle, None, 0, ctypes.byref(needed)),
                           "Reading the model metadata")
        buf = ctypes.create_string_buffer(needed.value)
        self.library.check(self._lib.adgan_model_metadata_json(self._handle, buf, len(buf),
                                                               ctypes.byref(needed)),
                           "Reading the model metadata")
        return json.loads(buf.value.decode("utf-8"))

    @property
    def threshold(self):
        return self.calibration["threshold"]

    def describe(self):
        """One line for the panel."""
        names = ", ".join(self.channel_names)
        return (f"{self.path.name}: {self.channels} channel(s) ({names}), slice axis "
                f"{self.slice_axis}, threshold {self.threshold:.3g}, on {self.device_name}")

    def close(self):
        handle, self._handle = getattr(self, "_handle", None), None
        if handle is not None and handle.value:
            self._lib.adgan_model_free(handle)

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _check_open(self):
        if self._handle is None or not self._handle.value:
            raise AdganError("The model was closed.")

    def check_channel_count(self, n):
        if n != self.channels:
            names = ", ".join(self.channel_names)
            raise AdganError(
                f"The model {self.path.name} needs {self.channels} input volume(s) ({names}), "
                f"but {n} {'was' if n == 1 else 'were'} given."
            )

    def _progress(self, progress):
        """Wrap a Python progress callable for the C ABI. The callable gets
        (stage_name, iteration, total, critic_loss, generator_loss) and returns
        True to cancel. Exceptions in it cancel the call and are re-raised."""
        errors = []
        if progress is None:
            return _NULL_PROGRESS, errors

        def trampoline(_user, stage, iteration, total, critic_loss, generator_loss):
            try:
                name = STAGES[stage] if 0 <= stage < len(STAGES) else str(stage)
                return 1 if progress(name, int(iteration), int(total), critic_loss, generator_loss) else 0
            except BaseException as e:  # never let an exception unwind into Rust
                errors.append(e)
                return 1

        return PROGRESS_FN(trampoline), errors

    def score(self, channels, mask=None, stride=8, slice_axis=-1, progress=None):
        """Anomaly map (float32, shape of the inputs) of one case.

        ``channels``: one array per model channel, in the model's order, each
        ``[k, j, i]``; ``mask``: brain mask of the same shape (non-zero = brain)
        or None (the non-zero voxels)."""
        self._check_open()
        if isinstance(channels, np.ndarray) and channels.ndim == 3:
            channels = [channels]
        channels = list(channels)
        self.check_channel_count(len(channels))
        arrays = [_as_float32_volume(a, f"Input volume {c + 1} ({self.channel_names[c]})")
                  for c, a in enumerate(channels)]
        shape = arrays[0].shape
        for c, a in enumerate(arrays[1:], start=1):
            if a.shape != shape:
                raise AdganError(
                    f"Input volume {c + 1} ({self.channel_names[c]}) has {a.shape[::-1]} voxels "
                    f"(i, j, k) but input volume 1 has {shape[::-1]}: all channels must share one grid."
                )
        mask_ptr = None
        if mask is not None:
            m = np.asarray(mask)
            if m.shape != shape:
                raise AdganError(
                    f"The brain mask has {m.shape[::-1]} voxels (i, j, k) but the input has "
                    f"{shape[::-1]}: it must be on the input's grid."
                )
            mask_arr = np.ascontiguousarray(m != 0, dtype=np.uint8)
            mask_ptr = mask_arr.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8))
        nz, ny, nx = shape
        out = np.zeros(shape, dtype=np.float32)
        ptrs = (ctypes.POINTER(ctypes.c_float) * len(arrays))(
            *[a.ctypes.data_as(ctypes.POINTER(ctypes.c_float)) for a in arrays])
        callback, errors = self._progress(progress)
        status = self._lib.adgan_score_volume(
            self._handle, ptrs, len(arrays), nx, ny, nz, mask_ptr, int(stride), int(slice_axis),
            out.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), callback, None)
        if errors:
            raise errors[0]
        self.library.check(status, "Scoring")
        return out

    def score_file(self, channel_paths, out_path, mask_path=None, stride=8, progress=None):
        """Score NIfTI files, writing the map as NIfTI (as ``adgan score`` does)."""
        self._check_open()
        if isinstance(channel_paths, (str, os.PathLike)):
            channel_paths = [channel_paths]
        paths = [_encode_path(p) for p in channel_paths]
        self.check_channel_count(len(paths))
        arr = (ctypes.c_char_p * len(paths))(*paths)
        callback, errors = self._progress(progress)
        status = self._lib.adgan_score_file(
            self._handle, arr, len(paths), _encode_path(mask_path) if mask_path else None,
            _encode_path(out_path), int(stride), callback, None)
        if errors:
            raise errors[0]
        self.library.check(status, "Scoring")
        return Path(out_path)
