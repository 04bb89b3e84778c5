"""Slice suggestions: the strategies, greedy picks, and the CLI giving the same slices as the Python call."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_contrastseg.cli import main
from napari_contrastseg.core.errors import InputError
from napari_contrastseg.core.image_io import write_image
from napari_contrastseg.core.suggest import suggest_slices
from napari_contrastseg.core.trainer import train_model


def _uncertainty_and_painting():
    uncertainty = np.zeros((4, 5, 12), np.float32)
    uncertainty[..., 1] = 0.9  # painted: never suggested
    uncertainty[..., 2] = 0.8  # uncertain, but right next to the painted slice
    uncertainty[..., 9] = 0.5  # less uncertain, far from it
    uncertainty[..., 11] = np.nan  # not predicted: scores 0
    labels = np.zeros((4, 5, 12), np.uint8)
    labels[0, 0, 1] = 1
    return uncertainty, labels


def test_strategies_rank_uncertainty_distance_and_both():
    uncertainty, labels = _uncertainty_and_painting()
    pick = {s: suggest_slices(None, None, labels, axis=2, strategy=s, uncertainty=uncertainty)[0] for s in
            ("uncertainty", "distance", "uncertainty-distance")}  # fmt: skip
    assert pick["uncertainty"].index == 2 and pick["uncertainty"].uncertainty == pytest.approx(0.8)
    assert pick["distance"].index == 11 and pick["distance"].distance == 10
    assert pick["uncertainty-distance"].index == 9  # 0.5 x 8 slices beats 0.8 x 1 slice
    assert pick["uncertainty-distance"].score == pytest.approx((0.5 / 0.8) * (8 / 10))


def test_coverage_spreads_picks_over_the_predicted_structures_and_never_into_the_air_around_them():
    shape = (20, 20, 12)
    labels = np.zeros(shape, np.uint8)
    labels[..., 5] = 1
    labels[0, 0, 5] = 2  # slice 5 painted, a structure in it
    predicted = np.ones(shape, np.uint8)
    predicted[2:14, 2:14, 3:9] = 2  # the model finds the structure on slices 3-8 (144 voxels each) ...
    predicted[0, 0, 10] = 2  # ... and a stray voxel on slice 10 (under 1 % of 144: not part of the extent)
    uncertainty = np.zeros(shape, np.float32)
    uncertainty[..., 11] = 0.9  # air far away, uncertain: uncertainty-distance's pick
    uncertainty[..., 3] = 0.2  # breaks the tie between slices 3 and 8
    pick = {s: suggest_slices(None, None, labels, 4, axis=2, strategy=s, uncertainty=uncertainty, predicted=predicted)
            for s in ("coverage", "uncertainty-distance")}  # fmt: skip
    # the midpoint of the larger gap (6-8, the slices 2 and 9 counting as painted), then of the other (3-4)
    assert [p.index for p in pick["coverage"]][:2] == [7, 3]
    assert {p.index for p in pick["coverage"]} <= set(range(3, 9))
    assert pick["uncertainty-distance"][0].index == 11
    predicted[0:2, 0:2, 10] = 2  # 4 voxels: the extent now reaches slice 10
    coverage = {"axis": 2, "strategy": "coverage", "uncertainty": uncertainty, "predicted": predicted}
    assert suggest_slices(None, None, labels, **coverage)[0].index == 8
    labels[..., 3:11] = 1  # the structures' slices all painted: coverage falls back to the farthest slice
    assert suggest_slices(None, None, labels, **coverage)[0].index == 0
    with pytest.raises(InputError, match="image"):
        suggest_slices(None, None, labels, axis=2, uncertainty=uncertainty)


def test_layout_picks_the_slice_of_the_next_even_layout_farthest_from_the_painting_where_midpoints_drift():
    shape = (31, 6, 6)
    labels = np.zeros(shape, np.uint8)
    labels[15] = 1
    labels[15, 0, 0] = 2  # the protocol's one slice of 31, a structure on every slice
    predicted = np.ones(shape, np.uint8)
    predicted[:, 1:4, 1:4] = 2
    uncertainty = np.zeros(shape, np.float32)
    uncertainty[20] = 0.3  # breaks the tie between the two-slice layout's 10 and 20
    pick = {s: [p.index for p in suggest_slices(None, None, labels, 4, axis=0, strategy=s, uncertainty=uncertainty,
                                                predicted=predicted)] for s in ("layout", "coverage")}  # fmt: skip
    assert pick["layout"] == [20, 8, 24, 5]  # of [10, 20], then of [8, 15, 22], [6, 12, 18, 24], [5, ..., 25]
    assert pick["coverage"] == [7, 23, 3, 11]  # midpoints: gaps of 4 below slice 15 and of 8 above it
    even = np.array([5, 10, 15, 20, 25])  # the protocol's 5 slices of 31
    drift = {s: np.abs(np.sort([15, *p]) - even).max() for s, p in pick.items()}
    assert drift == {"layout": 2, "coverage": 5}
    first = suggest_slices(None, None, labels, axis=0, uncertainty=uncertainty, predicted=predicted)[0]  # the default
    assert (first.index, first.distance, first.score) == (20, 5, pytest.approx(1.0 + 1e-6))
    predicted[:5] = predicted[26:] = 1  # the extent: slices 5-25
    labels[0] = 1  # background painted outside it: not one of its n, so the 2-slice layout [12, 18], not [10, 15, 20]
    assert suggest_slices(None, None, labels, axis=0, uncertainty=uncertainty, predicted=predicted)[0].index == 12
    predicted[:] = 1
    labels[15, 0, 0] = 1  # nothing marks an extent: the farthest slice from the painted 0 and 15
    assert suggest_slices(None, None, labels, axis=0, uncertainty=uncertainty, predicted=predicted)[0].index == 30
    labels[:], predicted[:] = 0, 1
    labels[11:14] = 1  # slices 11-13 of an extent of 10-14 painted: the 4-slice layout rounds to 11, 12, 12, 13
    labels[12, 0, 0] = predicted[10:15, 0, 0] = 2
    both = {s: suggest_slices(None, None, labels, axis=0, strategy=s, uncertainty=uncertainty, predicted=predicted)
            for s in ("layout", "coverage")}  # fmt: skip
    assert both["layout"] == both["coverage"] and both["layout"][0].index in (10, 14)  # coverage's pick


def test_greedy_picks_count_earlier_picks_as_painted_and_stop_when_all_are_painted():
    uncertainty, labels = _uncertainty_and_painting()
    picks = suggest_slices(None, None, labels, 3, axis=2, strategy="distance", uncertainty=uncertainty)
    assert [p.index for p in picks] == [11, 6, 9]  # farthest, the middle of the gap, then (ties) the uncertain one
    labels[0, 0, :] = 1
    assert suggest_slices(None, None, labels, 2, axis=2, strategy="uncertainty", uncertainty=uncertainty) == []
    with pytest.raises(InputError, match="3D volumes only"):
        suggest_slices(None, None, labels[..., 0], uncertainty=uncertainty[..., 0])


def test_cli_suggest_prints_the_slices_the_python_call_returns(data_3d, fast_config, tmp_path, capsys):
    model = train_model(data_3d, fast_config)
    model.save(tmp_path / "m.safetensors")
    write_image(tmp_path / "image.npy", data_3d.image)
    write_image(tmp_path / "labels.npy", data_3d.labels)
    expected = suggest_slices(model, data_3d.image, data_3d.labels, 2, device="cpu")
    argv = ["suggest", str(tmp_path / "m.safetensors"), str(tmp_path / "image.npy"), str(tmp_path / "labels.npy")]
    assert main([*argv, "-k", "2", "--json", "--device", "cpu"]) == 0
    printed = json.loads(capsys.readouterr().out)["slices"]
    assert [p["index"] for p in printed] == [p.index for p in expected]
    assert all(p["index"] not in (1, 4) and p["axis"] == 0 for p in printed)  # painted slices 1 and 4, axis 0
    assert main(argv) == 0 and f"slice {expected[0].index} along axis 0" in capsys.readouterr().out
