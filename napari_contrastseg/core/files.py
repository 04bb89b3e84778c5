"""Writing results safely: never over an input, never over an existing file unasked, never a half-written file."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import InputError

#: Suffixes of two parts that a temporary name must keep (readers and writers pick the format from them).
DOUBLE_SUFFIXES = (".nii.gz",)


def split_suffix(path: Path) -> tuple[str, str]:
    """``(stem, suffix)`` of a file name; ``.nii.gz`` counts as one suffix."""
    name = path.name
    for double in DOUBLE_SUFFIXES:
        if name.lower().endswith(double):
            return name[: -len(double)], name[-len(double) :]
    return path.stem, path.suffix


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary name beside ``path`` (same suffix, hidden) to write to; renamed to ``path`` when the block ends.

    If the block raises (or the process dies), ``path`` keeps what it held before and the temporary file or folder
    is removed (or, after a kill, left as a hidden ``.partial`` name). Works for files and for folders (zarr stores).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    stem, suffix = split_suffix(path)
    tmp = path.with_name(f".{stem}.{uuid.uuid4().hex[:8]}.partial{suffix}")
    try:
        yield tmp
        if tmp.is_dir() and path.is_dir():
            shutil.rmtree(path)  # a folder cannot be renamed over another; the old one goes only now
        os.replace(tmp, path)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


def same_or_inside(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` are the same path, or one lies inside the other (a zarr store and its arrays)."""
    a, b = Path(a).resolve(), Path(b).resolve()
    if a.exists() and b.exists() and os.path.samefile(a, b):
        return True
    return a == b or a in b.parents or b in a.parents


def check_output(
    output: str | Path, inputs: Iterable[str | Path], overwrite: bool = False, how_to_replace: str = ""
) -> Path:
    """Refuse (:class:`InputError`) an output that is one of ``inputs``, or that exists unless ``overwrite``.

    ``how_to_replace`` ends the message about an existing file (e.g. ``", or pass --overwrite to replace it"``).
    """
    output = Path(output)
    for source in inputs:
        if same_or_inside(output, Path(source)):
            raise InputError(f"The output {output} would overwrite the input {source}; choose another output.")
    if output.exists() and not overwrite:
        raise InputError(f"{output} exists already; choose another output{how_to_replace}.")
    return output
