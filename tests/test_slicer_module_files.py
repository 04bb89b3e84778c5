"""Slicer module: the extension's files are complete and consistent (no Slicer needed).

Checks what the Slicer application would only find at load time: CMake lists every script and resource, the
widget uses only widgets that the .ui file defines, the parameter node fields match the .ui's
SlicerParameterName properties, MRML combo boxes get the scene, nothing heavy is imported at module import, and
the dependency installer's requirement handling.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXTENSION = ROOT / "slicer_module"
MODULE = EXTENSION / "ContrastSeg"
LIB = MODULE / "ContrastSegLib"


def _cmake_list(text: str, variable: str) -> list[str]:
    block = re.search(rf"set\({variable}\s+(.*?)\)", text, re.S).group(1)
    return [item.replace("${MODULE_NAME}", "ContrastSeg") for item in block.split()]


def test_extension_cmake_declares_metadata_and_module():
    text = (EXTENSION / "CMakeLists.txt").read_text()
    for variable in (
        "EXTENSION_HOMEPAGE",
        "EXTENSION_CATEGORY",
        "EXTENSION_CONTRIBUTORS",
        "EXTENSION_DESCRIPTION",
        "EXTENSION_ICONURL",
        "EXTENSION_SCREENSHOTURLS",
        "EXTENSION_DEPENDS",
    ):
        assert f"set({variable} " in text, variable
    assert 'set(EXTENSION_DEPENDS "PyTorch")' in text
    assert "add_subdirectory(ContrastSeg)" in text
    assert "include(${Slicer_EXTENSION_GENERATE_CONFIG})" in text and "include(${Slicer_EXTENSION_CPACK})" in text


def test_module_cmake_lists_every_script_and_resource():
    text = (MODULE / "CMakeLists.txt").read_text()
    scripts = _cmake_list(text, "MODULE_PYTHON_SCRIPTS")
    resources = _cmake_list(text, "MODULE_PYTHON_RESOURCES")
    for relative in scripts + resources:
        assert (MODULE / relative).is_file(), relative
    for path in LIB.glob("*.py"):
        assert f"ContrastSegLib/{path.name}" in scripts, path.name
    assert "slicerMacroBuildScriptedModule(" in text and "slicer_add_python_unittest(SCRIPT ${MODULE_NAME}.py)" in text
    assert (MODULE / "Testing" / "CMakeLists.txt").is_file()
    assert (MODULE / "Testing" / "Python" / "CMakeLists.txt").is_file()
    assert (MODULE / "Resources" / "Icons" / "ContrastSeg.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_main_script_holds_only_module_widget_and_test_classes():
    source = (MODULE / "ContrastSeg.py").read_text()
    tree = ast.parse(source)
    classes = {
        node.name: [b.id for b in node.bases if isinstance(b, ast.Name)]
        for node in tree.body
        if isinstance(node, ast.ClassDef)
    }
    assert classes == {
        "ContrastSeg": ["ScriptedLoadableModule"],
        "ContrastSegWidget": ["ScriptedLoadableModuleWidget", "VTKObservationMixin"],
        "ContrastSegTest": ["ScriptedLoadableModuleTest"],
    }
    assert len(source.splitlines()) < 450


def test_nothing_heavy_is_imported_when_slicer_loads_the_module():
    """Dependencies are installed on first use, so module import must not need torch or napari_contrastseg."""
    allowed = {
        "logging",
        "os",
        "sys",
        "qt",
        "vtk",
        "slicer",
        "ContrastSegLib",
        "__future__",
        "dataclasses",
        "numpy",
        "pathlib",
        "re",
        "shutil",
        "tempfile",
        "time",
        "json",
        "signal",
        "subprocess",
        "weakref",
        "atexit",
        "functools",
        "contextlib",
        "collections",
        "importlib",
        "threading",
        "typing",
    }
    for path in [MODULE / "ContrastSeg.py", *LIB.glob("*.py")]:
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""] if node.level == 0 else []
            else:
                continue
            for name in names:
                assert name.split(".")[0] in allowed, f"{path.name} imports {name} at module level"


def _ui():
    return ET.parse(MODULE / "Resources" / "UI" / "ContrastSeg.ui").getroot()


def test_ui_is_a_qmrmlwidget_with_the_widgets_the_code_uses():
    root = _ui()
    top = root.find("widget")
    assert top.get("class") == "qMRMLWidget" and top.get("name") == "ContrastSeg"
    names = {w.get("name") for w in root.iter("widget")}
    used = set(re.findall(r"self\.ui\.(\w+)", (MODULE / "ContrastSeg.py").read_text()))
    assert used and used <= names, used - names


def test_ui_parameter_names_match_the_parameter_node():
    root = _ui()
    bound = set()
    for widget in root.iter("widget"):
        for prop in widget.findall("property"):
            if prop.get("name") == "SlicerParameterName":
                bound.add(prop.find("string").text)
    tree = ast.parse((LIB / "parameters.py").read_text())
    node_class = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "ContrastSegParameterNode")
    fields = {n.target.id for n in node_class.body if isinstance(n, ast.AnnAssign)}
    assert bound == fields


def test_every_mrml_combo_box_receives_the_scene():
    root = _ui()
    combos = {w.get("name") for w in root.iter("widget") if w.get("class") == "qMRMLNodeComboBox"}
    receivers = {
        c.findtext("receiver")
        for c in root.iter("connection")
        if c.findtext("signal") == "mrmlSceneChanged(vtkMRMLScene*)"
        and c.findtext("slot") == "setMRMLScene(vtkMRMLScene*)"
    }
    assert combos and combos == receivers


def _dependencies():
    spec = importlib.util.spec_from_file_location("contrastseg_dependencies", LIB / "dependencies.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_runtime_requirements_skip_torch_gui_helpers_and_extras():
    deps = _dependencies()
    requires = [
        "numpy>=1.24",
        "torch>=2.1",
        "monai>=1.3",
        "magicgui>=0.8",
        "qtpy>=2.3",
        "nibabel>=5.0",
        'napari>=0.5; extra == "napari"',
        "pytest>=7; extra == 'testing'",
    ]
    assert deps.runtime_requirements(requires) == ["numpy>=1.24", "monai>=1.3", "nibabel>=5.0"]


def test_constraints_pin_installed_packages_but_not_this_one():
    deps = _dependencies()

    class Dist:
        def __init__(self, name, version):
            self.metadata = {"Name": name}
            self.version = version

    text = deps.constraints_text(
        [Dist("NumPy", "1.26.4"), Dist("SimpleITK", "2.4.0"), Dist("napari_contrastseg", "0.0.1")]
    )
    assert text.splitlines() == ["numpy==1.26.4", "simpleitk==2.4.0"]


def test_package_spec_is_this_source_tree_unless_overridden(monkeypatch):
    deps = _dependencies()
    monkeypatch.delenv(deps.SPEC_ENVIRONMENT_VARIABLE, raising=False)
    assert Path(deps.package_spec()) == ROOT
    monkeypatch.setenv(deps.SPEC_ENVIRONMENT_VARIABLE, "napari-contrastseg==0.1.0")
    assert deps.package_spec() == "napari-contrastseg==0.1.0"
