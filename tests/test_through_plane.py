"""A 2D network's volume predictions smoothed through the plane: each slice's probabilities averaged with its
neighbours', the same in memory, out of core and from a saved model; off for older model files."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import tifffile
import torch
from conftest import disk_columns

from napari_contrastseg.cli import main
from napari_contrastseg.core.chunked import predict_to_zarr
from napari_contrastseg.core.config import ForestConfig, NetworkConfig, TrainConfig
from napari_contrastseg.core.data import SegmentationData
from napari_contrastseg.core.events import Preview
from napari_contrastseg.core.inference import smooth_through_plane
from napari_contrastseg.core.model import TrainedModel, load_model
from napari_contrastseg.core.model_info import ModelInfo
from napari_contrastseg.core.model_io import read_model_info
from napari_contrastseg.core.trainer import PreviewRequest, train, train_model


def _smoothed(p: np.ndarray, axis: int) -> np.ndarray:
    """``(p[z-1] + 2 p[z] + p[z+1]) / 4`` along ``axis``, edges repeated: the definition, written out."""
    padded = np.concatenate([np.take(p, [0], axis), p, np.take(p, [-1], axis)], axis)
    n = p.shape[axis]
    parts = [np.take(padded, range(i, i + n), axis) for i in range(3)]
    return (parts[0] + 2 * parts[1] + parts[2]) / 4


@pytest.mark.parametrize("sizes", [[1, 3, 2, 1], [4], [1], [2, 2, 2], [1, 1, 1]])
def test_the_stream_of_batches_is_smoothed_as_the_whole_stack_would_be(sizes):
    p = torch.rand(sum(sizes), 3, 4, 5)
    batches = torch.split(p, sizes)
    out = list(smooth_through_plane(iter(batches)))
    assert sum(len(b) for b in out) == len(p)
    np.testing.assert_allclose(torch.cat(out).numpy(), _smoothed(p.numpy(), 0), rtol=1e-6)


@pytest.fixture(scope="module")
def smoothing_model() -> tuple[TrainedModel, np.ndarray]:
    """A 2D network on a volume (slice axis 0) with a forest blended in, and the volume."""
    image, painted = disk_columns()
    config = TrainConfig(iterations=4, time_budget=None, batch_size=2, patch_size=32, device="cpu",
                         network=NetworkConfig((8, 16, 32)), forest=ForestConfig(blend=0.5, trees=4))  # fmt: skip
    config.holdout.fraction = 0.0
    return train_model(SegmentationData(image, painted), config), image


def test_volume_predictions_are_the_slice_by_slice_ones_smoothed(smoothing_model):
    model, image = smoothing_model
    assert model.info.network.through_plane and model.info.smooths_slices
    smoothed = model.predict(image, batch_size=3)
    flat_info = replace(model.info, network=replace(model.info.network, through_plane=False))
    flat = TrainedModel(model.network, flat_info, model.forest).predict(image, batch_size=3)
    expected = _smoothed(flat.probabilities, 1)
    np.testing.assert_allclose(smoothed.probabilities, expected, atol=1e-5)
    assert np.array_equal(smoothed.labels, expected.argmax(0) + 1)
    assert not np.allclose(smoothed.probabilities, flat.probabilities)  # it does change something
    flat_model = TrainedModel(model.network, flat_info, model.forest)
    one_slice = model.predict(image[5]).probabilities  # a 2D image: nothing to smooth across
    np.testing.assert_allclose(one_slice, flat_model.predict(image[5]).probabilities, atol=1e-6)


def test_out_of_core_slabs_smooth_across_their_edges_as_in_memory(smoothing_model, tmp_path):
    model, image = smoothing_model
    in_memory = model.predict(image, batch_size=2, probabilities=False)
    group = predict_to_zarr(model, image, tmp_path / "out.zarr", block=4, batch_size=2)  # slabs of 4 slices
    assert np.array_equal(np.asarray(group["labels"]), in_memory.labels)
    np.testing.assert_allclose(np.asarray(group["uncertainty"]), in_memory.uncertainty, atol=1e-3)  # float16


def test_the_model_file_says_so_and_older_files_keep_their_predictions(smoothing_model, tmp_path):
    model, image = smoothing_model
    path = model.save(tmp_path / "m.safetensors")
    info = read_model_info(path)
    assert info.network.through_plane and info.format_version == 4  # older versions refuse it, not misread it
    again = load_model(path).predict(image)
    np.testing.assert_allclose(again.probabilities, model.predict(image).probabilities, atol=1e-6)
    values = json.loads(json.dumps(model.info.to_dict()))
    del values["network"]["through_plane"]  # a file from before the option
    assert ModelInfo.from_dict(values).network.through_plane is False
    off = replace(model.info, network=replace(model.info.network, through_plane=False))
    assert "through_plane" not in off.to_dict()["network"] and off.oldest_format() == 3
    volume_net = replace(model.info, spatial_dims=3, forest_weight=0.0)  # 3D networks do not slice
    assert not volume_net.smooths_slices and volume_net.oldest_format() == 2


def test_slabs_along_another_axis_with_neighbour_channels_smooth_as_in_memory(tmp_path):
    image, painted = disk_columns(depth=17)
    image, painted = np.moveaxis(image, 0, 2), np.moveaxis(painted, 0, 2)  # slices along the last axis
    config = TrainConfig(iterations=3, time_budget=None, batch_size=2, patch_size=32, device="cpu",
                         network=NetworkConfig((8, 16, 32), context=1), forest=ForestConfig(blend=0.0))  # fmt: skip
    config.holdout.fraction = 0.0
    model = train_model(SegmentationData(image, painted), config)
    assert model.info.slice_axis == 2 and model.info.smooths_slices
    in_memory = model.predict(image, batch_size=2, probabilities=False)
    for block in (2, 3, 17):  # slabs of whole batches, of odd sizes, and the whole volume
        group = predict_to_zarr(model, image, tmp_path / f"b{block}.zarr", block=block, batch_size=2)
        assert np.array_equal(np.asarray(group["labels"]), in_memory.labels)
        np.testing.assert_allclose(np.asarray(group["uncertainty"]), in_memory.uncertainty, atol=1e-3)


def test_a_model_of_2d_images_keeps_an_older_format_and_the_live_preview_is_smoothed_too(tmp_path):
    image, painted = disk_columns()
    config = TrainConfig(iterations=4, time_budget=None, batch_size=2, patch_size=32, device="cpu", preview_every=4,
                         network=NetworkConfig((8, 16, 32)), forest=ForestConfig(blend=0.0))  # fmt: skip
    config.holdout.fraction = 0.0
    flat = train_model(SegmentationData(image[3], painted[3]), config)  # a 2D image: no slices to smooth across
    assert not flat.info.network.through_plane and flat.info.oldest_format() == 2
    events = list(train(SegmentationData(image, painted), config, preview=PreviewRequest(index=7)))
    preview = [e for e in events if isinstance(e, Preview)][-1]
    model = events[-1].model
    assert preview.iteration == 4 and model.info.smooths_slices  # the returned weights are the previewed ones
    whole = model.predict(image, probabilities=False)
    np.testing.assert_allclose(preview.uncertainty, whole.uncertainty[7], atol=1e-5)


def test_the_command_line_turns_it_off_and_continue_keeps_the_models_choice(tmp_path, capsys):
    image, painted = disk_columns(depth=17)
    tifffile.imwrite(tmp_path / "image.tif", image)
    tifffile.imwrite(tmp_path / "labels.tif", painted)
    data = [str(tmp_path / "image.tif"), str(tmp_path / "labels.tif")]
    fast = ["--iterations", "2", "--batch-size", "2", "--patch-size", "32", "--features", "8,16,32", "--device", "cpu"]
    off, again, on = (tmp_path / f"{n}.safetensors" for n in ("off", "again", "on"))
    assert main(["train", *data, "-o", str(off), "--no-through-plane", *fast]) == 0
    assert main(["train", *data, "-o", str(again), "--warm-start", str(off), *fast]) == 0
    assert main(["train", *data, "-o", str(on), "--warm-start", str(off), "--through-plane", *fast]) == 0
    assert [read_model_info(p).network.through_plane for p in (off, again, on)] == [False, False, True]
