"""napari plugin pieces that need no display: manifest, reader, writer, sample data, next slice, autosave files."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from napari_contrastseg._napari import autosave
from napari_contrastseg._napari.reader import get_reader, is_label_volume
from napari_contrastseg._napari.writer import read_tiff_spacing, write_image, write_labels

MANIFEST = Path(__file__).parents[1] / "napari_contrastseg" / "napari.yaml"


def test_manifest_is_valid_and_registered():
    npe2 = pytest.importorskip("npe2")
    manifest = npe2.PluginManifest.from_file(MANIFEST)
    contributions = manifest.contributions
    assert [w.display_name for w in contributions.widgets] == ["Scribble segmentation"]
    assert {s.key for s in contributions.sample_data} == {"colin27-deep", "icbm-tissue"}
    assert contributions.readers[0].filename_patterns == ["*.nii", "*.nii.gz"]
    assert {tuple(w.layer_types) for w in contributions.writers} == {("labels",), ("image",)}
    for command in contributions.commands:  # every python_name resolves
        module, name = command.python_name.split(":")
        assert getattr(__import__(module, fromlist=[name]), name)
    installed = npe2.PluginManifest.from_distribution("napari-contrastseg")
    assert installed.name == "napari-contrastseg"


def _nifti(path: Path, data: np.ndarray, zooms=(0.5, 0.8, 2.0)) -> Path:
    affine = np.diag([*zooms, 1.0])
    affine[:3, 3] = (-10.0, 4.0, 7.5)
    img = nib.Nifti1Image(data, affine)
    img.header.set_zooms(zooms)
    nib.save(img, path)
    return path


def test_reader_sets_scale_and_writer_keeps_geometry(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.normal(100, 20, (12, 10, 8)).astype(np.float32)
    labels = np.zeros((12, 10, 8), np.uint8)
    labels[2:6, 3:7, 1:5] = 2
    labels[7:, :, :] = 1
    assert get_reader(str(tmp_path / "x.tif")) is None
    path = _nifti(tmp_path / "image.nii.gz", image)
    reader = get_reader(str(path))
    [(data, meta, kind)] = reader(str(path))
    assert kind == "image" and data.shape == image.shape
    assert meta["scale"] == pytest.approx((0.5, 0.8, 2.0))
    [(ldata, lmeta, lkind)] = get_reader(str(_nifti(tmp_path / "labels.nii", labels)))(str(tmp_path / "labels.nii"))
    assert lkind == "labels" and np.array_equal(ldata, labels)

    # a prediction written from a layer on the image's grid keeps the affine and spacing
    [out] = write_labels(str(tmp_path / "prediction.nii.gz"), labels.astype(np.int64), meta)
    written = nib.load(out)
    assert np.allclose(written.affine, nib.load(path).affine)
    assert written.header.get_zooms() == pytest.approx((0.5, 0.8, 2.0))
    assert written.get_data_dtype() == np.uint8
    assert np.array_equal(np.asarray(written.dataobj), labels)
    [(again, again_meta, again_kind)] = get_reader(out)(out)
    assert again_kind == "labels" and again_meta["scale"] == pytest.approx(meta["scale"])

    # TIFF keeps the voxel size as ImageJ spacing / resolution
    [tif] = write_labels(str(tmp_path / "prediction.tif"), labels, meta)
    assert read_tiff_spacing(tif) == pytest.approx((0.5, 0.8, 2.0))
    [tif_image] = write_image(str(tmp_path / "image.tiff"), image, {"scale": (1.0, 0.25, 0.25)})
    assert read_tiff_spacing(tif_image) == pytest.approx((1.0, 0.25, 0.25))


def test_uint8_intensity_volume_is_an_image_not_labels():
    from napari_contrastseg.samples import load_sample

    s = load_sample("colin27-deep")
    assert not is_label_volume(s.image.astype(np.uint8))
    assert is_label_volume(s.painted) and is_label_volume(s.ground_truth)


def test_sample_data_gives_image_and_painted_scribbles():
    from napari_contrastseg._napari.sample_data import colin27_deep

    (image, image_meta, image_kind), (labels, labels_meta, labels_kind) = colin27_deep()
    assert (image_kind, labels_kind) == ("image", "labels")
    assert image.shape == labels.shape == (90, 78, 64)
    assert labels_meta["name"] == "scribbles"
    assert labels_meta["metadata"]["class_names"][0] == "background"
    painted = np.flatnonzero((labels > 0).any(axis=(0, 1)))
    assert 1 <= painted.size <= 5  # a few painted slices
    assert image_meta["scale"] == labels_meta["scale"]


def test_autosave_files_round_trip(tmp_path, monkeypatch):
    monkeypatch.setenv(autosave.ENV_DIR, str(tmp_path))
    labels = np.zeros((6, 7, 8), np.uint8)
    labels[1, 2, 3:6] = 2
    labels[4, :, 0] = 1
    path = autosave.save_scribbles(labels, "my image/1", "scribbles", ["background", "cell"])
    assert path.parent == tmp_path and not list(tmp_path.glob("*.part*"))
    saved = autosave.find_saved("my image/1", labels.shape)
    assert saved.painted == int((labels > 0).sum()) and saved.class_names == ["background", "cell"]
    assert np.array_equal(autosave.load_scribbles(saved), labels)
    assert autosave.same_painting(saved, labels)
    assert autosave.find_saved("my image/1", (6, 7, 9)) is None


def test_napari_opens_and_saves_nifti_through_the_plugin(tmp_path):
    napari = pytest.importorskip("napari")
    npe2 = pytest.importorskip("npe2")
    npe2.PluginManager.instance().discover()
    labels = np.zeros((5, 6, 7), np.uint8)
    labels[1:3, 2:4, 3:6] = 2
    source = _nifti(tmp_path / "mask.nii.gz", labels)
    viewer = napari.components.ViewerModel()
    [layer] = viewer.open(str(source), plugin="napari-contrastseg")
    assert tuple(layer.scale) == pytest.approx((0.5, 0.8, 2.0))
    [written] = napari.save_layers(str(tmp_path / "saved.nii.gz"), [layer], plugin="napari-contrastseg")
    assert np.allclose(nib.load(written).affine, nib.load(source).affine)
