"""The Slicer module's files without Slicer: the .ui names every widget the
widget class looks up, CMake lists every file, ADGANLib needs only numpy."""

import ast
import re
import struct
import sys
import xml.etree.ElementTree as ET

import pytest
from conftest import MODULE_DIR, REPO

UI = MODULE_DIR / "Resources" / "UI" / "ADGAN.ui"
SCRIPT = MODULE_DIR / "ADGAN.py"
LIB = MODULE_DIR / "ADGANLib"

QT_CLASSES = {"QWidget", "QLabel", "QPushButton", "QComboBox", "QSpinBox", "QDoubleSpinBox", "QLineEdit",
              "QTabWidget", "QTableWidget", "QProgressBar", "QPlainTextEdit", "QCheckBox"}


@pytest.fixture(scope="module")
def ui():
    return ET.parse(UI).getroot()  # raises on malformed XML


def ui_widgets(root):
    return {w.get("name"): w.get("class") for w in root.iter("widget")}


def names_looked_up(path):
    """Every X in `<anything>.ui.X` in the module's source."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) and node.value.attr == "ui":
            names.add(node.attr)
    return names


def test_ui_is_well_formed_and_complete(ui):
    assert ui.tag == "ui" and ui.find("class").text == "ADGAN"
    top = ui.find("widget")
    assert top.get("class") == "qMRMLWidget" and top.get("name") == "ADGAN"
    widgets = ui_widgets(ui)
    used = names_looked_up(SCRIPT)
    assert len(used) > 30
    missing = sorted(used - set(widgets))
    assert not missing, f"ADGAN.py looks up widgets the .ui lacks: {missing}"
    names = [w.get("name") for w in ui.iter("widget")]
    assert len(names) == len(set(names)), "duplicate widget names"


def test_ui_custom_widgets_declared_and_scene_connected(ui):
    widgets = ui_widgets(ui)
    declared = {c.find("class").text for c in ui.find("customwidgets")}
    for cls in set(widgets.values()) - QT_CLASSES:
        assert cls in declared, f"{cls} used but not declared in <customwidgets>"
    combos = {n for n, c in widgets.items() if c == "qMRMLNodeComboBox"}
    connected = {c.find("receiver").text for c in ui.find("connections")
                 if c.find("signal").text == "mrmlSceneChanged(vtkMRMLScene*)"
                 and c.find("slot").text == "setMRMLScene(vtkMRMLScene*)"}
    assert combos and combos <= connected, f"node selectors without the scene: {combos - connected}"


def test_widget_class_structure():
    tree = ast.parse(SCRIPT.read_text(encoding="utf-8"))
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    bases = {name: [ast.unparse(b) for b in c.bases] for name, c in classes.items()}
    assert "ScriptedLoadableModule" in bases["ADGAN"]
    assert "ScriptedLoadableModuleWidget" in bases["ADGANWidget"]
    assert "ScriptedLoadableModuleLogic" in bases["ADGANLogic"]
    assert "ScriptedLoadableModuleTest" in bases["ADGANTest"]
    methods = {f.name for f in classes["ADGANTest"].body if isinstance(f, ast.FunctionDef)}
    assert {"runTest", "setUp"} <= methods
    run = next(f for f in classes["ADGANTest"].body if isinstance(f, ast.FunctionDef) and f.name == "runTest")
    called = {n.func.attr for n in ast.walk(run) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)}
    assert {m for m in methods if m.startswith("test_")} <= called, "runTest skips a test"
    compile(SCRIPT.read_text(encoding="utf-8"), str(SCRIPT), "exec")


def test_cmake_lists_every_file():
    text = (MODULE_DIR / "CMakeLists.txt").read_text()
    listed = set(re.findall(r"\$\{MODULE_NAME\}Lib/(\w+\.py)", text))
    assert listed == {p.name for p in LIB.glob("*.py")}
    assert "Resources/UI/${MODULE_NAME}.ui" in text and "Resources/Icons/${MODULE_NAME}.png" in text
    assert "slicerMacroBuildScriptedModule" in text
    top = (REPO / "slicer-module" / "CMakeLists.txt").read_text()
    assert "add_subdirectory(ADGAN)" in top and "find_package(Slicer REQUIRED)" in top


def test_icon_is_a_png():
    data = (MODULE_DIR / "Resources" / "Icons" / "ADGAN.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert width == height and width >= 64


def test_adganlib_depends_on_numpy_only():
    stdlib = set(sys.stdlib_module_names)
    for path in LIB.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                mods = [node.module]
            else:
                continue
            for mod in mods:
                top = mod.split(".")[0]
                assert top in stdlib or top == "numpy", f"{path.name} imports {mod}"


def test_adganlib_imports_without_slicer():
    import ADGANLib

    assert "slicer" not in sys.modules and "qt" not in sys.modules
    assert ADGANLib.TrainOptions and ADGANLib.load_library


def test_preset_tooltip_states_the_presets_budgets(ui):
    """The Train tab's preset tooltip gives each preset's N, M and batch as
    ADGANLib.process.PRESETS (checked against adgan train --help elsewhere)."""
    from ADGANLib.process import PRESETS

    tip = next(w for w in ui.iter("widget") if w.get("name") == "trainPresetComboBox")
    text = next(p for p in tip.findall("property") if p.get("name") == "toolTip").find("string").text
    stated = {m[0]: {"phase1_iterations": int(m[1]), "phase2_iterations": int(m[2]), "batch_size": int(m[3])}
              for m in re.findall(r"([\w-]+): [^;]*?\(N=(\d+), M=(\d+), batch (\d+)", text)}
    assert stated == PRESETS
