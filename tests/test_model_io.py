"""Model files: safetensors + JSON metadata round trip; pickles, tampering, truncation and newer formats refused."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import torch

from napari_contrastseg.core.errors import ModelFileError
from napari_contrastseg.core.model import load_model
from napari_contrastseg.core.model_io import read_model_info
from napari_contrastseg.core.trainer import train_model


@pytest.fixture
def saved(data_2d, fast_config, tmp_path):
    model = train_model(data_2d, fast_config)
    return model, model.save(tmp_path / "model")


def test_round_trip_keeps_weights_metadata_and_predictions(saved, data_2d):
    model, path = saved
    assert path.suffix == ".safetensors"
    loaded = load_model(path)
    assert loaded.info == model.info
    for key, value in model.network.state_dict().items():
        assert torch.equal(value, loaded.network.state_dict()[key])
    a, b = model.predict(data_2d.image), loaded.predict(data_2d.image)
    assert np.array_equal(a.labels, b.labels)
    info = read_model_info(path)
    assert info.class_names == ["background", "class 2"] and info.format_version == model.info.format_version
    assert info.normalization.mode == "percentile" and info.training["iterations"] == 6


@pytest.mark.parametrize("zipped", [True, False], ids=["zip", "legacy"])
def test_pickled_checkpoint_is_refused(saved, tmp_path, zipped):
    model, _ = saved
    path = tmp_path / "model.pt"
    torch.save(model.network.state_dict(), path, _use_new_zipfile_serialization=zipped)
    with pytest.raises(ModelFileError, match="pickle"):
        load_model(path)


def test_header_length_starting_like_a_pickle_still_loads(saved):
    """A header of 0x..80 bytes starts the file with 0x80, pickle's first opcode: such a model must still load."""
    _, path = saved

    def pad(header):
        blob_len = len(json.dumps(header).encode())
        header["__metadata__"]["pad"] = "x" * ((0x80 - blob_len - len(', "pad": ""')) % 256)

    _rewrite_metadata(path, pad)
    assert path.read_bytes()[0] == 0x80
    assert load_model(path).info.class_names == ["background", "class 2"]


def test_tampered_weights_are_refused(saved):
    _, path = saved
    raw = bytearray(path.read_bytes())
    raw[-100] ^= 0xFF  # flip bits inside the tensor data
    path.write_bytes(bytes(raw))
    with pytest.raises(ModelFileError, match="altered"):
        load_model(path)


def test_truncated_file_is_refused(saved):
    _, path = saved
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(ModelFileError, match="truncated|damaged"):
        load_model(path)


def _rewrite_metadata(path, change):
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    change(header)
    blob = json.dumps(header).encode()
    blob += b" " * (-len(blob) % 8)
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + raw[8 + n :])


def test_newer_format_asks_for_an_upgrade(saved):
    _, path = saved

    def bump(header):
        meta = json.loads(header["__metadata__"]["contrastseg"])
        meta["format_version"] = 99
        header["__metadata__"]["contrastseg"] = json.dumps(meta)

    _rewrite_metadata(path, bump)
    with pytest.raises(ModelFileError, match="upgrade"):
        load_model(path)


def test_safetensors_without_our_metadata_is_not_a_model(saved):
    _, path = saved
    _rewrite_metadata(path, lambda header: header.pop("__metadata__"))
    with pytest.raises(ModelFileError, match="not a napari-contrastseg model"):
        load_model(path)


@pytest.mark.parametrize("content", [b"", b"hello", b"\x00" * 64])
def test_garbage_and_missing_files_are_refused(tmp_path, content):
    path = tmp_path / "x.safetensors"
    path.write_bytes(content)
    with pytest.raises(ModelFileError):
        load_model(path)
    with pytest.raises(ModelFileError, match="No model file"):
        load_model(tmp_path / "missing.safetensors")
