"""The benchmark's Colin27 tasks: AAL regions -> classes, and a development task that shares no label with the
scored one (so that choices made on it never tune on scored voxels)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

_spec = importlib.util.spec_from_file_location(
    "benchmark_datasets", Path(__file__).resolve().parents[1] / "benchmarks" / "datasets.py"
)
datasets = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = datasets  # dataclasses look their module up there
_spec.loader.exec_module(datasets)


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
