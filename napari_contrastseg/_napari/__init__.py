"""napari front end: dock widget, thread workers, reader, writer, sample data and scribble autosave.

Everything napari- or Qt-specific lives here; the engine in :mod:`napari_contrastseg.core` stays GUI-free.
"""
