"""Just enough of Slicer's Python API (slicer, slicer.util, qt, vtk) to run
ADGAN.py's logic class outside Slicer. It checks the module's own wiring
(names, data flow, geometry handling) with numpy-backed nodes; it cannot
check Slicer itself: the module's ScriptedLoadableModuleTest does that in
Slicer (see slicer-module/README.md)."""

import contextlib
import sys
import types
import unittest

import numpy as np


class Matrix4x4:
    def __init__(self):
        self.a = np.eye(4)

    def GetElement(self, i, j):
        return float(self.a[i, j])

    def SetElement(self, i, j, v):
        self.a[i, j] = v

    def DeepCopy(self, other):
        self.a = other.a.copy()


class ImageData:
    def __init__(self, array):
        self.array = array


class Display:
    """Records every call (colour table, window/level, thresholds)."""

    def __init__(self):
        self.calls = {}

    def __getattr__(self, name):
        def record(*args):
            self.calls[name] = args

        return record


class Node:
    CLASSES = ("vtkMRMLNode",)

    def __init__(self, name=""):
        self.name = name
        self.id = None
        self.transform_id = None
        self.display = None

    def GetName(self):
        return self.name

    def GetID(self):
        return self.id

    def IsA(self, cls):
        return cls in self.CLASSES

    def GetTransformNodeID(self):
        return self.transform_id

    def SetAndObserveTransformNodeID(self, tid):
        self.transform_id = tid

    def CreateDefaultDisplayNodes(self):
        if self.display is None:
            self.display = Display()

    def GetDisplayNode(self):
        return self.display


class VolumeNode(Node):
    CLASSES = ("vtkMRMLNode", "vtkMRMLVolumeNode", "vtkMRMLScalarVolumeNode")

    def __init__(self, name="", array=None, ijk_to_ras=None):
        super().__init__(name)
        self.image = None if array is None else ImageData(np.ascontiguousarray(array))
        self.ijk_to_ras = np.eye(4) if ijk_to_ras is None else np.asarray(ijk_to_ras, float).copy()

    def GetImageData(self):
        return self.image

    def GetIJKToRASMatrix(self, m):
        m.a = self.ijk_to_ras.copy()

    def SetIJKToRASMatrix(self, m):
        self.ijk_to_ras = m.a.copy()

    def GetSpacing(self):
        return tuple(float(v) for v in np.linalg.norm(self.ijk_to_ras[:3, :3], axis=0))

    def GetOrigin(self):
        return tuple(float(v) for v in self.ijk_to_ras[:3, 3])


class LabelMapVolumeNode(VolumeNode):
    CLASSES = VolumeNode.CLASSES + ("vtkMRMLLabelMapVolumeNode",)


class Segmentation:
    def __init__(self):
        self.segments = {}

    def GetSegment(self, sid):
        return self.segments.get(sid)

    def AddEmptySegment(self, sid, name, color):
        self.segments[sid] = {"name": name, "color": color, "mask": None}
        return sid


class SegmentationNode(Node):
    CLASSES = ("vtkMRMLNode", "vtkMRMLSegmentationNode")

    def __init__(self, name=""):
        super().__init__(name)
        self.segmentation = Segmentation()
        self.reference = None

    def GetSegmentation(self):
        return self.segmentation

    def SetReferenceImageGeometryParameterFromVolumeNode(self, node):
        self.reference = node


class Scene:
    CLASSES = {"vtkMRMLScalarVolumeNode": VolumeNode, "vtkMRMLLabelMapVolumeNode": LabelMapVolumeNode,
               "vtkMRMLSegmentationNode": SegmentationNode}
    COLOR_IDS = {"vtkMRMLColorTableNodeFileColdToHotRainbow.txt"}

    def __init__(self):
        self.nodes = {}
        self.count = 0

    def AddNode(self, node):
        self.count += 1
        node.id = f"{type(node).__name__}{self.count}"
        self.nodes[node.id] = node
        return node

    def AddNewNodeByClass(self, cls, name=""):
        return self.AddNode(self.CLASSES[cls](name))

    def GenerateUniqueName(self, name):
        return name

    def GetNodeByID(self, nid):
        return self.nodes.get(nid) or (object() if nid in self.COLOR_IDS else None)

    def RemoveNode(self, node):
        self.nodes.pop(node.id, None)

    def GetFirstNodeByClass(self, cls):
        return next((n for n in self.nodes.values() if n.IsA(cls)), None)

    def Clear(self):
        self.nodes.clear()


def install():
    """Put fake slicer/qt/vtk modules in sys.modules; returns a restore function."""
    saved = {k: sys.modules.get(k) for k in ("slicer", "slicer.util", "slicer.ScriptedLoadableModule", "qt",
                                             "vtk", "ADGAN")}
    scene = Scene()
    layers = {}

    util = types.ModuleType("slicer.util")
    util.arrayFromVolume = lambda node: node.GetImageData().array
    util.arrayFromVTKMatrix = lambda m: m.a.copy()

    def vtk_matrix_from_array(a):
        m = Matrix4x4()
        m.a = np.asarray(a, float).copy()
        return m

    util.vtkMatrixFromArray = vtk_matrix_from_array

    def update_volume_from_array(node, array):
        node.image = ImageData(np.ascontiguousarray(array))

    util.updateVolumeFromArray = update_volume_from_array

    def set_layers(background=None, foreground=None, foregroundOpacity=None, **_):
        layers.update(background=background, foreground=foreground, opacity=foregroundOpacity)

    util.setSliceViewerLayers = set_layers

    def update_segment(mask, seg_node, sid, reference):
        seg_node.segmentation.segments[sid]["mask"] = np.array(mask, dtype=np.uint8)

    util.updateSegmentBinaryLabelmapFromArray = update_segment
    util.arrayFromSegmentBinaryLabelmap = lambda seg_node, sid, ref=None: seg_node.segmentation.segments[sid]["mask"]
    util.startupEnvironment = lambda: {"PATH": "/usr/bin:/bin", "FROM_STARTUP_ENVIRONMENT": "1"}

    @contextlib.contextmanager
    def try_with_error_display(message=None, show=True, waitCursor=False):
        yield

    util.tryWithErrorDisplay = try_with_error_display
    util.errorDisplay = lambda *a, **k: None

    class VTKObservationMixin:
        def __init__(self):
            pass

    util.VTKObservationMixin = VTKObservationMixin

    slm = types.ModuleType("slicer.ScriptedLoadableModule")

    class ScriptedLoadableModule:
        def __init__(self, parent):
            self.parent = parent

    class ScriptedLoadableModuleWidget:
        def __init__(self, parent=None):
            self.parent = parent

    class ScriptedLoadableModuleLogic:
        def __init__(self, parent=None):
            pass

    class ScriptedLoadableModuleTest(unittest.TestCase):
        def delayDisplay(self, message, msec=0):
            pass

    for cls in (ScriptedLoadableModule, ScriptedLoadableModuleWidget, ScriptedLoadableModuleLogic,
                ScriptedLoadableModuleTest):
        setattr(slm, cls.__name__, cls)

    slicer = types.ModuleType("slicer")
    slicer.util = util
    slicer.ScriptedLoadableModule = slm
    slicer.mrmlScene = scene
    slicer.app = types.SimpleNamespace(processEvents=lambda: None, slicerHome=None, layoutManager=lambda: None)
    slicer.modules = types.SimpleNamespace()

    qt = types.ModuleType("qt")

    class QTimer:
        @staticmethod
        def singleShot(msec, fn):
            fn()

    qt.QTimer = QTimer

    vtk = types.ModuleType("vtk")
    vtk.vtkMatrix4x4 = Matrix4x4
    vtk.vtkCommand = types.SimpleNamespace(ModifiedEvent=33)

    sys.modules.update({"slicer": slicer, "slicer.util": util, "slicer.ScriptedLoadableModule": slm,
                        "qt": qt, "vtk": vtk})
    sys.modules.pop("ADGAN", None)

    def restore():
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v

    return scene, layers, restore
