"""Many images, one model: pairing files, checking the collection, sampling across images, training, the CLI."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from conftest import disks_2d, strokes

from napari_contrastseg.cli import main
from napari_contrastseg.core.config import TrainConfig
from napari_contrastseg.core.data import SegmentationData
from napari_contrastseg.core.errors import InputError
from napari_contrastseg.core.model import load_model
from napari_contrastseg.core.sampling import PatchSampler
from napari_contrastseg.core.setup import plan_training
from napari_contrastseg.core.trainer import train_model
from napari_contrastseg.core.training_set import TrainingPair, find_pairs, load_pairs


@pytest.fixture
def folder(tmp_path):
    """a.tif painted, b.tif painted (as .npy labels), c.tif without labels."""
    for name, seed in (("a", 0), ("b", 1), ("c", 2)):
        image, truth = disks_2d(seed=seed)
        tifffile.imwrite(tmp_path / f"{name}.tif", image)
        if name == "a":
            tifffile.imwrite(tmp_path / "a_labels.tif", strokes(truth))
        elif name == "b":
            np.save(tmp_path / "b_labels.npy", strokes(truth, every=5))
    return tmp_path


def test_folder_pairs_images_with_their_labels_and_keeps_unlabelled_ones(folder):
    pairs = find_pairs(folder)
    assert [(p.image.name, p.labels.name if p.labels else None) for p in pairs] == [
        ("a.tif", "a_labels.tif"),
        ("b.tif", "b_labels.npy"),
        ("c.tif", None),
    ]
    items = load_pairs(pairs)
    assert not items[2].labels.any() and items[2].labels.shape == items[2].image.shape


def test_list_file_with_comments_relative_paths_and_unlabelled_lines(folder):
    (folder / "set.csv").write_text("# image, labels\na.tif, a_labels.tif\n\nc.tif\n")
    assert find_pairs(folder / "set.csv") == [
        TrainingPair(folder / "a.tif", folder / "a_labels.tif"),
        TrainingPair(folder / "c.tif", None),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("missing.tif\n", "no file at"),
        ("a.tif,a_labels.tif,extra\n", r"line 1: expected 'image\[,labels\]'"),
        ("c.tif\n", "No image"),
    ],
)
def test_bad_list_files_name_the_line(folder, text, message):
    (folder / "set.txt").write_text(text)
    with pytest.raises(InputError, match=message):
        find_pairs(folder / "set.txt")


def _plan(items):
    return plan_training(items, TrainConfig())


def test_collection_errors_name_the_image():
    image, truth = disks_2d()
    painted = SegmentationData(image, strokes(truth))
    with pytest.raises(InputError, match="Image 2 of 2: .*NaN"):
        _plan([painted, SegmentationData(np.full_like(image, np.nan), np.zeros_like(truth))])
    only_background = SegmentationData(image, np.where(strokes(truth) == 1, 1, 0))
    with pytest.raises(InputError, match="paint at least two classes"):
        _plan([only_background, SegmentationData(image, np.zeros_like(truth))])
    with pytest.raises(InputError, match="3D but image 1 is 2D"):
        _plan([painted, SegmentationData(np.stack([image] * 3), np.zeros((3, *truth.shape), np.uint8))])
    with pytest.raises(InputError, match="name their classes differently"):
        _plan(
            [
                SegmentationData(image, strokes(truth), ["bg", "cell"]),
                SegmentationData(image, strokes(truth), ["bg", "nucleus"]),
            ]
        )


def test_sampler_draws_labelled_crops_from_painted_images_and_unlabelled_ones_by_size():
    small = np.zeros((1, 20, 20), np.float32)  # painted, image value 0
    big = np.ones((1, 60, 60), np.float32)  # unpainted, image value 1, 9x the voxels
    labels_small = np.zeros((20, 20), np.int64)
    labels_small[5, 5], labels_small[10, 10] = 1, 2
    sampler = PatchSampler([small, big], [labels_small, np.zeros((60, 60), np.int64)], (16, 16), None,
                           np.random.default_rng(0))  # fmt: skip
    images, labels = sampler.labelled(50)
    assert (images == 0).all() and all((lab > 0).any() for lab in labels)
    from_big = (sampler.unlabelled(400)[:, 0, 0, 0] == 1).mean()
    assert 0.85 < from_big < 0.95  # 3600 / (3600 + 400) = 0.9


def test_training_on_several_images_and_from_the_cli(folder, fast_config, tmp_path):
    items = load_pairs(find_pairs(folder))
    model = train_model(items, fast_config)
    assert model.info.training["painted_voxels_per_class"]["background"] == sum(
        int((i.labels == 1).sum()) for i in items
    )
    out = tmp_path / "model.safetensors"
    fast = ["--iterations", "2", "--batch-size", "2", "--patch-size", "32", "--features", "8,16,32", "--device", "cpu"]
    assert main(["train", "--images", str(folder), "-o", str(out), *fast]) == 0
    assert load_model(out).info.n_classes == 2
    assert main(["train", str(folder / "a.tif"), "--images", str(folder), "-o", str(out), *fast]) == 1
