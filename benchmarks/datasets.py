"""Fetch the development suite's real volumes from package registries into a local cache.

Nothing here is committed: the raw files are downloaded at benchmark time into
``$CONTRASTSEG_DATA`` (default ``~/.cache/napari-contrastseg/datasets``). Brain volumes (Debian ``mricron-data``,
PyPI ``nilearn``): array axes follow the files (RAS+, 1 mm), so the last axis is axial. Nuclei (PyPI ``stardist``
wheel): (z, y, x), slice axis 0. Lesions (PyPI ``pyradiomics`` 3.0.1 source distribution): NRRD read in index
order x, y, z (as NIfTI), slice axis the last (axial). Each :class:`Volume` names its slice axis.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np

MRICRON_PACKAGE = "mricron-data"
MRICRON_DIR = "usr/share/mricron/templates"
MRICRON_COPYRIGHT = "usr/share/doc/mricron-data/copyright"
NILEARN_VERSION = "0.14.1"
NILEARN_DIR = "nilearn/datasets/data"
NILEARN_TEMPLATE = "mni_icbm152_{}_tal_nlin_sym_09a_converted.nii.gz"
STARDIST_VERSION = "0.9.2"
RADIOMICS_VERSION = "3.0.1"
NILEARN_EXTRA = ("nilearn-{v}.dist-info/licenses/LICENSE", "nilearn/datasets/description/icbm152_2009.rst")

#: AAL label -> class name, in protocol order (protocol classes 1..12).
AAL_CLASSES: dict[int, str] = {
    37: "hippocampus_L",
    38: "hippocampus_R",
    41: "amygdala_L",
    42: "amygdala_R",
    71: "caudate_L",
    72: "caudate_R",
    73: "putamen_L",
    74: "putamen_R",
    75: "pallidum_L",
    76: "pallidum_R",
    77: "thalamus_L",
    78: "thalamus_R",
}
#: A development task on the same image with 12 other AAL regions: method changes are tried here, so that the
#: scored labels (AAL_CLASSES) are never used to choose anything.
AAL_DEV_CLASSES: dict[int, str] = {
    29: "insula_L",
    30: "insula_R",
    31: "cingulum_ant_L",
    32: "cingulum_ant_R",
    33: "cingulum_mid_L",
    34: "cingulum_mid_R",
    35: "cingulum_post_L",
    36: "cingulum_post_R",
    39: "parahippocampal_L",
    40: "parahippocampal_R",
    43: "calcarine_L",
    44: "calcarine_R",
}
TISSUE_CLASSES: tuple[str, ...] = ("csf_other", "grey_matter", "white_matter")


@dataclass
class Volume:
    """One benchmark volume; ``ground_truth`` is in painted-value space (protocol label + 1)."""

    name: str
    image: np.ndarray  # float32, = stored integer intensities * intensity_scale
    ground_truth: np.ndarray  # uint8, 1 = background, 2.. = classes
    spacing: tuple[float, ...]
    affine: np.ndarray  # 4x4 voxel -> RAS mm
    class_names: list[str]  # "background" first
    intensity_scale: float = 1.0
    source: dict[str, str] = field(default_factory=dict)
    licence_file: Path | None = None
    slice_axis: int | None = 2  # the protocol's painting axis; None: a 2D image, painted in its top-left tile


def cache_dir() -> Path:
    """Cache folder for downloaded packages, created on demand."""
    root = Path(os.environ.get("CONTRASTSEG_DATA", "~/.cache/napari-contrastseg/datasets")).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root


def _run(cmd: list[str], cwd: Path) -> None:
    """Run a command, echoing it; raise with its output on failure."""
    print(f"[datasets] $ {' '.join(cmd)}", flush=True)
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


def fetch_mricron() -> tuple[Path, str]:
    """Download and unpack ``mricron-data``; return (extracted root, package version)."""
    folder = cache_dir() / MRICRON_PACKAGE
    root = folder / "extracted"
    folder.mkdir(exist_ok=True)
    debs = sorted(folder.glob(f"{MRICRON_PACKAGE}_*.deb"))
    if not debs:
        print(f"[datasets] downloading {MRICRON_PACKAGE} (~16 MB) with apt-get", flush=True)
        try:
            _run(["apt-get", "download", MRICRON_PACKAGE], folder)
        except RuntimeError:
            print("[datasets] apt-get download failed; trying apt-get update first", flush=True)
            _run(["apt-get", "update"], folder)
            _run(["apt-get", "download", MRICRON_PACKAGE], folder)
        debs = sorted(folder.glob(f"{MRICRON_PACKAGE}_*.deb"))
    deb = debs[-1]
    if not (root / MRICRON_DIR / "ch2.nii.gz").exists():
        print(f"[datasets] unpacking {deb.name}", flush=True)
        _run(["dpkg", "-x", str(deb), str(root)], folder)
    version = deb.name.split("_")[1]
    return root, version


def fetch_nilearn() -> Path:
    """Download the nilearn wheel and extract the ICBM152 files and licences; return the extracted root."""
    folder = cache_dir() / f"nilearn-{NILEARN_VERSION}"
    root = folder / "extracted"
    folder.mkdir(exist_ok=True)
    wheels = sorted(folder.glob(f"nilearn-{NILEARN_VERSION}-*.whl"))
    if not wheels:
        print(f"[datasets] downloading nilearn=={NILEARN_VERSION} wheel with pip", flush=True)
        pip = [sys.executable, "-m", "pip", "download", "--no-deps", f"nilearn=={NILEARN_VERSION}"]
        _run([*pip, "-d", str(folder)], folder)
        wheels = sorted(folder.glob(f"nilearn-{NILEARN_VERSION}-*.whl"))
    members = [f"{NILEARN_DIR}/{NILEARN_TEMPLATE.format(k)}" for k in ("t1", "gm", "wm")]
    members += [m.format(v=NILEARN_VERSION) for m in NILEARN_EXTRA]
    if not all((root / m).exists() for m in members):
        print(f"[datasets] extracting {len(members)} files from {wheels[-1].name}", flush=True)
        with zipfile.ZipFile(wheels[-1]) as wheel:
            for member in members:
                wheel.extract(member, root)
    return root


def _read(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Raw stored array and affine of a NIfTI file."""
    img = nib.load(path)
    return np.asanyarray(img.dataobj), img.affine


def load_colin27(name: str = "colin27-deep", classes: dict[int, str] = AAL_CLASSES) -> Volume:
    """Colin27 T1 (ch2) with the given AAL regions as classes (default: the 12 deep grey-matter nuclei)."""
    root, version = fetch_mricron()
    image, affine = _read(root / MRICRON_DIR / "ch2.nii.gz")
    aal, aal_affine = _read(root / MRICRON_DIR / "aal.nii.gz")
    if image.shape != aal.shape or not np.allclose(affine, aal_affine):
        raise RuntimeError("ch2 and aal grids differ")
    lut = np.ones(256, dtype=np.uint8)
    for k, label in enumerate(classes):
        lut[label] = k + 2
    return Volume(
        name=name,
        image=image.astype(np.float32),
        ground_truth=lut[aal.astype(np.uint8)],
        spacing=_spacing(affine),
        affine=affine,
        class_names=["background", *classes.values()],
        source={
            "package": f"debian:{MRICRON_PACKAGE}",
            "version": version,
            "image": f"{MRICRON_DIR}/ch2.nii.gz",
            "labels": f"{MRICRON_DIR}/aal.nii.gz",
        },
        licence_file=root / MRICRON_COPYRIGHT,
    )


def load_icbm_tissue() -> Volume:
    """ICBM152 2009a symmetric T1 with background + CSF/other, grey and white matter."""
    root = fetch_nilearn()
    paths = {k: root / NILEARN_DIR / NILEARN_TEMPLATE.format(k) for k in ("t1", "gm", "wm")}
    t1, affine = _read(paths["t1"])
    gm = np.asanyarray(nib.load(paths["gm"]).dataobj).astype(np.float32) / 255
    wm = np.asanyarray(nib.load(paths["wm"]).dataobj).astype(np.float32) / 255
    tissue = np.argmax(np.stack([1 - gm - wm, gm, wm]), axis=0).astype(np.uint8) + 1
    labels = np.where(t1 == 0, 0, tissue).astype(np.uint8)
    return Volume(
        name="icbm-tissue",
        image=t1.astype(np.float32) / 255,
        ground_truth=labels + 1,
        spacing=_spacing(affine),
        affine=affine,
        class_names=["background", *TISSUE_CLASSES],
        intensity_scale=1 / 255,
        source={
            "package": "pypi:nilearn",
            "version": NILEARN_VERSION,
            **{k: f"{NILEARN_DIR}/{NILEARN_TEMPLATE.format(k)}" for k in ("t1", "gm", "wm")},
        },
        licence_file=root / NILEARN_EXTRA[0].format(v=NILEARN_VERSION),
    )


def fetch_pypi(name: str, version: str, source: bool = False) -> Path:
    """Download a PyPI wheel (``source``: the source distribution) into the cache; return the file."""
    folder = cache_dir() / f"{name}-{version}"
    folder.mkdir(exist_ok=True)
    pattern = f"{name}-{version}.tar.gz" if source else f"{name}-{version}-*.whl"
    found = sorted(folder.glob(pattern))
    if not found:
        print(f"[datasets] downloading {name}=={version} with pip", flush=True)
        pip = [sys.executable, "-m", "pip", "download", "--no-deps", f"{name}=={version}", "-d", str(folder)]
        _run([*pip, "--no-binary", ":all:", "--no-build-isolation"] if source else pip, folder)
        found = sorted(folder.glob(pattern))
    return found[-1]


def load_colin27_small() -> Volume:
    """Colin27 with one small AAL region (left pallidum, about 0.05 % of the voxels) against everything else."""
    label = 75
    return load_colin27("colin27-small", {label: AAL_CLASSES[label]})


def load_stardist_nuclei(dims: int = 3) -> Volume:
    """StarDist's 3D (``dims=3``, slice axis z) or 2D fluorescence nuclei example (wheel data), foreground = any
    nucleus. The 2D image is painted in its top-left tile (shared/docs/benchmark-protocol.md)."""
    import tifffile

    wheel = fetch_pypi("stardist", STARDIST_VERSION)
    files = {n: f"stardist/data/images/{n}{dims}d.tif" for n in ("img", "mask")}
    with zipfile.ZipFile(wheel) as archive:
        image, mask = (tifffile.imread(archive.open(f)) for f in files.values())
        licence = next((n for n in archive.namelist() if n.endswith(("LICENSE", "LICENSE.txt"))), None)
        root = wheel.parent / "extracted"
        if licence:
            archive.extract(licence, root)
    return Volume(
        name=f"stardist-nuclei{dims}d",
        image=image.astype(np.float32),
        ground_truth=(mask > 0).astype(np.uint8) + 1,
        spacing=(1.0,) * dims,
        affine=np.eye(4),
        class_names=["background", "nucleus"],
        source={
            "package": "pypi:stardist",
            "version": STARDIST_VERSION,
            "image": files["img"],
            "labels": files["mask"],
        },  # fmt: skip
        licence_file=root / licence if licence else None,
        slice_axis=0 if dims == 3 else None,
    )


def load_radiomics_lesion(case: str) -> Volume:
    """One of pyradiomics' test cases (``lung1`` CT, ``brain2`` and ``breast1`` MRI): image and lesion label."""
    import tarfile

    import nrrd

    sdist = fetch_pypi("pyradiomics", RADIOMICS_VERSION, source=True)
    root = sdist.parent / "extracted"
    names = [f"pyradiomics-{RADIOMICS_VERSION}/data/{case}_{k}.nrrd" for k in ("image", "label")]
    names.append(f"pyradiomics-{RADIOMICS_VERSION}/LICENSE.txt")
    if not all((root / n).exists() for n in names):
        with tarfile.open(sdist) as archive:
            archive.extractall(root, members=[archive.getmember(n) for n in names], filter="data")
    image, header = nrrd.read(str(root / names[0]))
    label, _ = nrrd.read(str(root / names[1]))
    directions = np.asarray(header["space directions"], dtype=float)
    spacing = tuple(float(np.linalg.norm(d)) for d in directions)
    return Volume(
        name=f"radiomics-{case}",
        image=image.astype(np.float32),
        ground_truth=(label > 0).astype(np.uint8) + 1,
        spacing=spacing,
        affine=np.diag([*spacing, 1.0]),
        class_names=["background", "lesion"],
        source={
            "package": "pypi:pyradiomics (sdist)",
            "version": RADIOMICS_VERSION,
            "image": names[0],
            "labels": names[1],
        },  # fmt: skip
        licence_file=root / names[2],
        slice_axis=2,
    )


#: The development suite: name -> loader (issue 16; shared/docs/benchmark-protocol.md).
LOADERS = {
    "colin27-deep": load_colin27,
    "icbm-tissue": load_icbm_tissue,
    "colin27-small": load_colin27_small,
    "stardist-nuclei3d": load_stardist_nuclei,
    "radiomics-lung1": lambda: load_radiomics_lesion("lung1"),
    "radiomics-brain2": lambda: load_radiomics_lesion("brain2"),
    "radiomics-breast1": lambda: load_radiomics_lesion("breast1"),
}
#: Further tasks: a development task on Colin27 with other AAL regions (choices made there never see scores), and
#: the one 2D image (the suite's choices were all made on volumes).
EXTRA_LOADERS = {
    "colin27-dev": lambda: load_colin27("colin27-dev", AAL_DEV_CLASSES),
    "stardist-nuclei2d": lambda: load_stardist_nuclei(2),
}
SUITE = tuple(LOADERS)


def load_dataset(name: str) -> Volume:
    """Fetch (if needed) and load a benchmark volume by name."""
    loaders = {**LOADERS, **EXTRA_LOADERS}
    if name not in loaders:
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(loaders)}")
    return loaders[name]()


def load_volume(name: str) -> Volume:
    """:func:`load_dataset` for the benchmarks that paint and score slices of volumes: a 2D image is refused."""
    vol = load_dataset(name)
    if vol.slice_axis is None:
        raise ValueError(f"{name} is a 2D image; this benchmark paints and scores slices of volumes")
    return vol


def _spacing(affine: np.ndarray) -> tuple[float, ...]:
    """Voxel size along each array axis, from the affine."""
    return tuple(float(s) for s in np.sqrt((affine[:3, :3] ** 2).sum(axis=0)))


def describe(names: tuple[str, ...] = SUITE) -> None:
    """Print a markdown table of the tasks: shape, spacing, slice axis, classes, foreground voxels and their slices."""
    print("| task | shape | spacing (mm) | slice axis | classes besides background | foreground voxels | slices |")
    print("|---|---|---|---|---|---|---|")
    for name in names:
        vol = load_dataset(name)
        fg = vol.ground_truth > 1
        others = tuple(a for a in range(fg.ndim) if a != (0 if vol.slice_axis is None else vol.slice_axis))
        holding = np.flatnonzero(fg.any(axis=others))  # a 2D image: its rows
        spacing = " x ".join(f"{s:.2f}" for s in vol.spacing)
        print(f"| {name} | {' x '.join(map(str, vol.image.shape))} | {spacing} | {vol.slice_axis} | "
              f"{len(vol.class_names) - 1} | {int(fg.sum()):,} ({100 * fg.mean():.2f} %) | "
              f"{holding.min()}-{holding.max()} |")  # fmt: skip


if __name__ == "__main__":
    describe()
