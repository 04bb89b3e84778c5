"""Long work off the GUI thread: generators run by napari thread workers, yielding events to the main thread.

Nothing in this package touches a layer or a widget; the widget applies the events on the main thread.
"""
