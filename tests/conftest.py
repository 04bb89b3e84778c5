"""Shared fixtures: small synthetic images with painted strokes, and fast training configs."""

from __future__ import annotations

import numpy as np
import pytest

from napari_contrastseg.core.config import HoldoutConfig, NetworkConfig, TrainConfig
from napari_contrastseg.core.data import SegmentationData


def disks_2d(shape=(48, 56), seed=0) -> tuple[np.ndarray, np.ndarray]:
    """A noisy image of bright disks on a dark background and its dense truth (1 background, 2 disk)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    truth = np.ones(shape, np.uint8)
    for cy, cx, r in ((12, 14, 7), (30, 40, 9), (36, 12, 6)):
        truth[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = 2
    image = (truth == 2) * 1.0 + rng.normal(0, 0.3, shape)
    return image.astype(np.float32), truth


def disk_columns(depth: int = 21) -> tuple[np.ndarray, np.ndarray]:
    """A (depth, 48, 56) volume of disk columns whose brightness drifts along axis 0, painted on slices 3 and 15."""
    image2d, truth2d = disks_2d()
    rng = np.random.default_rng(1)
    image = np.stack([image2d * (1 + 0.05 * z) + rng.normal(0, 0.1, image2d.shape) for z in range(depth)])
    painted = np.zeros((depth, *truth2d.shape), np.uint8)
    painted[[3, 15]] = truth2d
    return image.astype(np.float32), painted


def strokes(truth: np.ndarray, every: int = 9) -> np.ndarray:
    """Sparse painting: every ``every``-th row of the truth, 0 elsewhere."""
    painted = np.zeros_like(truth)
    painted[::every] = truth[::every]
    return painted


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module: tiny networks gain nothing from two, and lose much when the cores are busy."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def data_2d() -> SegmentationData:
    image, truth = disks_2d()
    return SegmentationData(image, strokes(truth))


@pytest.fixture
def data_3d() -> SegmentationData:
    """A 3D volume (Z, Y, X) = (6, 48, 56) of disk columns painted on slices 1 and 4 along axis 0."""
    image2d, truth2d = disks_2d()
    rng = np.random.default_rng(1)
    image = np.stack([image2d + rng.normal(0, 0.1, image2d.shape) for _ in range(6)]).astype(np.float32)
    truth = np.stack([truth2d] * 6)
    painted = np.zeros_like(truth)
    painted[[1, 4]] = truth[[1, 4]]
    return SegmentationData(image, painted)


@pytest.fixture
def fast_config() -> TrainConfig:
    """A tiny network and few iterations: seconds on a CPU. No time budget and nothing held out: runs last their
    iterations, and the learning rate follows the iterations alone (never the clock of a loaded machine)."""
    return TrainConfig(
        iterations=6,
        time_budget=None,
        batch_size=2,
        patch_size=32,
        device="cpu",
        preview_every=2,
        network=NetworkConfig((8, 16, 32)),
        holdout=HoldoutConfig(fraction=0.0),
    )


# ---- napari (the viewer fixture make_napari_viewer comes from napari's pytest plugin)


@pytest.fixture
def notes(monkeypatch):
    """Messages shown as napari notifications during the test: list of (severity, message)."""
    from napari.utils.notifications import notification_manager

    seen: list[tuple[str, str]] = []

    def record(notification):
        seen.append((str(notification.severity), str(notification.message)))

    notification_manager.notification_ready.connect(record)
    yield seen
    notification_manager.notification_ready.disconnect(record)


@pytest.fixture
def session(make_napari_viewer, qtbot, tmp_path, monkeypatch):
    """A viewer with the colin27-deep sample open and the widget docked through the plugin menu entry."""
    monkeypatch.setenv("CONTRASTSEG_AUTOSAVE_DIR", str(tmp_path / "autosave"))
    viewer = make_napari_viewer()
    viewer.open_sample("napari-contrastseg", "colin27-deep")
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-contrastseg", "Scribble segmentation")
    from napari_helpers import FAST

    widget.apply_settings(FAST)
    yield viewer, widget, qtbot
    widget.shutdown()
