"""Several images (painted or not) for one model: find the image/label pairs of a folder or a list file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .data import SegmentationData
from .errors import InputError
from .image_io import SUFFIXES, image_suffix, read_image

LABELS_TAG = "_labels"
LIST_SUFFIXES = (".txt", ".csv", ".tsv")


@dataclass
class TrainingPair:
    """An image file and its painted labels file, or None for an unpainted image."""

    image: Path
    labels: Path | None


def find_pairs(source: str | Path) -> list[TrainingPair]:
    """The pairs listed by ``source``.

    - a folder: every image file ``NAME.ext`` not itself a labels file, with labels ``NAME_labels.ext`` (any
      supported format) when present; images without one are unpainted;
    - a list file (``.txt``/``.csv``/``.tsv``): one ``image[,labels]`` per line (comma or tab), paths relative to
      the list's folder; blank lines and ``#`` comments skipped.
    """
    source = Path(source)
    if source.is_dir():
        pairs = _pairs_in_folder(source)
    elif source.is_file() and source.suffix.lower() in LIST_SUFFIXES:
        pairs = _pairs_in_list(source)
    else:
        raise InputError(f"{source} is neither a folder of images nor a list file ({', '.join(LIST_SUFFIXES)}).")
    if not pairs:
        raise InputError(f"{source} lists no images ({', '.join(SUFFIXES)}).")
    if all(p.labels is None for p in pairs):
        raise InputError(f"No image in {source} has painted labels (name them NAME{LABELS_TAG}.ext).")
    return pairs


def load_pairs(
    pairs: list[TrainingPair], class_names: list[str] | None = None, channel_axis: int | None = None
) -> list[SegmentationData]:
    """Read every pair; an unpainted image gets all-zero labels. Errors name the file."""
    items = []
    for pair in pairs:
        image = read_image(pair.image)
        spatial = image.array.shape if channel_axis is None else np.delete(image.array.shape, channel_axis)
        labels = read_image(pair.labels).array if pair.labels else np.zeros(tuple(spatial), np.uint8)
        items.append(SegmentationData(image.array, labels, class_names, image.spacing, channel_axis))
    return items


def _pairs_in_folder(folder: Path) -> list[TrainingPair]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.name.lower().endswith(SUFFIXES))
    stems = {_stem(p): p for p in files}
    return [
        TrainingPair(path, stems.get(_stem(path) + LABELS_TAG))
        for path in files
        if not _stem(path).endswith(LABELS_TAG)
    ]


def _pairs_in_list(list_file: Path) -> list[TrainingPair]:
    pairs = []
    for number, line in enumerate(list_file.read_text().splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        fields = [f.strip() for f in line.replace("\t", ",").split(",")]
        if len(fields) > 2 or not fields[0]:
            raise InputError(f"{list_file}, line {number}: expected 'image[,labels]', got {line!r}.")
        image, labels = (list_file.parent / f if f else None for f in (*fields, "")[:2])
        for path in (image, labels):
            if path is not None and not path.is_file():
                raise InputError(f"{list_file}, line {number}: no file at {path}.")
        pairs.append(TrainingPair(image, labels))
    return pairs


def _stem(path: Path) -> str:
    return path.name[: -len(image_suffix(path))]
