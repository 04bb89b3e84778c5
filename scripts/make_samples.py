"""Regenerate the bundled sample crops in ``napari_contrastseg/samples/data``.

Usage: ``python scripts/make_samples.py`` (downloads the sources via ``benchmarks/datasets.py``).
The output is deterministic: fixed crop boxes, fixed painting, no randomness.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.openers import ImageOpener

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.datasets import Volume, load_dataset  # noqa: E402
from napari_contrastseg.samples.protocol import paint_slices  # noqa: E402

OUT = ROOT / "napari_contrastseg" / "samples" / "data"
N_SLICES = 3
PAINTED_AXIS = 2  # last array axis = inferior->superior (axial)
COLIN_MARGIN = 4
#: ICBM crop (source voxels, start/stop per axis): 8 mm left of the midline to 16 mm beyond the right
#: edge of the brain, centred antero-posteriorly and vertically (basal ganglia to upper ventricles).
ICBM_BOX = ((90, 186), (69, 165), (46, 110))

MNI_NOTICE = """\
Copyright (C) 1993-2009 Louis Collins, McConnell Brain Imaging Centre, Montreal Neurological
Institute, McGill University. Permission to use, copy, modify, and distribute this software and its
documentation for any purpose and without fee is hereby granted, provided that the above copyright
notice appear in all copies. The authors and McGill University make no representations about the
suitability of this software for any purpose. It is provided "as is" without express or implied
warranty. The authors are not responsible for any data loss, equipment damage, property loss, or
injury to subjects or patients resulting from the use or misuse of this software package.
"""

COLIN_HEADER = """\
colin27-deep sample: a crop of ch2.nii.gz (Colin27 T1, Holmes et al., J Comput Assist Tomogr 1998)
and aal.nii.gz (AAL atlas, Tzourio-Mazoyer et al., NeuroImage 2002) from the Debian package
mricron-data {version} (files usr/share/mricron/templates/ch2.nii.gz and aal.nii.gz).
The package's copyright file (usr/share/doc/mricron-data/copyright) covers these files under
"Files: *" with the BSD-3-clause licence; it is reproduced verbatim below.
The Colin27 average brain itself is distributed by the McConnell Brain Imaging Centre under:

{mni}
----- usr/share/doc/mricron-data/copyright -----

"""

ICBM_HEADER = """\
icbm-tissue sample: a crop of the MNI ICBM152 2009a nonlinear symmetric template (T1, grey- and
white-matter probability maps; Fonov et al., NeuroImage 2009 and 2011) as shipped in the PyPI wheel
nilearn=={version} (nilearn/datasets/data/mni_icbm152_{{t1,gm,wm}}_tal_nlin_sym_09a_converted.nii.gz).
nilearn's own description (nilearn/datasets/description/icbm152_2009.rst) lists the template's
licence as "unknown"; the McConnell Brain Imaging Centre distributes the ICBM 2009 templates under:

{mni}
The nilearn package is BSD-3-Clause; its LICENSE file (nilearn-{version}.dist-info/licenses/LICENSE)
is reproduced verbatim below.

----- nilearn LICENSE -----

"""


def save_nifti(path: Path, data: np.ndarray, affine: np.ndarray, scale: float = 1.0) -> None:
    """Write ``data`` losslessly in its own dtype, with NIfTI ``scl_slope = scale``."""
    header = nib.Nifti1Image(data, affine).header.copy()
    header.set_xyzt_units("mm")
    header.set_qform(affine, code="aligned")
    header.set_sform(affine, code="aligned")
    header.set_slope_inter(scale if scale != 1.0 else None, 0.0 if scale != 1.0 else None)
    with ImageOpener(str(path), "wb", mtime=0) as handle:
        header.write_to(handle)
        header.data_to_fileobj(data, handle, rescale=False)


def crop_affine(affine: np.ndarray, start: tuple[int, ...]) -> np.ndarray:
    """Source affine shifted so that voxel (0, 0, 0) of the crop is ``start`` in the source."""
    shifted = affine.copy()
    shifted[:3, 3] = affine[:3, :3] @ np.asarray(start, dtype=float) + affine[:3, 3]
    return shifted


def colin_box(volume: Volume) -> tuple[tuple[int, int], ...]:
    """Bounding box of all foreground classes plus a margin, clipped to the volume."""
    points = np.argwhere(volume.ground_truth >= 2)
    lo = np.maximum(points.min(axis=0) - COLIN_MARGIN, 0)
    hi = np.minimum(points.max(axis=0) + 1 + COLIN_MARGIN, volume.ground_truth.shape)
    return tuple((int(a), int(b)) for a, b in zip(lo, hi, strict=True))


def write_sample(volume: Volume, box: tuple[tuple[int, int], ...], licence_header: str, licence_id: str) -> None:
    """Crop ``volume`` to ``box`` and write image, ground truth, painting, metadata and licence."""
    folder = OUT / volume.name
    folder.mkdir(parents=True, exist_ok=True)
    region = tuple(slice(a, b) for a, b in box)
    start = tuple(a for a, _ in box)
    affine = crop_affine(volume.affine, start)
    raw = np.rint(volume.image[region] / volume.intensity_scale).astype(np.uint8)
    truth = volume.ground_truth[region].astype(np.uint8)
    painted = paint_slices(truth, N_SLICES, axis=PAINTED_AXIS).astype(np.uint8)
    save_nifti(folder / "image.nii.gz", raw, affine, volume.intensity_scale)
    save_nifti(folder / "ground_truth.nii.gz", truth, affine)
    save_nifti(folder / "painted.nii.gz", painted, affine)
    licence_name = f"LICENSE-{volume.name}.txt"
    version = volume.source["version"]
    assert volume.licence_file is not None
    text = licence_header.format(version=version, mni=MNI_NOTICE) + volume.licence_file.read_text()
    (folder / licence_name).write_text(text)
    slices = [int(i) for i in np.flatnonzero(np.any(painted > 0, axis=(0, 1)))]
    meta = {
        "name": volume.name,
        "class_names": volume.class_names,
        "painted_values": "0 = unpainted, 1 = background, c + 1 = class_names[c]",
        "painted_axis": PAINTED_AXIS,
        "painting": f"paint_slices(ground_truth, {N_SLICES}, axis={PAINTED_AXIS})",
        "painted_slices": slices,
        "shape": list(truth.shape),
        "spacing": list(volume.spacing),
        "axes": "RAS+: 0 left->right, 1 posterior->anterior, 2 inferior->superior (axial)",
        "intensity_scale": volume.intensity_scale,
        "source": volume.source,
        "crop_box": {"start": list(start), "stop": [b for _, b in box]},
        "licence": {"id": licence_id, "file": licence_name},
    }
    (folder / "sample.json").write_text(json.dumps(meta, indent=2) + "\n")
    counts = np.bincount(truth.ravel(), minlength=len(volume.class_names) + 1)[1:]
    print(f"{volume.name}: shape {truth.shape}, painted slices {slices}")
    for name, count in zip(volume.class_names, counts, strict=True):
        print(f"  {name:>14}: {int(count)}")


def main() -> None:
    """Build both samples."""
    colin = load_dataset("colin27-deep")
    write_sample(colin, colin_box(colin), COLIN_HEADER, "BSD-3-Clause")
    icbm = load_dataset("icbm-tissue")
    write_sample(icbm, ICBM_BOX, ICBM_HEADER, "LicenseRef-MNI-ICBM152 AND BSD-3-Clause")
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"total sample data: {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
