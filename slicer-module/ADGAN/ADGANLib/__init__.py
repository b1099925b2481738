"""ADGANLib: the adGAN Slicer module's logic that needs no Slicer.

Plain Python and numpy: loading libadgan with ctypes (:mod:`.native`),
finding it and the ``adgan`` program (:mod:`.locate`), volume geometry
(:mod:`.geometry`) and NIfTI files (:mod:`.nifti`), running training in its
own process (:mod:`.process`), scoring on a worker thread (:mod:`.jobs`),
progress text (:mod:`.progress`), anomaly-map thresholds (:mod:`.maps`) and
the parameter-node schema (:mod:`.parameters`).
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
from .process import PRESETS, JsonLinesProcess, TrainingProcess, TrainOptions, start_training
from .progress import ProgressTracker, describe

__all__ = [
    "AdganError",
    "BinaryNotFoundError",
    "CancelledError",
    "JsonLinesProcess",
    "Library",
    "LibraryNotFoundError",
    "Model",
    "PRESETS",
    "ProgressTracker",
    "ScoreJob",
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
