"""First-use installation of what the background process needs, inside Slicer's own Python.

* PyTorch comes from the SlicerPyTorch extension (``PyTorchUtils``), which picks the build that matches the GPU
  driver (or a CPU build). The extension is declared in the extension's ``EXTENSION_DEPENDS``; if it is missing
  the user is offered to install it.
* ``napari-contrastseg`` is installed with Slicer's pip helper (``slicer.util.pip_install``): first the package
  alone (``--no-deps``), then its runtime requirements except PyTorch (already there) and the napari GUI helpers
  (magicgui, qtpy: not used in Slicer). Both pip runs use a constraints file that pins every package already in
  Slicer's Python to its installed version, so installing never upgrades or downgrades Slicer's own packages
  (numpy, SimpleITK, ...); if that is impossible pip stops with an error and nothing is changed.

Nothing here runs at import time: :func:`ensure_dependencies` is called when the user first presses Train or
Apply. The helpers above it are plain Python and are tested without Slicer.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import logging
import os
import re
import tempfile
from pathlib import Path

PACKAGE = "napari-contrastseg"
IMPORT_NAME = "napari_contrastseg"
TORCH_REQUIREMENT = ">=2.1"
PYTORCH_EXTENSION = "PyTorch"
# Requirements not installed by pip here: torch comes from the PyTorch extension; magicgui and qtpy serve napari only.
SKIPPED_REQUIREMENTS = frozenset({"torch", "magicgui", "qtpy", "napari"})
SPEC_ENVIRONMENT_VARIABLE = "CONTRASTSEG_PIP_SPEC"


class DependencyError(RuntimeError):
    """A dependency is missing and was not installed (declined, or the installation failed)."""


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    return normalize(match.group(1)) if match else ""


def runtime_requirements(requires: list[str] | None) -> list[str]:
    """The package's requirements that pip should install here: no extras, no skipped packages."""
    out = []
    for requirement in requires or []:
        requirement = requirement.strip()
        if not requirement or "extra ==" in requirement.replace('"', "'").replace("extra==", "extra =="):
            continue
        if requirement_name(requirement) in SKIPPED_REQUIREMENTS:
            continue
        out.append(requirement)
    return out


def constraints_text(distributions=None, exclude=(PACKAGE,)) -> str:
    """``name==version`` for every installed distribution (but ``exclude``): pip may add packages, not change these."""
    skip = {normalize(name) for name in exclude}
    pins = {}
    for dist in distributions if distributions is not None else importlib.metadata.distributions():
        name = dist.metadata["Name"] if dist.metadata else None
        if name and dist.version and normalize(name) not in skip:
            pins[normalize(name)] = dist.version
    return "".join(f"{name}=={version}\n" for name, version in sorted(pins.items()))


def package_spec() -> str:
    """What pip installs: ``$CONTRASTSEG_PIP_SPEC``, else the source tree this module sits in, else PyPI's name."""
    spec = os.environ.get(SPEC_ENVIRONMENT_VARIABLE, "").strip()
    if spec:
        return spec
    root = Path(__file__).resolve().parents[3]  # <repo>/slicer_module/ContrastSeg/ContrastSegLib/dependencies.py
    setup_cfg = root / "setup.cfg"
    if setup_cfg.is_file() and re.search(r"^name\s*=\s*napari-contrastseg\s*$", setup_cfg.read_text(), re.M):
        return str(root)
    return PACKAGE


def missing_modules() -> list[str]:
    """Import names the background process needs and that this Python cannot find."""
    missing = [name for name in ("torch", IMPORT_NAME) if importlib.util.find_spec(name) is None]
    if IMPORT_NAME not in missing:
        try:
            requires = importlib.metadata.requires(PACKAGE)
        except importlib.metadata.PackageNotFoundError:
            requires = None
        for requirement in runtime_requirements(requires):
            name = requirement_name(requirement)
            try:
                importlib.metadata.version(name)
            except importlib.metadata.PackageNotFoundError:
                missing.append(name)
    return missing


# -- the Slicer application only ---------------------------------------------------------------------------------


def ensure_dependencies(parent=None) -> None:
    """Offer to install whatever is missing; raises :class:`DependencyError` with a clear message otherwise."""
    missing = missing_modules()
    if not missing:
        return
    if "torch" in missing:
        _ensure_torch()
    if set(missing) - {"torch"}:
        _ensure_package(parent)
    importlib.invalidate_caches()
    still = missing_modules()
    if still:
        raise DependencyError(
            f"These Python packages are still missing: {', '.join(still)}. See the Python console for pip's messages."
        )


def _ensure_torch() -> None:
    import slicer

    try:
        import PyTorchUtils
    except ModuleNotFoundError:
        if not slicer.util.confirmYesNoDisplay(
            "ContrastSeg needs PyTorch, which Slicer installs through the PyTorch extension. Install the "
            "PyTorch extension now? Slicer must be restarted afterwards (save your work first).",
            windowTitle="ContrastSeg: PyTorch extension",
        ):
            raise DependencyError(
                "ContrastSeg needs the PyTorch extension. Install it from the Extensions Manager, "
                "restart Slicer, then press Train again."
            ) from None
        manager = slicer.app.extensionsManagerModel()
        if not manager.installExtensionFromServer(PYTORCH_EXTENSION, False):
            raise DependencyError(
                "The PyTorch extension could not be installed. Install it from the Extensions "
                "Manager, restart Slicer, then press Train again."
            ) from None
        raise DependencyError("The PyTorch extension is installed. Restart Slicer, then press Train again.") from None
    torch_logic = PyTorchUtils.PyTorchUtilsLogic()
    if torch_logic.torchInstalled():
        return
    torch = torch_logic.installTorch(askConfirmation=True, torchVersionRequirement=TORCH_REQUIREMENT)
    if torch is None:
        raise DependencyError(
            "ContrastSeg cannot train without PyTorch. Press Train again to install it, or use "
            "the PyTorch Utils module to pick a specific build."
        )


def _ensure_package(parent=None) -> None:
    import slicer

    spec = package_spec()
    if not slicer.util.confirmOkCancelDisplay(
        f"ContrastSeg will install the Python package {PACKAGE} ({spec}) and its requirements into Slicer's "
        "Python. Packages Slicer already has are kept at their versions. This may take a few minutes.",
        windowTitle="ContrastSeg: install packages",
    ):
        raise DependencyError(f"ContrastSeg needs the {PACKAGE} Python package; it was not installed.")
    with tempfile.TemporaryDirectory(prefix="ContrastSeg-pip-") as folder:
        constraints = Path(folder) / "constraints.txt"
        constraints.write_text(constraints_text(), encoding="utf-8")
        try:
            slicer.util.pip_install(["--no-deps", spec, "-c", str(constraints)])
            importlib.invalidate_caches()
            requirements = runtime_requirements(importlib.metadata.requires(PACKAGE))
            if requirements:
                slicer.util.pip_install([*requirements, "-c", str(constraints)])
        except Exception as err:  # noqa: BLE001 - pip failures arrive as CalledProcessError or RuntimeError
            logging.error("ContrastSeg: pip failed: %s", err)
            raise DependencyError(
                f"Installing {PACKAGE} failed ({err}). If pip reports a conflict, a requirement would have changed "
                "one of Slicer's own packages; the Python console shows which. Nothing of Slicer's was changed."
            ) from err
