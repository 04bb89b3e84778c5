"""The contrastseg command: train/predict/info round trip on NIfTI (affine kept), JSON events, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest
import tifffile

from napari_contrastseg.cli import main
from napari_contrastseg.samples import load_sample

FAST = ["--iterations", "3", "--batch-size", "2", "--patch-size", "32", "--features", "8,16,32", "--device", "cpu"]


@pytest.fixture(scope="module")
def oblique_nifti(tmp_path_factory):
    """The colin27 sample cropped small, saved with an oblique, anisotropic affine."""
    s = load_sample("colin27-deep")
    folder = tmp_path_factory.mktemp("nifti")
    affine = np.array([[0.9, 0.2, 0, 10], [-0.2, 0.9, 0, -20], [0, 0, 2.5, 5], [0, 0, 0, 1]])
    nib.save(nib.Nifti1Image(s.image[:, :, 10:40], affine), folder / "image.nii.gz")
    nib.save(nib.Nifti1Image(s.painted[:, :, 10:40], affine), folder / "labels.nii.gz")
    return folder, affine


def test_train_predict_info_round_trip_keeps_the_affine(oblique_nifti, tmp_path, capsys):
    folder, affine = oblique_nifti
    model = tmp_path / "model.safetensors"
    train = ["train", str(folder / "image.nii.gz"), str(folder / "labels.nii.gz"), "-o", str(model), "--norm", "group"]
    assert main([*train, *FAST, "--filters", "none", "--forest-blend", "0", "--no-through-plane"]) == 0
    out = tmp_path / "pred.nii.gz"
    assert main(["predict", str(model), str(folder / "image.nii.gz"), "-o", str(out), "--uncertainty"]) == 0
    pred = nib.load(out)
    np.testing.assert_allclose(pred.affine, affine, atol=1e-5)
    assert pred.shape == (90, 78, 30) and np.asarray(pred.dataobj).dtype == np.uint8
    assert nib.load(tmp_path / "pred_uncertainty.nii.gz").shape == (90, 78, 30)
    capsys.readouterr()
    assert main(["info", str(model)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["spacing"] == pytest.approx([0.922, 0.922, 2.5], abs=1e-3) and info["slice_axis"] == 2
    # no filter bank, no smoothing: no "filters" key, and format 1, which versions from before the filter bank read
    assert info["network"] == {"features": [8, 16, 32], "dropout": 0.0, "norm": "group", "context": 0}
    assert info["format_version"] == 1


def test_warm_start_keeps_the_models_network_unless_told_otherwise(oblique_nifti, tmp_path, capsys):
    folder, _ = oblique_nifti
    first, second = tmp_path / "first.safetensors", tmp_path / "second.safetensors"
    data = [str(folder / "image.nii.gz"), str(folder / "labels.nii.gz")]
    assert main(["train", *data, "-o", str(first), "--norm", "group", "--filters", "1,3", *FAST]) == 0
    no_widths = [a for a in FAST if a not in ("--features", "8,16,32")]
    assert main(["train", *data, "-o", str(second), "--warm-start", str(first), *no_widths]) == 0
    capsys.readouterr()
    assert main(["info", str(second)]) == 0
    assert json.loads(capsys.readouterr().out)["network"] == {
        "features": [8, 16, 32],
        "dropout": 0.0,
        "norm": "group",
        "context": 0,
        "filters": [1.0, 3.0],
        "through_plane": True,
    }
    third = tmp_path / "third.safetensors"
    assert main(["train", *data, "-o", str(third), "--warm-start", str(first), "--norm", "batch", *FAST]) == 1
    assert "uses group normalisation and this run asks for batch" in capsys.readouterr().err
    fourth = tmp_path / "fourth.safetensors"
    assert main(["train", *data, "-o", str(fourth), "--warm-start", str(first), "--filters", "none", *FAST]) == 1
    assert "filter bank has scales 1,3 and this run asks for none" in capsys.readouterr().err
    for bad in ("1,-2", "nan", "2,x"):
        with pytest.raises(SystemExit):
            main(["train", *data, "-o", str(fourth), "--filters", bad, *FAST])
        assert f"expected positive scales such as 1,2,4,8, or none; got '{bad}'" in capsys.readouterr().err


def test_forest_labels_reach_the_training_run(oblique_nifti, tmp_path, capsys):
    folder, _ = oblique_nifti
    model = tmp_path / "forest.safetensors"
    data = [str(folder / "image.nii.gz"), str(folder / "labels.nii.gz")]
    assert main(["train", *data, "-o", str(model), "--forest-labels", "--forest-gate", "0", *FAST]) == 0
    capsys.readouterr()
    assert main(["info", str(model)]) == 0
    training = json.loads(capsys.readouterr().out)["training"]
    assert training["config"]["forest"]["enabled"] is True and training["config"]["forest"]["gate"] == 0
    assert training["forest"]["used"] is True  # no gate: the labels are used whatever the forest's held-out Dice
    gate = 1.0 if training["forest"]["held_out_dice"] < 1 else 0.0  # a gate the forest just failed
    assert main(["train", *data, "-o", str(tmp_path / "gated.safetensors"), "--forest-labels", "--forest-gate",
                 str(gate), *FAST]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["info", str(tmp_path / "gated.safetensors")]) == 0
    assert json.loads(capsys.readouterr().out)["training"]["forest"]["used"] is (gate == 0.0)


def test_grown_pseudo_labels_reach_the_training_run(oblique_nifti, tmp_path, capsys):
    folder, _ = oblique_nifti
    model = tmp_path / "grown.safetensors"
    data = [str(folder / "image.nii.gz"), str(folder / "labels.nii.gz")]
    assert main(["train", *data, "-o", str(model), "--grow", *FAST]) == 0
    capsys.readouterr()
    assert main(["info", str(model)]) == 0
    training = json.loads(capsys.readouterr().out)["training"]
    assert training["config"]["growth"]["enabled"] is True
    assert training["growth"]["growths"] == 2  # after steps 1 and 2 of 3 (from a quarter of the budget, every eighth)


def test_predict_a_folder_of_tiffs_and_npy(oblique_nifti, tmp_path):
    folder, _ = oblique_nifti
    model = tmp_path / "m.safetensors"
    main(["train", str(folder / "image.nii.gz"), str(folder / "labels.nii.gz"), "-o", str(model), *FAST])
    images = tmp_path / "in"
    images.mkdir()
    volume = nib.load(folder / "image.nii.gz").get_fdata(dtype=np.float32)
    tifffile.imwrite(images / "a.tif", volume)
    np.save(images / "b.npy", volume)
    assert main(["predict", str(model), str(images), "-o", str(tmp_path / "out")]) == 0
    assert tifffile.imread(tmp_path / "out" / "a_labels.tif").shape == volume.shape
    assert np.load(tmp_path / "out" / "b_labels.npy").shape == volume.shape


def test_events_jsonl_for_other_programs(oblique_nifti, tmp_path):
    folder, _ = oblique_nifti
    model = tmp_path / "model.safetensors"
    cmd = [sys.executable, "-m", "napari_contrastseg", "train", str(folder / "image.nii.gz"),
           str(folder / "labels.nii.gz"), "-o", str(model), "--events", "jsonl", *FAST]  # fmt: skip
    lines = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.splitlines()
    events = [json.loads(line) for line in lines]
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "started" and kinds.count("step") == 3 and kinds[-2:] == ["finished", "saved"]
    assert set(kinds) == {"started", "step", "estimate", "finished", "saved"}  # estimated Dice on held-out paint
    assert 0 <= events[-2]["estimate"]["mean"] <= 1 and events[-2]["stop_reason"] == "iterations"
    assert events[1]["losses"]["total"] > 0 and events[-1]["path"] == str(model) and model.is_file()


def test_an_estimate_from_one_painted_slice_says_what_it_cannot_see(oblique_nifti, tmp_path, capsys):
    folder, affine = oblique_nifti
    painted = np.asarray(nib.load(folder / "labels.nii.gz").dataobj)
    first = int(np.flatnonzero(painted.any(axis=(0, 1)))[0])
    one = np.zeros_like(painted)
    one[:, :, first] = painted[:, :, first]
    nib.save(nib.Nifti1Image(one, affine), tmp_path / "one.nii.gz")
    train = ["train", str(folder / "image.nii.gz"), str(tmp_path / "one.nii.gz"), "-o", str(tmp_path / "m.safetensors")]
    capsys.readouterr()
    assert main([*train, *FAST]) == 0
    said = capsys.readouterr().out
    assert "estimated Dice" in said and "only painted slice" in said and "paint a second slice" in said


@pytest.mark.parametrize(
    ("files", "message"),
    [(("image.xyz", "labels.nii.gz"), "unknown image format"), (("missing.nii.gz", "labels.nii.gz"), "No file")],
)
def test_bad_files_give_a_clear_error_and_exit_1(oblique_nifti, tmp_path, capsys, files, message):
    folder, _ = oblique_nifti
    (folder / "image.xyz").write_text("?")
    args = ["train", str(folder / files[0]), str(folder / files[1]), "-o", str(tmp_path / "m"), *FAST]
    assert main(args) == 1
    assert message in capsys.readouterr().err


def test_unreadable_file_is_reported(tmp_path, capsys):
    bad = tmp_path / "broken.nii.gz"
    bad.write_bytes(b"not a nifti")
    assert main(["train", str(bad), str(bad), "-o", str(tmp_path / "m")]) == 1
    assert "Could not read" in capsys.readouterr().err
