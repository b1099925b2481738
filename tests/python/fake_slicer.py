"""Slicer for the module's tests: the REAL MRML library behind a fake
``slicer`` module.

PyPI's ``slicer-core`` (installed by scripts/bootstrap.sh) gives a real
``vtkMRMLScene``, real volume, label map, segmentation and subject hierarchy
nodes, ``vtkSlicerSegmentationsModuleLogic``, ``vtkSlicerVolumesLogic`` and
Slicer's own ``slicer/util.py``; it has no Qt and no application. Its package
is also named ``slicer``, so the two are put together deliberately here:

- the real package is imported first (its classes, and ``slicer.util``);
- a fake module object then takes the name ``slicer`` in ``sys.modules``. It
  carries every public name of the real package (all vtkMRML*/vtkSlicer*
  classes), plus what Slicer's application provides and slicer-core lacks:
  ``mrmlScene`` (a real scene), ``modules.<name>.logic()`` (real logic
  objects on that scene), ``app`` (a stand-in), ``util`` (the real
  slicer.util functions, with its GUI functions replaced by recorders),
  ``ScriptedLoadableModule`` (the base classes) and ``qMRMLNodeComboBox``;
- ``qt`` and ``ctk`` are fakes that behave like PythonQt: properties as
  attributes (``spin.value = 3`` emits ``valueChanged(int)``), signals
  connected by their signature string, a slot given only as many arguments
  as it takes.

The real util functions ``import slicer`` at call time, so they find the fake
module and its real scene: ``slicer.util.updateSegmentBinaryLabelmapFromArray``
runs the real segmentations logic on the real scene.

Subject hierarchy: in Slicer, Qt plugins create an item for every data node
added to the scene; the fake does the same with a scene observer.
"""

import contextlib
import inspect
import os
import sys
import types
import unittest
import xml.etree.ElementTree as ET

_real = None


def real_slicer():
    """The slicer-core package (imported once, kept out of sys.modules)."""
    global _real
    if _real is None:
        saved = {k: sys.modules.pop(k) for k in list(sys.modules) if k == "slicer" or k.startswith("slicer.")}
        try:
            import slicer as package  # the real one: nothing named slicer is in sys.modules now
            import slicer.util as util

            _real = types.SimpleNamespace(package=package, util=util,
                                          modules={k: sys.modules[k] for k in list(sys.modules)
                                                   if k == "slicer" or k.startswith("slicer.")})
        finally:
            for k in list(sys.modules):
                if k == "slicer" or k.startswith("slicer."):
                    del sys.modules[k]
            sys.modules.update(saved)
    return _real


# -- PythonQt-like widgets ---------------------------------------------------


def _call_slot(slot, args):
    """PythonQt calls a slot with as many of the signal's arguments as it takes."""
    try:
        sig = inspect.signature(slot)
    except (TypeError, ValueError):
        return slot(*args)
    params = list(sig.parameters.values())
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return slot(*args)
    n = len([p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)])
    return slot(*args[:n])


class QObject:
    def __init__(self, name=""):
        object.__setattr__(self, "_slots", {})
        object.__setattr__(self, "_blocked", False)
        object.__setattr__(self, "objectName", name)

    def connect(self, signal, slot):
        self._slots.setdefault(signal.replace(" ", ""), []).append(slot)
        return True

    def disconnect(self, signal, slot=None):
        signal = signal.replace(" ", "")
        if slot is None:
            self._slots.pop(signal, None)
        elif slot in self._slots.get(signal, []):
            self._slots[signal].remove(slot)

    def emit(self, signal, *args):
        if self._blocked:
            return
        for slot in list(self._slots.get(signal, [])):
            _call_slot(slot, args)

    def blockSignals(self, block):
        old = self._blocked
        object.__setattr__(self, "_blocked", bool(block))
        return old

    def signalsBlocked(self):
        return self._blocked

    def deleteLater(self):
        pass


class QWidget(QObject):
    def __init__(self, name=""):
        super().__init__(name)
        self.enabled = True
        self.visible = True
        self.toolTip = ""
        self._layout = None

    def show(self):
        self.visible = True

    def hide(self):
        self.visible = False

    def setVisible(self, v):
        self.visible = bool(v)

    def setEnabled(self, v):
        self.enabled = bool(v)

    def layout(self):
        return self._layout

    def setMRMLScene(self, scene):
        self.mrmlScene = scene


class QLabel(QWidget):
    def __init__(self, text="", name=""):
        super().__init__(name)
        self.text = text
        self.wordWrap = False
        self.pixmap = None

    def setText(self, t):
        self.text = t

    def setPixmap(self, pixmap):
        self.pixmap = pixmap

    def clear(self):
        self.text, self.pixmap = "", None


class QPushButton(QWidget):
    def __init__(self, name=""):
        super().__init__(name)
        self.text = ""
        self.checked = False

    def click(self):
        if self.enabled:
            self.emit("clicked(bool)", False)
            self.emit("clicked()")


class QLineEdit(QWidget):
    def __init__(self, name=""):
        super().__init__(name)
        self.text = ""
        self.placeholderText = ""

    def finishEditing(self, text):
        self.text = text
        self.emit("editingFinished()")


class _Valued(QWidget):
    """Spin boxes and sliders: setting ``value`` clamps and emits valueChanged."""

    SIGNAL = "valueChanged(int)"
    KIND = int

    def __init__(self, name=""):
        super().__init__(name)
        object.__setattr__(self, "_value", self.KIND(0))
        self.minimum = self.KIND(0)
        self.maximum = self.KIND(99)
        self.singleStep = self.KIND(1)
        self.decimals = 2

    @property
    def value(self):
        return self._value

    @value.setter
    def value(self, v):
        v = self.KIND(min(max(self.KIND(v), self.minimum), self.maximum))
        if v != self._value:
            object.__setattr__(self, "_value", v)
            self.emit(self.SIGNAL, v)

    def setValue(self, v):
        self.value = v


class QSpinBox(_Valued):
    pass


class QDoubleSpinBox(_Valued):
    SIGNAL = "valueChanged(double)"
    KIND = float


class ctkSliderWidget(QDoubleSpinBox):
    pass


class QComboBox(QWidget):
    def __init__(self, name=""):
        super().__init__(name)
        self._items = []
        object.__setattr__(self, "_index", -1)

    def addItem(self, text, data=None):
        self._items.append((text, data))
        if self._index < 0:
            self.setCurrentIndex(0)

    def clear(self):
        self._items = []
        object.__setattr__(self, "_index", -1)
        self.emit("currentIndexChanged(int)", -1)

    @property
    def count(self):
        return len(self._items)

    def itemText(self, i):
        return self._items[i][0]

    def itemData(self, i):
        return self._items[i][1]

    def findData(self, data):
        return next((i for i, (_, d) in enumerate(self._items) if d == data), -1)

    def findText(self, text):
        return next((i for i, (t, _) in enumerate(self._items) if t == text), -1)

    @property
    def currentIndex(self):
        return self._index

    @currentIndex.setter
    def currentIndex(self, i):
        self.setCurrentIndex(i)

    def setCurrentIndex(self, i):
        i = i if -1 <= i < len(self._items) else -1
        if i != self._index:
            object.__setattr__(self, "_index", i)
            self.emit("currentIndexChanged(int)", i)

    @property
    def currentData(self):
        return self._items[self._index][1] if self._index >= 0 else None

    @property
    def currentText(self):
        return self._items[self._index][0] if self._index >= 0 else ""


class ctkPathLineEdit(QWidget):
    """currentPath (emits currentPathChanged(QString)); addCurrentPathToHistory
    keeps the history in QSettings under settingKey, as ctk does."""

    def __init__(self, name=""):
        super().__init__(name)
        object.__setattr__(self, "_path", "")
        self.settingKey = ""
        self.filters = 0
        self.nameFilters = []
        self.history = []

    @property
    def currentPath(self):
        return self._path

    @currentPath.setter
    def currentPath(self, p):
        p = p or ""
        if p != self._path:
            object.__setattr__(self, "_path", p)
            self.emit("currentPathChanged(QString)", p)

    def setCurrentPath(self, p):
        self.currentPath = p

    def addCurrentPathToHistory(self):
        if self._path and self._path not in self.history:
            self.history.insert(0, self._path)
        if self.settingKey:
            QSettings().setValue(self.settingKey, list(self.history))


class ctkDirectoryButton(QWidget):
    def __init__(self, name=""):
        super().__init__(name)
        object.__setattr__(self, "_dir", "")

    @property
    def directory(self):
        return self._dir

    @directory.setter
    def directory(self, d):
        if d != self._dir:
            object.__setattr__(self, "_dir", d)
            self.emit("directoryChanged(QString)", d)


class QProgressBar(QWidget):
    def __init__(self, name=""):
        super().__init__(name)
        self.value = 0
        self.format = "%p%"
        self.minimum, self.maximum = 0, 100


class QPlainTextEdit(QWidget):
    def __init__(self, name=""):
        super().__init__(name)
        self.lines = []

    def appendPlainText(self, text):
        self.lines.append(text)

    def toPlainText(self):
        return "\n".join(self.lines)


class QFormLayout(QObject):
    def __init__(self, name=""):
        super().__init__(name)
        self.rows = []

    def rowCount(self):
        return len(self.rows)

    def addRow(self, a, b=None):
        self.rows.append((a, b))

    def removeRow(self, i):
        self.rows.pop(i)


class _Header:
    def setStretchLastSection(self, v):
        pass

    def setVisible(self, v):
        pass


class QTableWidget(QWidget):
    def __init__(self, name=""):
        super().__init__(name)
        self.rowCount = 0
        self.columnCount = 0
        self.cells = {}
        self.headers = []
        self._current = -1

    def setRowCount(self, n):
        self.cells = {k: v for k, v in self.cells.items() if k[0] < n}
        self.rowCount = n

    def setColumnCount(self, n):
        self.cells = {k: v for k, v in self.cells.items() if k[1] < n}
        self.columnCount = n

    def setHorizontalHeaderLabels(self, labels):
        self.headers = list(labels)

    def setCellWidget(self, r, c, w):
        self.cells[(r, c)] = w

    def cellWidget(self, r, c):
        return self.cells.get((r, c))

    def horizontalHeader(self):
        return _Header()

    verticalHeader = horizontalHeader

    def setSelectionBehavior(self, b):
        pass

    def resizeColumnsToContents(self):
        pass

    def currentRow(self):
        return self._current


class qMRMLNodeComboBox(QWidget):
    """Lists the scene's nodes of ``nodeTypes`` (exact classes unless
    showChildNodeTypes); setCurrentNode of a node it does not list selects
    none, as the real combo box (the node is not in its model)."""

    def __init__(self, name=""):
        super().__init__(name)
        self.nodeTypes = []
        self.showChildNodeTypes = True
        self.noneEnabled = False
        self.noneDisplay = ""
        self.addEnabled = self.removeEnabled = self.renameEnabled = False
        self.baseName = ""
        self.mrmlScene = None
        object.__setattr__(self, "_node", None)

    def accepts(self, node):
        if node is None:
            return False
        if self.showChildNodeTypes:
            return any(node.IsA(t) for t in self.nodeTypes)
        return node.GetClassName() in self.nodeTypes

    def currentNode(self):
        node = self._node
        scene = self.mrmlScene or node.GetScene() if node is not None else None
        if node is not None and (scene is None or scene.GetNodeByID(node.GetID()) is not node):
            return None  # removed from the scene
        return node

    @property
    def currentNodeID(self):
        node = self.currentNode()
        return node.GetID() if node is not None else None

    def setCurrentNode(self, node):
        node = node if self.accepts(node) else None
        if node is not self._node:
            object.__setattr__(self, "_node", node)
            self.emit("currentNodeChanged(vtkMRMLNode*)", node)
            self.emit("currentNodeChanged(bool)", node is not None)

    def setCurrentNodeID(self, nid):
        self.setCurrentNode(self.mrmlScene.GetNodeByID(nid) if nid and self.mrmlScene else None)

    def nodes(self):
        if self.mrmlScene is None:
            return []
        out = []
        for i in range(self.mrmlScene.GetNumberOfNodes()):
            n = self.mrmlScene.GetNthNode(i)
            if self.accepts(n):
                out.append(n)
        return out


class ctkCollapsibleButton(QWidget):
    def __init__(self, name=""):
        super().__init__(name)
        self.collapsed = False
        self.text = ""


class QTabWidget(QWidget):
    def __init__(self, name=""):
        super().__init__(name)
        self.currentIndex = 0


class qMRMLWidget(QWidget):
    pass


WIDGETS = {cls.__name__: cls for cls in (
    QWidget, QLabel, QPushButton, QLineEdit, QSpinBox, QDoubleSpinBox, ctkSliderWidget, QComboBox,
    ctkPathLineEdit, ctkDirectoryButton, QProgressBar, QPlainTextEdit, QTableWidget, qMRMLNodeComboBox,
    ctkCollapsibleButton, QTabWidget, qMRMLWidget)}


def _property_value(prop):
    for child in prop:
        if child.tag == "string":
            return child.text or ""
        if child.tag == "bool":
            return child.text == "true"
        if child.tag == "number":
            return float(child.text) if "." in child.text else int(child.text)
        if child.tag == "double":
            return float(child.text)
        if child.tag == "stringlist":
            return [s.text or "" for s in child.findall("string")]
        if child.tag in ("set", "enum"):
            return child.text
    return None


def load_ui(path):
    """The widgets of a Qt Designer file as fakes, with their properties."""
    root = ET.parse(path).getroot()
    widgets = {}
    for w in root.iter("widget"):
        cls = WIDGETS.get(w.get("class"))
        if cls is None:
            raise AssertionError(f"the fake has no {w.get('class')} (widget {w.get('name')})")
        obj = cls(w.get("name"))
        # Properties in the order Designer writes them; ranges before values.
        props = {p.get("name"): _property_value(p) for p in w.findall("property")}
        for key in ("minimum", "maximum", "singleStep", "decimals"):
            if key in props and props[key] is not None:
                setattr(obj, key, obj.KIND(props[key]) if hasattr(obj, "KIND") else props[key])
        for key, value in props.items():
            if key in ("geometry", "textInteractionFlags", "minimum", "maximum", "singleStep", "decimals"):
                continue
            if value is not None:
                setattr(obj, key, value)
        layout = w.find("layout")
        if layout is not None and layout.get("class") == "QFormLayout":
            obj._layout = QFormLayout(layout.get("name"))
        widgets[w.get("name")] = obj
    return widgets


# -- qt and ctk --------------------------------------------------------------


class QSettings:
    store = {}

    def value(self, key, default=None):
        return self.store.get(key, default)

    def setValue(self, key, value):
        self.store[key] = value

    def contains(self, key):
        return key in self.store

    def remove(self, key):
        self.store.pop(key, None)


class QTimer(QObject):
    """Fires only when the test says so (``fire()``), or ``singleShot``
    callbacks when ``run_single_shots()`` runs them."""

    single_shots = []

    def __init__(self):
        super().__init__()
        self.interval = 0
        self.active = False
        self.singleShot_ = False

    def setInterval(self, ms):
        self.interval = ms

    def setSingleShot(self, v):
        self.singleShot_ = bool(v)

    def start(self, ms=None):
        self.active = True

    def stop(self):
        self.active = False

    def isActive(self):
        return self.active

    def fire(self):
        if self.active:
            if self.singleShot_:
                self.active = False
            self.emit("timeout()")

    @staticmethod
    def singleShot(msec, fn):
        QTimer.single_shots.append((msec, fn))


class QPixmap:
    def __init__(self, path=""):
        self.path = path

    def isNull(self):
        return not (self.path and os.path.isfile(self.path))

    def scaledToWidth(self, w, mode=None):
        return self


class QAbstractItemView:
    SelectRows = 1


class QMessageBox:
    Ok, Cancel, Yes, No = 0x400, 0x400000, 0x4000, 0x10000


class Qt:
    SmoothTransformation = 1
    WaitCursor = 3


class ctkMessageBox(QWidget):
    pass


# -- the fake application ----------------------------------------------------


class App:
    def __init__(self):
        self.slicerHome = None
        self.extensionsInstallPath = None
        self.processed = 0

    def processEvents(self):
        self.processed += 1

    def layoutManager(self):
        return None

    def testingEnabled(self):
        return True

    def startupEnvironment(self):
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "FROM_STARTUP_ENVIRONMENT": "1"}

    def setOverrideCursor(self, cursor):
        pass

    def restoreOverrideCursor(self):
        pass


class Env:
    """What a test may look at or steer: the scene, the dialogs shown, the
    answers confirmation dialogs give."""

    def __init__(self):
        self.errors = []
        self.confirmations = []
        self.confirm_answer = True
        self.ui_widgets = None
        self.reloaded = []


def _module(name, **attrs):
    m = types.ModuleType(name)
    for k, v in attrs.items():
        setattr(m, k, v)
    return m


def install():
    """Put the fake slicer (real MRML), qt and ctk in sys.modules.
    Returns (env, restore)."""
    real = real_slicer()
    import vtk

    names = ["slicer", "slicer.util", "slicer.ScriptedLoadableModule", "qt", "ctk", "ADGAN"]
    saved = {k: sys.modules.get(k) for k in names}
    env = Env()
    QSettings.store = {}
    QTimer.single_shots = []

    scene = real.package.vtkMRMLScene()
    volumes_logic = real.package.vtkSlicerVolumesLogic()
    volumes_logic.SetMRMLScene(scene)
    segmentations_logic = real.package.vtkSlicerSegmentationsModuleLogic()
    segmentations_logic.SetMRMLScene(scene)
    terminologies_logic = real.package.vtkSlicerTerminologiesModuleLogic()
    sh_logic = real.package.vtkSlicerSubjectHierarchyModuleLogic()
    sh_logic.SetMRMLScene(scene)
    sh = real.package.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)

    def on_node_added(caller, event, node=None):
        # What Slicer's subject hierarchy plugins do for each new data node.
        if node is None or not (node.IsA("vtkMRMLVolumeNode") or node.IsA("vtkMRMLSegmentationNode")):
            return
        if node.GetHideFromEditors():
            return
        if not sh.GetItemByDataNode(node):
            sh.CreateItem(sh.GetSceneItemID(), node)

    on_node_added.CallDataType = vtk.VTK_OBJECT  # the added node as call data
    scene.AddObserver(scene.NodeAddedEvent, on_node_added)
    env.scene = scene
    env.subject_hierarchy = sh
    env.terminologies = terminologies_logic
    env._keep = (volumes_logic, segmentations_logic, sh_logic)

    util = _module("slicer.util")
    for k in dir(real.util):
        if not k.startswith("__"):
            setattr(util, k, getattr(real.util, k))

    def error_display(text, windowTitle=None, **kwargs):
        env.errors.append((windowTitle, text))

    def confirm(text, windowTitle=None, **kwargs):
        env.confirmations.append((windowTitle, text))
        return env.confirm_answer

    @contextlib.contextmanager
    def try_with_error_display(message=None, show=True, waitCursor=False):
        # Slicer's: shows the message and the exception, then re-raises.
        try:
            yield
        except Exception as e:
            if show:
                error_display((message + "\n\n" if message else "") + str(e), windowTitle="Error")
            raise

    def load_ui(path):
        env.ui_widgets = globals()["load_ui"](path)
        return env.ui_widgets[next(iter(env.ui_widgets))]

    def child_widget_variables(widget):
        return types.SimpleNamespace(**env.ui_widgets)

    util.errorDisplay = error_display
    util.warningDisplay = error_display
    util.confirmOkCancelDisplay = confirm
    util.confirmYesNoDisplay = confirm
    util.tryWithErrorDisplay = try_with_error_display
    util.loadUI = load_ui
    util.childWidgetVariables = child_widget_variables
    util.startupEnvironment = lambda: App().startupEnvironment()
    util.mainWindow = lambda: None
    util.reloadScriptedModule = lambda name: env.reloaded.append(name)

    slm = _module("slicer.ScriptedLoadableModule")

    class ScriptedLoadableModule:
        def __init__(self, parent):
            self.parent = parent

    class ScriptedLoadableModuleWidget:
        def __init__(self, parent=None):
            self.parent = parent if parent is not None else types.SimpleNamespace(isEntered=True)
            self.moduleName = type(self).__name__[:-len("Widget")]
            self.layout = types.SimpleNamespace(addWidget=lambda w: None, addStretch=lambda *a: None)

        def setup(self):
            pass

        def resourcePath(self, filename):
            module_dir = os.path.dirname(sys.modules[type(self).__module__].__file__)
            return os.path.join(module_dir, "Resources", filename)

        def onReload(self):
            util.reloadScriptedModule(self.moduleName)

    class ScriptedLoadableModuleLogic:
        def __init__(self, parent=None):
            pass

        def getParameterNode(self):
            node = scene.GetSingletonNode("ADGAN", "vtkMRMLScriptedModuleNode")
            if node is None:
                node = real.package.vtkMRMLScriptedModuleNode()
                node.SetSingletonTag("ADGAN")
                node.SetModuleName("ADGAN")
                node = scene.AddNode(node)
            return node

    class ScriptedLoadableModuleTest(unittest.TestCase):
        def delayDisplay(self, message, msec=0):
            pass

    for cls in (ScriptedLoadableModule, ScriptedLoadableModuleWidget, ScriptedLoadableModuleLogic,
                ScriptedLoadableModuleTest):
        setattr(slm, cls.__name__, cls)

    slicer = _module("slicer")
    for k in dir(real.package):
        if not k.startswith("_"):
            setattr(slicer, k, getattr(real.package, k))
    slicer.__path__ = []  # a package, so that "slicer.util" imports resolve to sys.modules
    slicer.util = util
    slicer.ScriptedLoadableModule = slm
    slicer.mrmlScene = scene
    slicer.app = App()
    slicer.qMRMLNodeComboBox = qMRMLNodeComboBox

    def logic_of(obj):
        return types.SimpleNamespace(logic=lambda: obj)

    slicer.modules = types.SimpleNamespace(volumes=logic_of(volumes_logic),
                                           segmentations=logic_of(segmentations_logic),
                                           terminologies=logic_of(terminologies_logic))
    env.app = slicer.app

    qt = _module("qt", QObject=QObject, QWidget=QWidget, QLabel=QLabel, QPushButton=QPushButton,
                 QLineEdit=QLineEdit, QSpinBox=QSpinBox, QDoubleSpinBox=QDoubleSpinBox, QComboBox=QComboBox,
                 QProgressBar=QProgressBar, QPlainTextEdit=QPlainTextEdit, QTableWidget=QTableWidget,
                 QSettings=QSettings, QTimer=QTimer, QPixmap=QPixmap, QAbstractItemView=QAbstractItemView,
                 QMessageBox=QMessageBox, Qt=Qt, QFormLayout=QFormLayout)
    ctk = _module("ctk", ctkPathLineEdit=ctkPathLineEdit, ctkDirectoryButton=ctkDirectoryButton,
                  ctkSliderWidget=ctkSliderWidget, ctkCollapsibleButton=ctkCollapsibleButton,
                  ctkMessageBox=ctkMessageBox)

    sys.modules.update({"slicer": slicer, "slicer.util": util, "slicer.ScriptedLoadableModule": slm,
                        "qt": qt, "ctk": ctk})
    sys.modules.pop("ADGAN", None)

    def restore():
        scene.Clear(1)
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v

    return env, restore
