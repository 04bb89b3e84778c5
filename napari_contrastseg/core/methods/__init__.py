"""Training methods as strategies; importing this package registers every built-in method."""

from . import action, semicontrast, supervised  # noqa: F401  (registers)
from .base import METHODS, Batch, Method, create_method, register

__all__ = ["METHODS", "Batch", "Method", "create_method", "register"]
