"""Scribble autosave: painted voxels are written to a user cache folder a moment after each stroke.

One file per image (its layer name and shape), holding only the painted voxels, so a crash loses nothing and the
widget can offer to restore them. Files are written atomically from a background thread.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from qtpy.QtCore import QObject, QTimer

from .layers import same_layer

ENV_DIR = "CONTRASTSEG_AUTOSAVE_DIR"


def autosave_dir() -> Path:
    """``$CONTRASTSEG_AUTOSAVE_DIR``, else ``<user cache>/napari-contrastseg/scribbles``."""
    if os.environ.get(ENV_DIR):
        return Path(os.environ[ENV_DIR])
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("napari-contrastseg")) / "scribbles"


def autosave_path(image_name: str, shape: tuple[int, ...]) -> Path:
    """The file for scribbles on image ``image_name`` of spatial ``shape``."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", image_name)[:60] or "image"
    digest = hashlib.sha1(f"{image_name}|{tuple(shape)}".encode()).hexdigest()[:10]
    return autosave_dir() / f"{safe}-{'x'.join(map(str, shape))}-{digest}.npz"


@dataclass
class SavedScribbles:
    path: Path
    image_name: str
    labels_name: str
    shape: tuple[int, ...]
    saved_at: float
    painted: int
    class_names: list[str]

    def age_in_words(self) -> str:
        seconds = max(0.0, time.time() - self.saved_at)
        for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
            if seconds >= size:
                n = int(seconds // size)
                return f"{n} {unit}{'s' if n != 1 else ''} ago"
        return "just now"


def save_scribbles(labels: np.ndarray, image_name: str, labels_name: str, class_names: list[str] | None = None) -> Path:
    """Write the painted voxels of ``labels`` (atomically); returns the file."""
    path = autosave_path(image_name, labels.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    flat = np.ravel(labels)
    index = np.flatnonzero(flat)
    meta = {
        "image_name": image_name,
        "labels_name": labels_name,
        "shape": list(labels.shape),
        "dtype": str(labels.dtype),
        "saved_at": time.time(),
        "painted": int(index.size),
        "class_names": list(class_names or []),
    }
    tmp = path.with_name(path.name + ".part.npz")
    np.savez_compressed(tmp, index=index.astype(np.int64), values=flat[index], meta=np.array(json.dumps(meta)))
    tmp.replace(path)
    return path


def find_saved(image_name: str, shape: tuple[int, ...]) -> SavedScribbles | None:
    """The autosaved scribbles for this image, if any (unreadable files are ignored)."""
    path = autosave_path(image_name, shape)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as f:
            meta = json.loads(str(f["meta"]))
    except Exception:  # noqa: BLE001 - a damaged autosave is simply not offered
        return None
    return SavedScribbles(
        path,
        meta["image_name"],
        meta.get("labels_name", "scribbles"),
        tuple(meta["shape"]),
        float(meta["saved_at"]),
        int(meta["painted"]),
        list(meta.get("class_names", [])),
    )


def load_scribbles(saved: SavedScribbles) -> np.ndarray:
    """The saved scribbles as a dense array."""
    with np.load(saved.path, allow_pickle=False) as f:
        meta = json.loads(str(f["meta"]))
        out = np.zeros(int(np.prod(meta["shape"])), dtype=np.dtype(meta["dtype"]))
        out[f["index"]] = f["values"]
    return out.reshape(meta["shape"])


def same_painting(saved: SavedScribbles, labels: np.ndarray) -> bool:
    """True if ``labels`` already holds exactly the saved painting."""
    if tuple(labels.shape) != saved.shape or int(np.count_nonzero(labels)) != saved.painted:
        return False
    return bool(np.array_equal(load_scribbles(saved), labels))


class ScribbleAutosave(QObject):
    """Watches one scribbles layer; saves ``delay_ms`` after the last stroke, in a background thread."""

    def __init__(self, parent: QObject | None = None, delay_ms: int = 1500) -> None:
        super().__init__(parent)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(delay_ms)
        self._timer.timeout.connect(self.save_now)
        self._layer = None
        self._image_name = ""
        self._class_names: list[str] = []
        self._executor: ThreadPoolExecutor | None = None
        self._pending: Future | None = None
        self.last_path: Path | None = None
        self.last_error: str | None = None

    def watch(self, layer, image_name: str, class_names: list[str] | None = None) -> None:
        """Follow ``layer`` (a labels layer painted over image ``image_name``); None stops watching."""
        if same_layer(layer, self._layer) and image_name == self._image_name:
            return
        self.unwatch()
        self._layer, self._image_name = layer, image_name
        self._class_names = list(class_names or [])
        if layer is not None:
            layer.events.paint.connect(self._changed)
            layer.events.data.connect(self._changed)

    def set_class_names(self, names: list[str]) -> None:
        self._class_names = list(names)

    def unwatch(self) -> None:
        if self._timer.isActive():
            self.save_now()
        if self._layer is not None:
            for emitter in (self._layer.events.paint, self._layer.events.data):
                emitter.disconnect(self._changed)
        self._layer = None

    def _changed(self, *_args) -> None:
        self._timer.start()

    @property
    def dirty(self) -> bool:
        return self._timer.isActive()

    def save_now(self, wait: bool = False) -> None:
        """Copy the layer's data now (main thread) and write it in the background (or now if ``wait``)."""
        self._timer.stop()
        layer = self._layer
        if layer is None or not self._image_name:
            return
        labels = np.array(layer.data, copy=True)
        if not labels.any() and find_saved(self._image_name, labels.shape) is None:
            return  # nothing painted and nothing to overwrite
        args = (labels, self._image_name, layer.name, list(self._class_names))
        if wait:
            self._write(*args)
            return
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="contrastseg-autosave")
        self._pending = self._executor.submit(self._write, *args)

    def _write(self, *args) -> None:
        try:
            self.last_path = save_scribbles(*args)
            self.last_error = None
        except Exception as err:  # noqa: BLE001 - autosave must never disturb painting
            self.last_error = f"{type(err).__name__}: {err}"

    def close(self) -> None:
        """Save anything pending, wait for the writer thread and stop it."""
        if self._timer.isActive():
            self.save_now(wait=True)
        self._timer.stop()
        if self._layer is not None:
            for emitter in (self._layer.events.paint, self._layer.events.data):
                emitter.disconnect(self._changed)
            self._layer = None
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
