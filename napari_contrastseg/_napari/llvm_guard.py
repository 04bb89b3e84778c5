"""Keep libraries that bring their own LLVM out of the napari process.

With PyPI's default (CUDA) PyTorch on Linux, creating an optimiser imports ``torch._dynamo``, which imports triton if
it is installed; triton's LLVM then clashes with the LLVM that Mesa's OpenGL driver (Intel/AMD laptops, VMs, remote
desktops, xvfb) loaded for the viewer, and napari dies with a segmentation fault. Importing triton before any OpenGL
context exists is harmless, so a triton that is already imported is left alone; otherwise the import is blocked
(``sys.modules[name] = None``: ``import triton`` raises ImportError and ``importlib.util.find_spec`` returns None,
which PyTorch treats as "triton not installed"). Training in napari never needs triton: it compiles nothing.
"""

from __future__ import annotations

import sys

#: Modules that load an LLVM of their own and are never needed in the napari process.
BLOCKED_MODULES = ("triton",)


def block_llvm_imports() -> list[str]:
    """Block every module of :data:`BLOCKED_MODULES` not imported yet; returns the names blocked by this call."""
    blocked = []
    for name in BLOCKED_MODULES:
        if name not in sys.modules:
            sys.modules[name] = None  # type: ignore[assignment]
            blocked.append(name)
    return blocked


def is_blocked(name: str) -> bool:
    """Whether ``import name`` is blocked in this process."""
    return name in sys.modules and sys.modules[name] is None
