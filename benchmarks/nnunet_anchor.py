"""A peer anchor nobody here wrote: nnU-Net v2's ``2d`` configuration trained on the suite's paintings with its ignore
label, for the same wall-clock as our default, scored as ``suite.py`` scores (issue 17).

Each task and painting becomes a one-case nnU-Net dataset: the image as ``imagesTr/case_0000.nii.gz`` with its
slice axis first (channel ``CT`` for the CT task, which selects nnU-Net's CT normalisation; its statistics come
from the voxels nnU-Net counts as labelled, here the ignore label's too; z-score otherwise), the painting as
``labelsTr/case.nii.gz`` with unpainted voxels set to the ``ignore`` label (the highest value, nnU-Net's rule).
nnU-Net plans and preprocesses it (``2d`` only; not timed) and ``nnUNetTrainer`` trains on fold ``all`` with its
own data loader (one augmentation worker), augmentation, loss and optimiser, step after step until ``--budget``
seconds of training have passed. Two things differ from a full nnU-Net run, both to fit a budget of seconds: its
poly learning-rate schedule runs over the budget's time instead of 1000 epochs, and there is no validation,
logging or checkpoint in between (nnU-Net returns the last weights anyway). The in-memory network then predicts the
whole image (no mirroring), and the never-painted slices are scored. Rows go to ``--out`` in ``suite.py``'s
format, method ``nnunet-2d``, so that ``report_suite.py`` puts them next to ours.

nnU-Net is not a dependency of the package; run this with it installed (it pulls its own PyTorch: pin the one used
for the other rows), for example::

    python -m venv --system-site-packages /tmp/nnenv && /tmp/nnenv/bin/pip install nnunetv2 torch==2.13.0
    /tmp/nnenv/bin/python benchmarks/nnunet_anchor.py --paint slices:1,scribbles:3 --seeds 0 \\
        --out docs/results/suite/nnunet.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from datasets import SUITE, Volume, load_dataset  # noqa: E402
from scoring import paint, painted_slice_volumes, score  # noqa: E402
from suite import pause_point, stored_runs  # noqa: E402

from napari_contrastseg.samples.protocol import unpainted_mask  # noqa: E402

METHOD = "nnunet-2d"
DATASET_ID = 901
CT_TASKS = ("radiomics-lung1",)
#: The poly learning-rate schedule's resolution over the budget.
SCHEDULE_STEPS = 10_000


def nnunet_labels(painted: np.ndarray, n_classes: int) -> np.ndarray:
    """Our painting (0 unpainted, 1 background, 2..K classes) in nnU-Net's values: 0..K-1, unpainted = K (ignore)."""
    out = painted.astype(np.int16) - 1
    out[painted == 0] = n_classes
    return out.astype(np.uint8)


def slices_first(array: np.ndarray, axis: int | None) -> np.ndarray:
    """``array`` with its slice axis first (a 2D image gets a first axis of one), the order nnU-Net's ``2d``
    configuration slices along when the spacing is equal (and the order SimpleITK's arrays have)."""
    return array[None] if axis is None else np.moveaxis(array, axis, 0)


def write_raw(root: Path, vol: Volume, painted: np.ndarray) -> tuple[float, ...]:
    """The one-case raw dataset under ``root``; returns the spacing in the written arrays' axis order."""
    import SimpleITK as sitk

    name = f"Dataset{DATASET_ID}_{vol.name.replace('-', '')}"
    folder = root / name
    (folder / "imagesTr").mkdir(parents=True)
    (folder / "labelsTr").mkdir()
    axis = vol.slice_axis
    spacing = (1.0, *vol.spacing) if axis is None else (vol.spacing[axis], *np.delete(vol.spacing, axis))
    n_classes = len(vol.class_names)
    for array, path in ((vol.image.astype(np.float32), "imagesTr/case_0000.nii.gz"),
                        (nnunet_labels(painted, n_classes), "labelsTr/case.nii.gz")):  # fmt: skip
        image = sitk.GetImageFromArray(slices_first(array, axis))
        image.SetSpacing(tuple(float(s) for s in spacing[::-1]))  # SimpleITK: x, y, z
        sitk.WriteImage(image, str(folder / path))
    dataset = {
        "channel_names": {"0": "CT" if vol.name in CT_TASKS else "image"},
        "labels": {**{n: i for i, n in enumerate(vol.class_names)}, "ignore": n_classes},
        "numTraining": 1,
        "file_ending": ".nii.gz",
    }
    (folder / "dataset.json").write_text(json.dumps(dataset, indent=1))
    return tuple(float(s) for s in spacing)


def schedule_step(elapsed: float, seconds: float) -> int:
    """Where the poly schedule stands after ``elapsed`` of ``seconds``, in :data:`SCHEDULE_STEPS` (the schedule runs
    over the budget's time, as ours does, instead of over nnU-Net's 1000 epochs)."""
    return min(SCHEDULE_STEPS - 1, int(SCHEDULE_STEPS * elapsed / seconds))


def train_for(seconds: float, seed: int):
    """nnU-Net's trainer on the prepared dataset, trained for ``seconds``; returns it and what the run did."""
    import torch
    from nnunetv2.experiment_planning.plan_and_preprocess_api import (
        extract_fingerprints,
        plan_experiments,
        preprocess,
    )
    from nnunetv2.run.run_training import get_trainer_from_args

    torch.manual_seed(seed)
    np.random.seed(seed)
    start = time.perf_counter()
    extract_fingerprints([DATASET_ID], num_processes=1, check_dataset_integrity=True, verbose=False)
    plan_experiments([DATASET_ID])
    preprocess([DATASET_ID], configurations=("2d",), num_processes=(1,), show_progress_bar=False)
    prepared = time.perf_counter() - start
    trainer = get_trainer_from_args(str(DATASET_ID), "2d", "all", device=torch.device("cpu"))
    trainer.disable_checkpointing = True  # the network is used in memory; nothing to write while the clock runs
    trainer.on_train_start()
    if list(trainer.plans_manager.transpose_forward) != [0, 1, 2]:
        raise RuntimeError("nnU-Net would slice across the painted slices: transpose_forward "
                           f"{trainer.plans_manager.transpose_forward}")  # fmt: skip
    trainer.network.train()
    trainer.lr_scheduler.max_steps = SCHEDULE_STEPS
    start, steps = time.perf_counter(), 0
    while (elapsed := time.perf_counter() - start) < seconds:
        trainer.lr_scheduler.step(schedule_step(elapsed, seconds))
        trainer.train_step(next(trainer.dataloader_train))
        steps += 1
    trained = time.perf_counter() - start
    trainer.on_train_end()  # stops the augmentation worker
    patch = list(trainer.configuration_manager.patch_size)
    return trainer, {"prepare_seconds": prepared, "train_seconds": trained, "iterations": steps,
                     "batch_size": trainer.batch_size, "patch_size": patch}  # fmt: skip


def predict(trainer, vol: Volume, spacing: tuple[float, ...]) -> np.ndarray:
    """The trained network's classes for the whole image, in our values (1..K), in the image's axis order."""
    import torch
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    predictor = nnUNetPredictor(use_mirroring=False, perform_everything_on_device=False,
                                device=torch.device("cpu"), allow_tqdm=False)  # fmt: skip
    trainer.set_deep_supervision_enabled(False)  # one output, as nnU-Net's own validation predicts
    network = trainer.network
    network.eval()
    predictor.manual_initialization(network, trainer.plans_manager, trainer.configuration_manager,
                                    [network.state_dict()],
                                    trainer.dataset_json, type(trainer).__name__, None)  # fmt: skip
    image = slices_first(vol.image.astype(np.float32), vol.slice_axis)[None]  # (1, Z, Y, X)
    found = predictor.predict_single_npy_array(image, {"spacing": list(spacing)})
    found = found[0] if vol.slice_axis is None else np.moveaxis(found, 0, vol.slice_axis)
    return found.astype(np.uint8) + 1


def run(root: Path, vol: Volume, painted: np.ndarray, budget: float, seed: int) -> dict:
    """One nnU-Net run in ``root`` (emptied first; nnU-Net reads its folders' places once, at import); what it did
    and its prediction."""
    for part in ("raw", "preprocessed", "results"):
        shutil.rmtree(root / part, ignore_errors=True)
        (root / part).mkdir(parents=True)
    spacing = write_raw(root / "raw", vol, painted)
    trainer, done = train_for(budget, seed)
    start = time.perf_counter()
    prediction = predict(trainer, vol, spacing)
    return {"prediction": prediction, "predict_seconds": time.perf_counter() - start, "budget": budget, **done}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default=",".join(SUITE))
    parser.add_argument("--paint", default="slices:1,slices:3,scribbles:3")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--budget", type=float, default=60.0, help="seconds of training (our default's budget)")
    parser.add_argument("--label", default=METHOD)
    parser.add_argument("--out", type=Path, default=Path("benchmark-results/nnunet.json"))
    args = parser.parse_args()
    os.environ.setdefault("nnUNet_n_proc_DA", "1")  # one augmentation worker beside the training on 2 cores
    os.environ.setdefault("nnUNet_compile", "false")
    scratch = Path(tempfile.mkdtemp(prefix="nnunet-anchor-"))
    for part in ("raw", "preprocessed", "results"):
        os.environ[f"nnUNet_{part}"] = str(scratch / part)
    runs, done = stored_runs(args.out)
    for name in args.datasets.split(","):
        vol = load_dataset(name)
        for spec in args.paint.split(","):
            for seed in (int(s) for s in args.seeds.split(",")):
                if (name, spec, args.label, seed) in done:
                    continue
                pause_point()
                painted = paint(vol.ground_truth, spec, seed, vol.slice_axis)
                print(f"{name} {spec} seed {seed}: {args.label} ...", flush=True)
                result = run(scratch, vol, painted, args.budget, seed)
                labels = result.pop("prediction")
                scored = {**result, **score(labels, vol.ground_truth, unpainted_mask(painted, vol.slice_axis),
                                            vol.spacing, True)}  # fmt: skip
                scored["painted_slice_volumes"] = painted_slice_volumes(labels, painted, vol.slice_axis)
                runs.append({"dataset": name, "paint": spec, "method": args.label, "seed": seed, **scored})
                args.out.write_text(json.dumps(runs, indent=1))
                print(f"  mean Dice {scored['mean_dice']:.3f} after {result['iterations']} steps "
                      f"in {result['train_seconds']:.0f} s", flush=True)  # fmt: skip
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
