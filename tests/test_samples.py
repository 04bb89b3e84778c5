"""Tests for the bundled sample volumes."""

from __future__ import annotations

import numpy as np
import pytest

from napari_contrastseg.samples import SAMPLE_NAMES, load_sample
from napari_contrastseg.samples.protocol import paint_slices, painted_slice_indices


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_sample_loads_consistently(name: str) -> None:
    s = load_sample(name)
    assert s.image.dtype == np.float32 and s.image.ndim == 3
    assert s.painted.dtype == np.uint8 and s.ground_truth.dtype == np.uint8
    assert s.image.shape == s.painted.shape == s.ground_truth.shape
    assert np.isfinite(s.image).all() and s.image.std() > 0
    assert s.class_names[0] == "background"
    assert s.ground_truth.min() >= 1 and s.ground_truth.max() == len(s.class_names)
    assert s.painted_axis == s.image.ndim - 1
    for path in s.paths.values():
        assert path.is_file()


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_painting_follows_protocol(name: str) -> None:
    s = load_sample(name)
    mask = s.painted > 0
    np.testing.assert_array_equal(s.painted[mask], s.ground_truth[mask])
    slices = painted_slice_indices(s.painted, s.painted_axis)
    assert len(slices) == 3
    for index in slices:
        assert np.take(mask, index, axis=s.painted_axis).all()
    np.testing.assert_array_equal(s.painted, paint_slices(s.ground_truth, 3, axis=s.painted_axis))
    assert set(np.unique(s.painted[mask])) == set(range(1, len(s.class_names) + 1))


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_geometry(name: str) -> None:
    s = load_sample(name)
    assert s.affine.shape == (4, 4)
    np.testing.assert_allclose(s.affine[3], [0, 0, 0, 1])
    np.testing.assert_allclose(np.abs(np.diag(s.affine[:3, :3])), s.spacing)
    assert len(s.spacing) == 3 and all(0.5 <= z <= 2.0 for z in s.spacing)
    # RAS+ orientation: the last array axis runs inferior -> superior (axial slices).
    assert s.affine[2, 2] > 0 and np.count_nonzero(s.affine[:3, :3] - np.diag(np.diag(s.affine[:3, :3]))) == 0


def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="colin27-deep"):
        load_sample("nope")
