"""The benchmark's Colin27 tasks: AAL regions -> classes, and a development task that shares no label with the
scored one (so that choices made on it never tune on scored voxels); the 2D nuclei image through the painting, the
forest and the scoring."""

from __future__ import annotations

import zipfile

import nibabel as nib
import numpy as np
import pytest
import tifffile
from benchmark_scripts import load

from napari_contrastseg.samples.protocol import unpainted_mask

datasets = load("datasets", register_as="benchmark_datasets")


def test_development_task_shares_no_region_with_the_scored_task() -> None:
    assert not set(datasets.AAL_DEV_CLASSES) & set(datasets.AAL_CLASSES)
    assert len(datasets.AAL_DEV_CLASSES) == len(datasets.AAL_CLASSES)


@pytest.mark.parametrize(
    ("name", "classes"), [("colin27-deep", datasets.AAL_CLASSES), ("colin27-dev", datasets.AAL_DEV_CLASSES)]
)
def test_colin27_tasks_turn_their_aal_regions_into_classes(tmp_path, monkeypatch, name, classes) -> None:
    # the package as if already downloaded and unpacked into the cache, with every AAL value 0..119 once
    folder = tmp_path / datasets.MRICRON_PACKAGE
    templates = folder / "extracted" / datasets.MRICRON_DIR
    templates.mkdir(parents=True)
    (folder / f"{datasets.MRICRON_PACKAGE}_1.0_all.deb").touch()
    aal = np.arange(120, dtype=np.uint8).reshape(4, 5, 6)
    nib.save(nib.Nifti1Image(aal.astype(np.int16) * 3, np.eye(4)), templates / "ch2.nii.gz")
    nib.save(nib.Nifti1Image(aal, np.eye(4)), templates / "aal.nii.gz")
    monkeypatch.setenv("CONTRASTSEG_DATA", str(tmp_path))

    volume = datasets.load_dataset(name)

    assert volume.name == name and volume.class_names == ["background", *classes.values()]
    for value, label in enumerate(classes, start=2):
        assert volume.ground_truth[aal == label].tolist() == [value]
    assert (volume.ground_truth == 1).sum() == aal.size - len(classes)
    np.testing.assert_array_equal(volume.image, aal * 3.0)


def test_the_2d_nuclei_image_is_painted_in_its_tile_and_scored_outside_it(tmp_path, monkeypatch) -> None:
    # the stardist wheel as if already downloaded: a 2D image of two bright discs, one inside the top-left tile
    yy, xx = np.mgrid[:64, :80]
    mask = ((yy - 8) ** 2 + (xx - 9) ** 2 < 25).astype(np.uint16) + 2 * ((yy - 40) ** 2 + (xx - 50) ** 2 < 64)
    image = (mask > 0) * 200.0 + np.random.default_rng(0).normal(20, 5, mask.shape)
    folder = tmp_path / f"stardist-{datasets.STARDIST_VERSION}"
    folder.mkdir()
    with zipfile.ZipFile(folder / f"stardist-{datasets.STARDIST_VERSION}-py3-none-any.whl", "w") as wheel:
        for name, array in (("img2d", image.astype(np.uint16)), ("mask2d", mask)):
            path = tmp_path / f"{name}.tif"
            tifffile.imwrite(path, array)
            wheel.write(path, f"stardist/data/images/{name}.tif")
    monkeypatch.setenv("CONTRASTSEG_DATA", str(tmp_path))
    scoring, forest = load("scoring"), load("rf_baseline")

    volume = datasets.load_dataset("stardist-nuclei2d")
    painted = scoring.paint(volume.ground_truth, "slices:1", 0, volume.slice_axis)
    predicted = forest.rf_segment(volume.image, painted, volume.slice_axis)
    scored = scoring.score(predicted, volume.ground_truth, unpainted_mask(painted, volume.slice_axis), None, False)

    assert volume.slice_axis is None and volume.image.shape == (64, 80)
    np.testing.assert_array_equal(volume.ground_truth, (mask > 0) + 1)
    assert painted[:16, :20].all() and not painted[16:].any() and not painted[:, 20:].any()
    assert scored["true_voxels"]["2"] == int((mask == 2).sum())  # only the disc outside the tile is scored
    assert scored["mean_dice"] > 0.9
    volumes = scoring.painted_slice_volumes(predicted, painted, volume.slice_axis)
    assert volumes["2"][1] == int((mask == 1).sum())
    with pytest.raises(ValueError, match="slices:1"):  # one tile: more slices would paint the same
        scoring.paint(volume.ground_truth, "slices:3", 0, volume.slice_axis)
    with pytest.raises(ValueError, match="2D image"):  # for the benchmarks that paint slices of volumes
        datasets.load_volume("stardist-nuclei2d")


def test_the_nnunet_anchor_ignores_unpainted_voxels_and_slices_along_the_painting() -> None:
    anchor = load("nnunet_anchor")
    painted = np.zeros((4, 5, 6), dtype=np.uint8)
    painted[..., 2] = 1
    painted[1:3, 1:3, 2] = 3

    labels = anchor.nnunet_labels(painted, n_classes=3)

    assert labels[..., 2].tolist() == (painted[..., 2] - 1).tolist()  # background 0, classes 1..K-1
    assert (labels[..., [0, 1, 3, 4, 5]] == 3).all()  # unpainted: the ignore label, the highest value
    first = anchor.slices_first(painted, 2)
    assert first.shape == (6, 4, 5) and first[2].any() and not first[[0, 1, 3, 4, 5]].any()
    assert anchor.slices_first(painted[..., 2], None).shape == (1, 4, 5)
    # the poly schedule runs over the budget's time: its start, its middle, and its last step from the end on
    steps = [anchor.schedule_step(t, 60.0) for t in (0.0, 30.0, 60.0, 90.0)]
    assert steps == [0, anchor.SCHEDULE_STEPS // 2, anchor.SCHEDULE_STEPS - 1, anchor.SCHEDULE_STEPS - 1]
