"""ContrastSeg's library: logic, background process runner, conversions and dependency installation.

``logic``, ``process`` and ``conversions`` work in the Slicer application and with PyPI's ``slicer-core`` (no Qt);
``dependencies`` and ``parameters`` need the Slicer application and are imported only where it runs.
"""

from .conversions import BACKGROUND_NAME, ClassInfo, ConversionError
from .logic import DEVICES, METHODS, NORMS, ContrastSegLogic, TrainingOptions
from .process import ProcessRunner, parse_event, python_executable

__all__ = [
    "BACKGROUND_NAME",
    "DEVICES",
    "METHODS",
    "NORMS",
    "ClassInfo",
    "ContrastSegLogic",
    "ConversionError",
    "ProcessRunner",
    "TrainingOptions",
    "parse_event",
    "python_executable",
]
