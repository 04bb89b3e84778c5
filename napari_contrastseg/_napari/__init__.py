"""napari front end: dock widget, thread workers, reader, writer, sample data and scribble autosave.

Everything napari- or Qt-specific lives here; the engine in :mod:`napari_contrastseg.core` stays GUI-free.
Importing this package (which napari does for every contribution of the plugin) first blocks triton, whose LLVM
crashes a napari that draws through Mesa (:mod:`.llvm_guard`).
"""

from .llvm_guard import block_llvm_imports

block_llvm_imports()
