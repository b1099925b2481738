"""ADGANLib: the adGAN Slicer module's logic that needs no Slicer.

Plain Python and numpy: running ``adgan`` in its own process - training,
scoring, model information, the device list (:mod:`.process`; what the
Slicer panel uses), finding the program (:mod:`.locate`), volume geometry
(:mod:`.geometry`) and NIfTI files (:mod:`.nifti`), progress text
(:mod:`.progress`), anomaly-map thresholds (:mod:`.maps`) and the
parameter-node schema (:mod:`.parameters`). For scripts outside Slicer,
libadgan through ctypes (:mod:`.native`) and scoring on a worker thread
(:mod:`.jobs`); the panel never loads the library.
"""

from .errors import (
    AdganError,
    BinaryNotFoundError,
    CancelledError,
    LibraryNotFoundError,
)
from .geometry import VolumeGeometry, lps_to_ras, ras_to_lps
from .jobs import ScoreJob
from .locate import find_binary, find_library
from .native import Library, Model, load_library
from .process import (
    PRESETS,
    JsonDocumentProcess,
    JsonLinesProcess,
    ModelInfo,
    ScoreOptions,
    ScoreProcess,
    TrainingProcess,
    TrainOptions,
    start_training,
)
from .progress import ProgressTracker, describe

__all__ = [
    "AdganError",
    "BinaryNotFoundError",
    "CancelledError",
    "JsonDocumentProcess",
    "JsonLinesProcess",
    "Library",
    "LibraryNotFoundError",
    "Model",
    "ModelInfo",
    "PRESETS",
    "ProgressTracker",
    "ScoreJob",
    "ScoreOptions",
    "ScoreProcess",
    "TrainOptions",
    "TrainingProcess",
    "VolumeGeometry",
    "describe",
    "find_binary",
    "find_library",
    "load_library",
    "lps_to_ras",
    "ras_to_lps",
    "start_training",
]
