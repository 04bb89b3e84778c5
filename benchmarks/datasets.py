"""Fetch the two real benchmark volumes from package registries into a local cache.

Nothing here is committed: the raw files are downloaded at benchmark time into
``$CONTRASTSEG_DATA`` (default ``~/.cache/napari-contrastseg/datasets``).
Array axes follow the files (RAS+, 1 mm): axis 0 = left->right, 1 = posterior->anterior,
2 = inferior->superior, so the last axis is axial as the protocol requires.
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


def load_dataset(name: str) -> Volume:
    """Fetch (if needed) and load a benchmark volume by name."""
    loaders = {
        "colin27-deep": load_colin27,
        "icbm-tissue": load_icbm_tissue,
        "colin27-dev": lambda: load_colin27("colin27-dev", AAL_DEV_CLASSES),
    }
    if name not in loaders:
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(loaders)}")
    return loaders[name]()


def _spacing(affine: np.ndarray) -> tuple[float, ...]:
    """Voxel size along each array axis, from the affine."""
    return tuple(float(s) for s in np.sqrt((affine[:3, :3] ** 2).sum(axis=0)))
