"""The scripts of ``benchmarks/`` as modules, for the tests of their logic."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

FOLDER = Path(__file__).resolve().parents[1] / "benchmarks"


def load(name: str, register_as: str | None = None) -> ModuleType:
    """``benchmarks/<name>.py`` as a module; ``register_as``: also put it in ``sys.modules`` under that name (what
    dataclasses defined in it need)."""
    spec = importlib.util.spec_from_file_location(register_as or name, FOLDER / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    if register_as:
        sys.modules[register_as] = module
    spec.loader.exec_module(module)
    return module
