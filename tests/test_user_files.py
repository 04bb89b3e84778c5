"""Nothing of the user's is overwritten, interrupted writes leave the old file, and common images just work:
colour pictures (PNG/JPEG, channels last) and NRRD volumes, from the CLI without flags."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from conftest import disks_2d, strokes

from napari_contrastseg.cli import main
from napari_contrastseg.core.errors import FileFormatError
from napari_contrastseg.core.image_io import read_image, write_image

FAST = ["--iterations", "3", "--batch-size", "2", "--patch-size", "32", "--features", "8,16,32", "--device", "cpu"]


@pytest.fixture(scope="module")
def picture(tmp_path_factory):
    """An RGB PNG of disks (H, W, 3) with painted strokes as a PNG labels file, and a model trained on them."""
    folder = tmp_path_factory.mktemp("rgb")
    grey, truth = disks_2d((48, 64))
    rgb = np.clip(np.stack([grey, grey * 0.5, 1 - grey], -1) * 120 + 60, 0, 255).astype(np.uint8)
    iio.imwrite(folder / "cells.png", rgb)
    iio.imwrite(folder / "cells_labels.png", strokes(truth).astype(np.uint8))
    model = folder / "model.safetensors"
    assert main(["train", str(folder / "cells.png"), str(folder / "cells_labels.png"), "-o", str(model), *FAST]) == 0
    return folder, model, rgb


def test_colour_pictures_train_and_predict_without_a_channel_flag(picture, tmp_path):
    folder, model, rgb = picture
    assert read_image(folder / "cells.png").array.shape == (48, 64, 3)
    iio.imwrite(tmp_path / "other.jpg", rgb)
    assert main(["predict", str(model), str(folder / "cells.png"), str(tmp_path / "other.jpg"), "-o",
                 str(tmp_path / "out"), "--uncertainty"]) == 0  # fmt: skip
    labels = iio.imread(tmp_path / "out" / "cells_labels.png")
    assert labels.shape == (48, 64) and set(np.unique(labels)) <= {1, 2}
    assert (tmp_path / "out" / "other_labels.png").is_file()  # a JPEG's labels are written losslessly, as PNG
    assert read_image(tmp_path / "out" / "cells_labels_uncertainty.tif").array.dtype == np.float32
    with pytest.raises(FileFormatError, match="JPEG is lossy"):
        write_image(tmp_path / "labels.jpg", labels)


def test_predict_never_writes_over_an_input_or_an_existing_file(picture, tmp_path, capsys):
    folder, model, _ = picture
    image = folder / "cells.png"
    before = image.read_bytes()
    assert main(["predict", str(model), str(image), "-o", str(image)]) == 1  # the in-memory path
    assert "would overwrite the input" in capsys.readouterr().err and image.read_bytes() == before
    assert main(["predict", str(model), str(image), "-o", str(model)]) == 1
    assert "would overwrite the input" in capsys.readouterr().err
    out = tmp_path / "pred.png"
    out.write_bytes(b"someone else's file")
    assert main(["predict", str(model), str(image), "-o", str(out)]) == 1
    assert "exists already" in capsys.readouterr().err and out.read_bytes() == b"someone else's file"
    assert main(["predict", str(model), str(image), "-o", str(out), "--overwrite"]) == 0
    assert iio.imread(out).shape == (48, 64)
    # a folder into itself: cells_labels.png (an input) would be the output of cells.png
    assert main(["predict", str(model), str(folder), "-o", str(folder)]) == 1
    assert "would overwrite the input" in capsys.readouterr().err


def test_train_never_writes_over_its_inputs_or_an_existing_model(picture, capsys):
    folder, model, _ = picture
    data = [str(folder / "cells.png"), str(folder / "cells_labels.png")]
    before = model.read_bytes()
    assert main(["train", *data, "--warm-start", str(model), "-o", str(model), "--overwrite", *FAST]) == 1
    assert "would overwrite the input" in capsys.readouterr().err
    assert main(["train", *data, "-o", str(model), *FAST]) == 1
    assert "exists already" in capsys.readouterr().err and model.read_bytes() == before


def test_a_killed_model_write_leaves_the_old_file_intact(picture, tmp_path):
    _, model, _ = picture
    target = tmp_path / "model.safetensors"
    target.write_bytes(model.read_bytes())
    before = target.read_bytes()
    child = textwrap.dedent(
        f"""
        import sys, time
        import safetensors.torch
        from napari_contrastseg.core.model import load_model

        def slow_save(tensors, path, metadata=None):  # writes half a file, then hangs until killed
            with open(path, "wb") as f:
                f.write(b"x" * 1000)
                f.flush()
                print("writing", flush=True)
                time.sleep(60)

        import napari_contrastseg.core.model_io as model_io
        model_io.save_file = slow_save
        load_model({str(model)!r}).save({str(target)!r})
        """
    )
    process = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "writing"
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert target.read_bytes() == before  # the half file never took the good one's name
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != target.name]
    assert all(name.startswith(".") and ".partial" in name for name in leftovers)  # hidden, and named so


def test_a_failed_write_removes_its_temporary_file(tmp_path, monkeypatch):
    import tifffile

    target = tmp_path / "labels.tif"
    target.write_bytes(b"old")

    def broken(path, *args, **kwargs):
        Path(path).write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(tifffile, "imwrite", broken)
    with pytest.raises(OSError, match="disk full"):
        write_image(target, np.zeros((4, 4), np.uint8))
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["labels.tif"]


def test_nrrd_volumes_read_in_nifti_order_and_write_back_on_their_grid(tmp_path):
    import nrrd

    data = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)
    header = {"space": "left-posterior-superior", "space directions": np.diag([0.5, 0.7, 2.0]),
              "space origin": np.array([10.0, 20.0, -5.0])}  # fmt: skip
    nrrd.write(str(tmp_path / "scan.nrrd"), data, header)
    image = read_image(tmp_path / "scan.nrrd")
    np.testing.assert_array_equal(image.array, data)
    assert image.spacing == pytest.approx((0.5, 0.7, 2.0))
    np.testing.assert_allclose(image.affine[:3, 3], [-10.0, -20.0, -5.0])  # LPS origin as RAS
    write_image(tmp_path / "labels.nrrd", (data > 50).astype(np.uint8), like=image)
    back, back_header = nrrd.read(str(tmp_path / "labels.nrrd"))
    assert back.shape == data.shape and back_header["space"] == "left-posterior-superior"
    np.testing.assert_allclose(back_header["space directions"], header["space directions"])
    write_image(tmp_path / "labels.nii.gz", (data > 50).astype(np.uint8), like=image)  # NRRD in, NIfTI out
    np.testing.assert_allclose(read_image(tmp_path / "labels.nii.gz").affine, image.affine)


def test_demo_replaces_only_its_own_files(tmp_path, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"a model the demo did not write")
    assert main(["demo", "-o", str(folder), "--iterations", "1"]) == 1
    assert "not written by this demo" in capsys.readouterr().err
    assert (folder / "model.safetensors").read_bytes() == b"a model the demo did not write"
