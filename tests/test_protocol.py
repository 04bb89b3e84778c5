"""Tests for the simulated painting of the benchmark protocol."""

from __future__ import annotations

import numpy as np
import pytest

from napari_contrastseg.samples.protocol import (
    choose_slices,
    paint_scribbles,
    paint_slices,
    paint_tile,
    painted_slice_indices,
    painted_tile,
    unpainted_mask,
)


def synthetic_volume() -> np.ndarray:
    """40x40x30 volume: background 1, a cube of class 2 on z 5..24, a slab of class 3 on z 10..14."""
    gt = np.ones((40, 40, 30), dtype=np.uint8)
    gt[5:30, 5:30, 5:25] = 2
    gt[20:35, 8:38, 10:15] = 3
    return gt


@pytest.mark.parametrize("n", [1, 3, 5, 10])
def test_slice_choice_matches_formula(n: int) -> None:
    gt = synthetic_volume()
    candidates = list(range(5, 25))
    expected = sorted({candidates[round(q * (len(candidates) - 1))] for q in np.linspace(0, 1, n + 2)[1:-1]})
    assert choose_slices(gt, n, axis=-1) == expected
    painted = paint_slices(gt, n, axis=-1)
    assert painted_slice_indices(painted, axis=-1) == expected
    for z in expected:
        np.testing.assert_array_equal(painted[..., z], gt[..., z])
    assert not painted[..., [z for z in range(30) if z not in expected]].any()


def test_slice_choice_three_slices_literal() -> None:
    # 20 candidates 5..24, quantiles 0.25/0.5/0.75 -> positions round(4.75)=5, round(9.5)=10, round(14.25)=14.
    assert choose_slices(synthetic_volume(), 3) == [10, 15, 19]


def test_other_axis_and_dtype() -> None:
    gt = np.moveaxis(synthetic_volume(), -1, 0)
    painted = paint_slices(gt, 3, axis=0)
    assert painted.dtype == np.uint8
    assert painted_slice_indices(painted, axis=0) == [10, 15, 19]
    big = synthetic_volume().astype(np.uint16)
    big[big == 3] = 300
    assert paint_slices(big, 2).dtype == np.uint16


def test_scribbles_inside_class_regions() -> None:
    gt = synthetic_volume()
    scribbles = paint_scribbles(gt, 3, seed=0)
    mask = scribbles > 0
    assert mask.any()
    np.testing.assert_array_equal(scribbles[mask], gt[mask])
    assert painted_slice_indices(scribbles) == choose_slices(gt, 3)
    assert mask.sum() < 0.5 * gt[..., choose_slices(gt, 3)].size
    for z in choose_slices(gt, 3):
        assert set(np.unique(scribbles[..., z])) - {0} == set(np.unique(gt[..., z]))


def test_scribbles_seeded_determinism() -> None:
    gt = synthetic_volume()
    first = paint_scribbles(gt, 3, seed=7)
    np.testing.assert_array_equal(first, paint_scribbles(gt, 3, seed=7))
    assert not np.array_equal(first, paint_scribbles(gt, 3, seed=8))


def test_unpainted_mask_excludes_painted_slices() -> None:
    gt = synthetic_volume()
    painted = paint_scribbles(gt, 3, seed=1)
    mask = unpainted_mask(painted, axis=-1)
    assert mask.shape == gt.shape and mask.dtype == bool
    for z in range(gt.shape[-1]):
        assert mask[..., z].all() == (z not in (10, 15, 19))
        assert mask[..., z].all() or not mask[..., z].any()


def test_no_foreground_raises() -> None:
    with pytest.raises(ValueError):
        paint_slices(np.ones((4, 4, 4), dtype=np.uint8), 3)


def synthetic_image() -> np.ndarray:
    """80x120 image: background 1, class 2 in a square inside the top-left tile and in one outside it."""
    gt = np.ones((80, 120), dtype=np.uint8)
    gt[5:15, 10:25] = 2
    gt[50:70, 60:90] = 2
    return gt


def test_tile_painting_of_a_2d_image() -> None:
    gt = synthetic_image()
    assert painted_tile(gt.shape) == (slice(0, 20), slice(0, 30))
    whole = paint_tile(gt)
    np.testing.assert_array_equal(whole[:20, :30], gt[:20, :30])
    assert not whole[20:].any() and not whole[:, 30:].any()
    strokes = paint_tile(gt, scribbles=True, seed=3)
    assert set(np.unique(strokes)) == {0, 1, 2} and (strokes > 0).sum() < (whole > 0).sum()
    assert np.all((strokes == 0) | (strokes == gt)) and not strokes[20:].any()
    mask = unpainted_mask(strokes, axis=None)
    assert not mask[:20, :30].any() and mask[20:].all() and mask[:, 30:].all()


def test_tile_painting_refuses_a_tile_without_foreground() -> None:
    gt = synthetic_image()
    gt[:20, :30] = 1
    with pytest.raises(ValueError, match="tile"):
        paint_tile(gt)
    with pytest.raises(ValueError, match="2D"):
        paint_tile(synthetic_volume())
