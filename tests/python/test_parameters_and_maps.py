"""Parameter-node schema and anomaly-map helpers (no Slicer needed)."""

import math
import re
import subprocess

import numpy as np
import pytest
from ADGANLib import maps
from ADGANLib import parameters as P
from ADGANLib.process import PRESETS


class FakeParameterNode:
    """The part of vtkMRMLScriptedModuleNode the module uses."""

    def __init__(self):
        self.params, self.refs = {}, {}

    def GetParameter(self, name):
        return self.params.get(name, "")

    def SetParameter(self, name, value):
        self.params[name] = value

    def SetNodeReferenceID(self, role, node_id):
        self.refs[role] = node_id

    def GetNodeReferenceID(self, role):
        return self.refs.get(role)


def test_presets_mirror_the_program(binary_path):
    """The panel shows the budgets `adgan train --preset` applies."""
    help_text = subprocess.run([str(binary_path), "train", "--help"], capture_output=True,
                               text=True, check=True).stdout
    flat = " ".join(help_text.split())
    for name, p in PRESETS.items():
        said = re.search(rf"{name} \(N=(\d+), M=(\d+), batch (\d+)", flat)
        assert said, f"adgan train --help does not state the {name} preset"
        assert tuple(map(int, said.groups())) == (
            p["phase1_iterations"], p["phase2_iterations"], p["batch_size"])


def test_defaults_and_round_trip():
    node = FakeParameterNode()
    node.SetParameter("Stride", "4")
    P.set_defaults(node)
    values = P.read_all(node)
    assert values["Stride"] == 4  # kept
    assert values["Device"] == "auto" and values["TrainPreset"] == "quick"
    assert values["TrainPhase1Iterations"] == PRESETS["quick"]["phase1_iterations"]
    assert math.isnan(values["Threshold"])
    P.set_value(node, "Threshold", 2.5)
    P.set_value(node, "TrainAlpha", 0.25)
    P.set_value(node, "ModelPath", "/x/y.adgan")
    saved = dict(node.params)  # what a scene file keeps
    restored = FakeParameterNode()
    restored.params = saved
    assert P.read_all(restored) == {**values, "Threshold": 2.5, "TrainAlpha": 0.25, "ModelPath": "/x/y.adgan"}


def test_invalid_text_falls_back_to_default():
    node = FakeParameterNode()
    node.SetParameter("Stride", "eight")
    node.SetParameter("Device", "tpu")
    node.SetParameter("TrainSliceAxis", "7")
    assert P.get(node, "Stride") == 8
    assert P.get(node, "Device") == "auto"
    assert P.get(node, "TrainSliceAxis") == 2


def test_roles_are_distinct():
    roles = {P.input_volume_role(c) for c in range(4)}
    roles |= {P.train_volume_role(r, c) for r in range(12) for c in range(4)}
    roles |= {P.train_label_role(r) for r in range(12)}
    roles |= {P.BRAIN_MASK, P.OUTPUT_MAP, P.OUTPUT_SEGMENTATION}
    assert len(roles) == 4 + 48 + 12 + 3


def test_anomaly_mask_and_stats():
    m = np.zeros((2, 3, 4), np.float32)
    m[0, 0, 0] = 5.0
    m[1, 2, 3] = 3.0
    m[1, 1, 1] = -1.0
    assert maps.anomaly_mask(m, 3.0).sum() == 2
    assert maps.anomaly_mask(m, -2.0).sum() == 3  # never the outside (0) voxels
    s = maps.region_stats(m, 3.0, voxel_volume_mm3=2.0)
    assert s == {"voxels": 2, "volume_ml": 0.004, "max_score": 5.0, "threshold": 3.0}


def test_slider_and_display_ranges():
    m = np.zeros((2, 2, 2), np.float32)
    m[0, 0, 0], m[1, 1, 1] = -2.3, 7.2
    lo, hi, step = maps.slider_range(m, 3.3)
    assert lo <= -2.3 and hi >= 7.2 and lo <= 3.3 <= hi and 0 < step <= (hi - lo) / 50
    lo, hi, _ = maps.slider_range(m, 12.0)
    assert hi >= 12.0
    below, wmin, wmax = maps.display_range(m, 3.3)
    assert below == 1.0 and wmin == 1.0 and wmax == pytest.approx(7.2)
    assert maps.display_range(m, 0.5)[0] == 0.5
