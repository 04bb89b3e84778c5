"""A pixel forest blended into the network's predictions: fitted when training ends, saved in the model file as
arrays, read back without pickle, and used by every way of predicting."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import tifffile
from conftest import disk_columns, disks_2d, strokes

from napari_contrastseg.cli import main
from napari_contrastseg.core.chunked import predict_to_zarr
from napari_contrastseg.core.config import ForestConfig
from napari_contrastseg.core.data import SegmentationData, as_channels_first
from napari_contrastseg.core.errors import ModelFileError, TrainingError
from napari_contrastseg.core.model import TrainedModel, load_model
from napari_contrastseg.core.model_io import read_model_info, write_model_file
from napari_contrastseg.core.normalization import normalize
from napari_contrastseg.core.trainer import train_model

FAST = ["--iterations", "3", "--batch-size", "2", "--patch-size", "32", "--features", "8,16,32", "--device", "cpu"]


@pytest.fixture
def blended(fast_config) -> tuple[TrainedModel, np.ndarray]:
    """A 2D network on a volume with a forest of weight 0.5, and the volume."""
    image, painted = disk_columns()
    fast_config.forest = ForestConfig(blend=0.5, trees=8)
    fast_config.network.through_plane = False  # slice by slice (smoothing: test_through_plane.py)
    return train_model(SegmentationData(image, painted), fast_config), image


def test_the_forest_is_saved_as_arrays_and_loaded_back_with_the_same_predictions(blended, tmp_path):
    model, image = blended
    assert model.forest is not None and model.info.forest_weight == 0.5
    path = model.save(tmp_path / "blend.safetensors")
    info = read_model_info(path)
    assert info.forest_weight == 0.5 and info.format_version == 3  # older versions refuse it instead of ignoring it
    loaded = load_model(path)
    first, again = model.predict(image), loaded.predict(image)
    assert np.array_equal(first.labels, again.labels)
    np.testing.assert_allclose(first.probabilities, again.probabilities, atol=1e-6)


def test_the_prediction_mixes_network_and_forest_by_the_weight(blended):
    model, image = blended
    mixed = model.predict(image).probabilities
    network_alone = TrainedModel(model.network, replace(model.info, forest_weight=0.0)).predict(image).probabilities
    volume = normalize(as_channels_first(image, None), model.info.normalization)
    forest_alone = np.stack([model.forest.probabilities(volume[:, z], 2) for z in range(image.shape[0])], axis=1)
    np.testing.assert_allclose(mixed, 0.5 * network_alone + 0.5 * forest_alone, atol=1e-5)
    assert np.abs(mixed - network_alone).max() > 0.01  # the forest changed something


@pytest.mark.parametrize("context", [0, 1])
def test_out_of_core_prediction_blends_the_forest_too(fast_config, tmp_path, context):
    image, painted = disk_columns()
    fast_config.network = replace(fast_config.network, context=context)  # 1: slabs carry neighbour slices (halo)
    fast_config.forest = ForestConfig(blend=0.5, trees=8)
    model = train_model(SegmentationData(image, painted), fast_config)
    group = predict_to_zarr(model, image, tmp_path / "out.zarr", block=7, uncertainty=True)
    in_memory = model.predict(image)
    assert np.array_equal(np.asarray(group["labels"]), in_memory.labels)
    np.testing.assert_allclose(np.asarray(group["uncertainty"]), in_memory.uncertainty, atol=1e-3)  # stored as float16
    network_alone = TrainedModel(model.network, replace(model.info, forest_weight=0.0)).predict(image)
    assert np.abs(network_alone.uncertainty - in_memory.uncertainty).max() > 0.01  # the forest was in it


def test_a_2d_image_blends_and_the_cli_sets_and_keeps_the_weight(tmp_path, capsys):
    image, truth = disks_2d()
    painted = strokes(truth)
    tifffile.imwrite(tmp_path / "image.tif", image)
    tifffile.imwrite(tmp_path / "labels.tif", painted.astype(np.uint8))
    data = [str(tmp_path / "image.tif"), str(tmp_path / "labels.tif")]
    first = tmp_path / "first.safetensors"
    assert main(["train", *data, "-o", str(first), "--forest-blend", "0.3", *FAST]) == 0
    model = load_model(first)
    assert model.info.forest_weight == 0.3 and model.info.training["forest_blend"]["weight"] == 0.3
    assert model.predict(image).labels.shape == image.shape
    second = tmp_path / "second.safetensors"
    assert main(["train", *data, "-o", str(second), "--warm-start", str(first), "--holdout", "0", *FAST]) == 0
    assert load_model(second).info.forest_weight == 0.3  # Continue starts from the model's weight unless told
    chosen = load_model(second).info.training["forest_blend"]
    assert chosen["weight"] == 0.3 and chosen["held_out_dice"] == {}  # nothing held out: nothing to choose on
    third = tmp_path / "third.safetensors"
    assert main(["train", *data, "-o", str(third), "--warm-start", str(first), "--forest-blend", "0", *FAST]) == 0
    assert load_model(third).forest is None


def test_a_file_whose_metadata_and_trees_disagree_is_refused(blended, tmp_path):
    model, _ = blended
    path = write_model_file(model.network.state_dict(), model.info, tmp_path / "no-trees.safetensors")
    with pytest.raises(ModelFileError, match="forest"):
        load_model(path)
    for name, damage in DAMAGES.items():
        trees = {k: v.clone() for k, v in model.forest.tensors().items()}
        damage(trees)
        path = write_model_file({**model.network.state_dict(), **trees}, model.info, tmp_path / f"{name}.safetensors")
        with pytest.raises(ModelFileError, match="forest"):
            load_model(path)


def _loop(trees: dict) -> None:
    trees["forest.0.left_child"][0] = 0  # the root its own child: a tree walk that never ends


def _split_on_a_missing_feature(trees: dict) -> None:
    trees["forest.0.feature"][0] = 10_000


def _link_outside(trees: dict) -> None:
    trees["forest.0.right_child"][0] = len(trees["forest.0.right_child"]) + 5


def _unknown_class(trees: dict) -> None:
    trees["forest.classes"][-1] = 9


DAMAGES = {
    "missing-thresholds": lambda trees: trees.pop("forest.0.threshold"),
    "loop": _loop,
    "feature": _split_on_a_missing_feature,
    "outside": _link_outside,
    "class": _unknown_class,
    "nan-values": lambda trees: trees["forest.1.values"].fill_(float("nan")),
}


def test_no_forest_for_3d_patches_and_a_weight_outside_0_1_is_refused(data_3d, fast_config):
    fast_config.forest = ForestConfig(blend=0.5, trees=4)
    fast_config.dims = "3d"
    model = train_model(data_3d, fast_config)
    assert model.forest is None and model.info.forest_weight == 0.0
    assert "forest_weight" not in json.loads(json.dumps(model.info.to_dict()))
    fast_config.dims = "2d"
    fast_config.forest = ForestConfig(blend=1.5)
    with pytest.raises(TrainingError, match=r"weight in the prediction must lie in \[0, 1\]"):
        train_model(data_3d, fast_config)
