"""Anomaly maps: thresholding into a region, slider and display ranges.

A map holds each brain voxel's anomaly score in standard deviations of the
normal calibration patches (about 0 for normal tissue; the model's threshold
marks "anomalous"), and exactly 0 outside the brain.
"""

import math

import numpy as np


def anomaly_mask(score_map, threshold):
    """uint8 mask (same shape) of voxels at or above ``threshold``, inside the
    brain (the map's non-zero voxels)."""
    m = np.asarray(score_map)
    return ((m >= threshold) & (m != 0)).astype(np.uint8)


def region_stats(score_map, threshold, voxel_volume_mm3=1.0):
    mask = anomaly_mask(score_map, threshold)
    n = int(mask.sum())
    m = np.asarray(score_map)
    return {
        "voxels": n,
        "volume_ml": n * float(voxel_volume_mm3) / 1000.0,
        "max_score": float(m.max()) if m.size else 0.0,
        "threshold": float(threshold),
    }


def slider_range(score_map, threshold):
    """(minimum, maximum, step) for a threshold slider: covers the map's
    scores and the model's threshold."""
    m = np.asarray(score_map)
    brain = m[m != 0]
    lo = float(brain.min()) if brain.size else 0.0
    hi = float(brain.max()) if brain.size else 1.0
    lo = math.floor(min(lo, 0.0, threshold))
    hi = math.ceil(max(hi, threshold, lo + 1.0))
    step = 10 ** math.floor(math.log10(max(hi - lo, 1e-6)) - 2)
    return float(lo), float(hi), float(step)


def display_range(score_map, threshold):
    """(transparent_below, window_min, window_max) for showing the map over
    its input: scores below one standard deviation (or the threshold, when
    lower) are transparent; the colour scale runs up to the highest score."""
    m = np.asarray(score_map)
    hi = float(m.max()) if m.size else 1.0
    below = min(1.0, float(threshold)) if threshold > 0 else 1.0
    return below, below, max(hi, float(threshold), below + 1.0)
