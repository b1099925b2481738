"""The module's parameter-node schema: names, defaults and text conversion.

A Slicer parameter node (``vtkMRMLScriptedModuleNode``) stores strings
(``SetParameter``/``GetParameter``) and node references
(``SetNodeReferenceID``/``GetNodeReference``); the scene saves and restores
both. Anything with those methods works here, so this is testable without
Slicer.
"""

import re
from dataclasses import dataclass

from .process import PRESETS


@dataclass(frozen=True)
class Param:
    name: str
    kind: type
    default: object
    choices: tuple = ()


def device(text):
    """A device name adgan takes: auto, cpu, cuda or cuda:N (else ValueError)."""
    text = str(text).strip()
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", text):
        raise ValueError(f"not a device: {text!r}")
    return text


PARAMETERS = [
    # Score panel
    Param("ModelPath", str, ""),
    Param("Device", device, "auto"),
    Param("Stride", int, 8),
    Param("Threshold", float, float("nan")),  # nan: the model's threshold
    # Train panel
    Param("TrainChannelCount", int, 1),
    Param("TrainChannelNames", str, ""),
    Param("TrainCaseCount", int, 1),
    Param("TrainPreset", str, "quick", tuple(PRESETS)),
    Param("TrainPhase1Iterations", int, PRESETS["quick"]["phase1_iterations"]),
    Param("TrainPhase2Iterations", int, PRESETS["quick"]["phase2_iterations"]),
    Param("TrainBatchSize", int, PRESETS["quick"]["batch_size"]),
    Param("TrainAlpha", float, 1.0),
    Param("TrainCriticInit", str, "fine-tune", ("fine-tune", "reset")),
    Param("TrainSliceAxis", int, 2, (0, 1, 2)),
    Param("TrainMaxPatches", int, 0),
    Param("TrainSeed", int, 0),
    Param("TrainDevice", device, "auto"),
    Param("TrainOutputModel", str, ""),
]

BY_NAME = {p.name: p for p in PARAMETERS}

# Node reference roles
BRAIN_MASK = "BrainMask"
OUTPUT_MAP = "OutputMap"
OUTPUT_SEGMENTATION = "OutputSegmentation"


def input_volume_role(channel):
    return f"InputVolume{channel}"


def train_volume_role(case, channel):
    return f"TrainVolume{case}_{channel}"


def train_label_role(case):
    return f"TrainLabel{case}"


def to_text(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def from_text(param, text):
    """Parse a stored string; the default for empty or invalid text."""
    if text is None or text == "":
        return param.default
    try:
        if param.kind is bool:
            return text.strip().lower() in ("1", "true", "yes", "on")
        value = param.kind(text)
    except (TypeError, ValueError):
        return param.default
    if param.choices and value not in param.choices:
        return param.default
    return value


def set_defaults(node):
    """Give every parameter the node lacks its default (keeps set ones)."""
    for p in PARAMETERS:
        if not node.GetParameter(p.name):
            node.SetParameter(p.name, to_text(p.default))


def get(node, name):
    return from_text(BY_NAME[name], node.GetParameter(name))


def set_value(node, name, value):
    param = BY_NAME[name]
    node.SetParameter(name, to_text(param.kind(value)))


def read_all(node):
    return {p.name: from_text(p, node.GetParameter(p.name)) for p in PARAMETERS}
