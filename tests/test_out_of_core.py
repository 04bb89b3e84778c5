"""Out-of-core prediction: zarr / memory-mapped TIFF / OME-Zarr read lazily, results written to zarr block by block,
equal to in-memory prediction; the CLI's zarr path and its errors."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import tifffile
import zarr
from conftest import disk_columns

from napari_contrastseg.cli import main
from napari_contrastseg.core.chunked import predict_to_zarr
from napari_contrastseg.core.config import HoldoutConfig, NetworkConfig, NormalizationConfig, TrainConfig
from napari_contrastseg.core.data import SegmentationData
from napari_contrastseg.core.errors import FileFormatError, InputError
from napari_contrastseg.core.image_io import read_image
from napari_contrastseg.core.normalization import intensity_ranges
from napari_contrastseg.core.trainer import train_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def volume() -> np.ndarray:
    return disk_columns()[0]


def _train(dims: str, patch: int, features: tuple[int, ...]):
    image, painted = disk_columns()
    config = TrainConfig(
        iterations=40, batch_size=2, patch_size=patch, dims=dims, device="cpu", network=NetworkConfig(features),
        holdout=HoldoutConfig(fraction=0.0),
    )  # fmt: skip
    return train_model(SegmentationData(image, painted), config)


@pytest.fixture(scope="module")
def model_2d():
    return _train("2d", 32, (8, 16, 32))


@pytest.fixture(scope="module")
def model_3d():
    return _train("3d", 16, (8, 16))


def _zarr(path, array, chunks):
    return zarr.create_array(store=str(path), data=array, chunks=chunks)


def test_2d_model_slabs_from_zarr_equal_in_memory_prediction(model_2d, volume, tmp_path):
    source = _zarr(tmp_path / "in.zarr", volume, (4, 16, 16))
    expected = model_2d.predict(volume, batch_size=4, device="cpu", probabilities=False)
    assert len(np.unique(expected.labels)) == 2  # a real segmentation, not one class everywhere
    seen = []
    group = predict_to_zarr(
        model_2d, source, tmp_path / "out.zarr", block=8, batch_size=4, device="cpu", spacing=(2.0, 1.0, 1.0),
        progress=lambda done, total: seen.append((done, total)),
    )  # fmt: skip
    np.testing.assert_array_equal(group["labels"][:], expected.labels)
    assert group["uncertainty"].dtype == np.float16
    np.testing.assert_allclose(group["uncertainty"][:], expected.uncertainty, atol=1e-3)
    assert seen[-1] == (21, 21) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    stored = zarr.open_group(str(tmp_path / "out.zarr"), mode="r")
    assert stored.attrs["spacing"] == [2.0, 1.0, 1.0] and stored.attrs["class_names"] == model_2d.info.class_names


def test_3d_model_blocks_with_halo_equal_in_memory_prediction(model_3d, volume, tmp_path):
    """Blocks of 16 voxels (2 x 3 x 4 of them) with 16-voxel tiles: only float rounding may differ, so at most
    one voxel in a thousand may change its label (none did when this was written)."""
    source = _zarr(tmp_path / "in.zarr", volume, (8, 16, 16))
    expected = model_3d.predict(volume, batch_size=4, device="cpu", probabilities=False)
    assert len(np.unique(expected.labels)) == 2
    group = predict_to_zarr(
        model_3d, source, tmp_path / "out.zarr", block=16, batch_size=4, device="cpu", uncertainty=False
    )
    assert "uncertainty" not in group and group["labels"].chunks == (16, 16, 16)
    assert np.mean(group["labels"][:] != expected.labels) <= 1e-3


def test_streamed_percentiles_are_those_of_the_whole_array(tmp_path):
    """Two channels of 8.8 M voxels, channel axis last, read in two slabs: the percentiles of every 4th voxel."""
    rng = np.random.default_rng(0)
    image = (rng.gamma(2.0, 300.0, size=(260, 200, 170, 2))).astype(np.uint16)
    source = _zarr(tmp_path / "big.zarr", image, (32, 200, 170, 2))
    config = NormalizationConfig(low=0.5, high=99.5)
    got = intensity_ranges(source, -1, config)
    for c in range(2):
        flat = image[..., c].astype(np.float32).reshape(-1)
        expected = np.percentile(flat[:: flat.size // 2_000_000], [0.5, 99.5])
        assert got[c] == (float(expected[0]), float(expected[1]))


def test_memory_mapped_tiff_is_predicted_like_the_array(model_2d, volume, tmp_path):
    tifffile.imwrite(tmp_path / "plain.tif", volume)
    image = read_image(tmp_path / "plain.tif", lazy=True).array
    assert isinstance(image, np.memmap) and image.shape == volume.shape
    group = predict_to_zarr(model_2d, image, tmp_path / "out.zarr", block=8, device="cpu", batch_size=4)
    expected = model_2d.predict(volume, batch_size=4, device="cpu", probabilities=False)
    np.testing.assert_array_equal(group["labels"][:], expected.labels)
    tifffile.imwrite(tmp_path / "packed.tif", volume, compression="zlib")  # not mappable: read through zarr
    packed = read_image(tmp_path / "packed.tif", lazy=True).array
    assert not isinstance(packed, np.ndarray) and np.array_equal(packed[4:6, 10:20], volume[4:6, 10:20])


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_ome_zarr_level_0_and_spacing(tmp_path, version):
    data = np.arange(4 * 6 * 8, dtype=np.uint16).reshape(1, 1, 4, 6, 8)
    path = tmp_path / "image.ome.zarr"
    group = zarr.open_group(str(path), mode="w", zarr_format=2 if version == "0.4" else 3)
    group.create_array("0", data=data, chunks=(1, 1, 2, 6, 8))
    group.create_array("1", data=data[:, :, :, ::2, ::2])
    axes = [{"name": "t", "type": "time"}, {"name": "c", "type": "channel"}]
    axes += [{"name": n, "type": "space", "unit": "micrometer"} for n in "zyx"]
    scale = [{"type": "scale", "scale": [1.0, 1.0, 2.0, 0.5, 0.25]}]
    datasets = [{"path": "0", "coordinateTransformations": scale}, {"path": "1", "coordinateTransformations": scale}]
    multiscales = [{"version": version, "axes": axes, "datasets": datasets,
                    "coordinateTransformations": [{"type": "scale", "scale": [1.0, 1.0, 1.0, 2.0, 2.0]}]}]  # fmt: skip
    group.attrs.update({"multiscales": multiscales} if version == "0.4" else {"ome": {"multiscales": multiscales}})
    lazy = read_image(path, lazy=True)
    assert lazy.array.shape == (4, 6, 8) and lazy.spacing == (2.0, 1.0, 0.5)
    np.testing.assert_array_equal(lazy.array[1:3, :, 2:5], data[0, 0, 1:3, :, 2:5])
    eager = read_image(path)
    assert isinstance(eager.array, np.ndarray) and np.array_equal(eager.array, data[0, 0])


def test_cli_predicts_zarr_into_zarr(model_2d, volume, tmp_path, capsys):
    model = model_2d.save(tmp_path / "model.safetensors")
    source = _zarr(tmp_path / "in.zarr", volume, (4, 16, 16))
    source.attrs["spacing"] = [2.5, 1.0, 1.0]
    out = tmp_path / "pred.zarr"
    args = ["--block", "8", "--batch-size", "4", "--device", "cpu"]
    assert main(["predict", str(model), str(tmp_path / "in.zarr"), "-o", str(out), "--uncertainty", *args]) == 0
    expected = model_2d.predict(volume, batch_size=4, device="cpu", probabilities=False)
    labels = read_image(out / "labels", lazy=True)
    np.testing.assert_array_equal(labels.array[:], expected.labels)
    assert labels.spacing == (2.5, 1.0, 1.0) and zarr.open_group(str(out))["uncertainty"].shape == volume.shape
    tifffile.imwrite(tmp_path / "b.tif", volume)
    folder = tmp_path / "preds"
    assert main(["predict", str(model), str(tmp_path / "b.tif"), "-o", str(folder), "--out-of-core", *args]) == 0
    np.testing.assert_array_equal(zarr.open_group(str(folder / "b_labels.zarr"))["labels"][:], expected.labels)
    assert "b.tif ->" in capsys.readouterr().out


def test_bad_zarr_paths_give_clear_errors(model_2d, volume, tmp_path, capsys):
    with pytest.raises(FileFormatError, match="No zarr array or group"):
        read_image(tmp_path / "missing.zarr", lazy=True)
    zarr.open_group(str(tmp_path / "empty.zarr"), mode="w")
    with pytest.raises(FileFormatError, match="group without an image"):
        read_image(tmp_path / "empty.zarr", lazy=True)
    group = zarr.open_group(str(tmp_path / "two.zarr"), mode="w")
    group.create_array("labels", shape=(4, 4), dtype=np.uint8)
    with pytest.raises(FileFormatError, match=r"two.zarr/NAME"):
        read_image(tmp_path / "two.zarr")
    with pytest.raises(InputError, match="data type"):
        predict_to_zarr(model_2d, np.zeros((4, 8, 8), complex), tmp_path / "c.zarr")
    model = str(model_2d.save(tmp_path / "m.safetensors"))
    tifffile.imwrite(tmp_path / "a.tif", volume)
    cases = [
        (["predict", model, str(tmp_path / "empty.zarr"), "-o", str(tmp_path / "o.zarr")], "group without an image"),
        (["predict", model, str(tmp_path / "a.tif"), "-o", str(tmp_path / "o.tif"), "--out-of-core"], "writes zarr"),
        (["predict", model, str(tmp_path / "two.zarr/labels"), "-o", str(tmp_path / "two.zarr")], "overwrite"),
    ]
    for argv, message in cases:
        assert main(argv) == 1
        assert message in capsys.readouterr().err
    assert zarr.open_group(str(tmp_path / "two.zarr"))["labels"].shape == (4, 4)  # the input is untouched


def test_missing_zarr_is_explained(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "zarr", None)  # as if the optional dependency were not installed
    with pytest.raises(FileFormatError, match=r"pip install 'napari-contrastseg\[zarr\]'"):
        read_image(tmp_path / "image.zarr")
