"""The ilastik/convpaint-style baseline: multiscale pixel features + random forest, trained on painted voxels."""

from __future__ import annotations

import numpy as np
from skimage.feature import multiscale_basic_features
from sklearn.ensemble import RandomForestClassifier

MAX_TRAINING_PIXELS = 200_000


def slice_features(image2d: np.ndarray) -> np.ndarray:
    """``(H, W, F)`` intensity, edge and texture features at sigma 1..8."""
    return multiscale_basic_features(image2d, intensity=True, edges=True, texture=True, sigma_min=1, sigma_max=8)


def rf_segment(image: np.ndarray, painted: np.ndarray, axis: int | None = -1, seed: int = 0) -> np.ndarray:
    """Train on painted voxels of the painted slices (2D features per slice along ``axis``; ``None``: a 2D image);
    predict every voxel."""
    if axis is None:
        return rf_segment(image[None], painted[None], 0, seed)[0]
    img = np.moveaxis(image.astype(np.float32), axis, 0)
    lab = np.moveaxis(painted, axis, 0)
    img = (img - img.min()) / max(float(np.ptp(img)), 1e-6)
    xs, ys = [], []
    for z in np.flatnonzero((lab > 0).any(axis=(1, 2))):
        feats, keep = slice_features(img[z]), lab[z] > 0
        xs.append(feats[keep])
        ys.append(lab[z][keep])
    x, y = np.concatenate(xs), np.concatenate(ys)
    rng = np.random.default_rng(seed)
    if len(y) > MAX_TRAINING_PIXELS:
        pick = rng.choice(len(y), MAX_TRAINING_PIXELS, replace=False)
        x, y = x[pick], y[pick]
    forest = RandomForestClassifier(n_estimators=100, max_depth=12, n_jobs=-1, random_state=seed).fit(x, y)
    out = np.empty(lab.shape, np.uint8)
    for z in range(img.shape[0]):
        feats = slice_features(img[z])
        out[z] = forest.predict(feats.reshape(-1, feats.shape[-1])).reshape(feats.shape[:2])
    return np.moveaxis(out, 0, axis)
