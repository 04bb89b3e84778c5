"""Errors a user can understand: every message says what is wrong and what to do."""


class ContrastSegError(Exception):
    """Base class of the errors the engine raises on purpose."""


class InputError(ContrastSegError, ValueError):
    """The image or the painted labels cannot be used as given."""


class ModelFileError(ContrastSegError, ValueError):
    """A model file is missing, damaged, unsafe or incompatible."""


class FileFormatError(ContrastSegError, ValueError):
    """An image file cannot be read or written."""


class TrainingError(ContrastSegError, RuntimeError):
    """Training could not go on (for example out of memory at the smallest batch)."""
