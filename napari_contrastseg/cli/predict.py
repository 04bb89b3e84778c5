"""``contrastseg predict``: segment image files or folders with a model, in memory or block by block (zarr)."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ..core.errors import ContrastSegError
from ..core.files import check_output, split_suffix
from ..core.image_io import PICTURE_SUFFIXES, SUFFIXES, image_suffix, read_image, write_image
from ..core.model import TrainedModel, load_model
from .train import REPLACE_HINT

#: Output format of labels predicted from a picture format (JPEG is lossy; uncertainty is float, so TIFF).
LABEL_SUFFIX = {".jpg": ".png", ".jpeg": ".png"}
UNCERTAINTY_SUFFIX = {".png": ".tif", ".jpg": ".tif", ".jpeg": ".tif"}


def add_parser(sub) -> None:
    p = sub.add_parser(
        "predict",
        help="segment images with a trained model",
        description="Predict every voxel of each image. Never writes over an input or the model; an existing "
        "output is refused unless --overwrite is given, and every file appears only once complete.",
    )
    p.add_argument("model", type=Path)
    p.add_argument("images", type=Path, nargs="+", help="image files or folders of images")
    p.add_argument("-o", "--output", type=Path, required=True, help="output file (one input) or folder")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs (never an input)")
    p.add_argument("--uncertainty", action="store_true", help="also write <name>_uncertainty next to each mask")
    p.add_argument("--tile-size", type=int, help="sliding-window tile (default: the training crop size)")
    p.add_argument("--overlap", type=float, default=0.25)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--channel-axis", type=int, help="the image's channel axis (colour pictures: found by itself)")
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--out-of-core",
        action="store_true",
        help="read the image lazily and write a zarr store block by block (automatic for .zarr inputs or output)",
    )
    p.add_argument(
        "--block",
        type=int,
        help="out-of-core block: slices per slab for 2D models on volumes (default: about 16 M voxels), else the "
        "block edge in voxels (default 128 for 3D models, 2048 for 2D images)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    inputs = _expand_inputs(args.images)
    single = len(inputs) == 1 and args.output.suffix != "" and (is_zarr(args.output) or not args.output.is_dir())
    jobs = []
    for path in inputs:
        chunked = args.out_of_core or is_zarr(path) or (single and is_zarr(args.output))
        target = args.output if single else args.output / output_name(path, "labels", ".zarr" if chunked else None)
        if chunked and not is_zarr(target):
            raise ContrastSegError(f"Out-of-core prediction writes zarr: give an output ending in .zarr, not {target}.")
        jobs.append((path, target, chunked))
    _check_outputs(jobs, inputs + [args.model], args)
    model = load_model(args.model)
    for path, target, chunked in jobs:
        if chunked:
            _predict_out_of_core(model, path, target, args)
        else:
            _predict_in_memory(model, path, target, args)
        print(f"{path} -> {target}")
    return 0


def _check_outputs(jobs: list[tuple[Path, Path, bool]], inputs: list[Path], args: argparse.Namespace) -> None:
    """Before any work: no output is an input or the model, two inputs never share an output, and existing
    outputs need --overwrite."""
    seen: set[Path] = set()
    for _, target, chunked in jobs:
        targets = [target] + ([uncertainty_path(target)] if args.uncertainty and not chunked else [])
        for out in targets:
            if out.resolve() in seen:
                raise ContrastSegError(f"Two inputs would both be written to {out}; give them different names.")
            seen.add(out.resolve())
            check_output(out, inputs, args.overwrite, REPLACE_HINT)


def uncertainty_path(target: Path) -> Path:
    """Where the uncertainty of labels written to ``target`` goes: ``<name>_uncertainty`` beside it (TIFF for
    picture formats, which hold no floats)."""
    stem, suffix = split_suffix(target)
    return target.with_name(f"{stem}_uncertainty{UNCERTAINTY_SUFFIX.get(suffix.lower(), suffix)}")


def _predict_in_memory(model: TrainedModel, path: Path, target: Path, args: argparse.Namespace) -> None:
    image = read_image(path)
    with _progress_bar(path.name, "slice" if model.info.spatial_dims == 2 else "tile") as progress:
        result = model.predict(
            image.array,
            args.channel_axis,
            tile_size=args.tile_size,
            overlap=args.overlap,
            batch_size=args.batch_size,
            device=args.device,
            probabilities=False,
            progress=progress,
        )
    write_image(target, result.labels, like=image)
    if args.uncertainty:
        write_image(uncertainty_path(target), result.uncertainty, like=image)


def _predict_out_of_core(model: TrainedModel, path: Path, target: Path, args: argparse.Namespace) -> None:
    """Lazily read ``path``, predict block by block into the zarr group ``target`` (labels, uncertainty)."""
    from ..core.chunked import predict_to_zarr

    image = read_image(path, lazy=True)
    slabs = model.info.spatial_dims == 2 and image.array.ndim - (args.channel_axis is not None) == 3
    with _progress_bar(path.name, "slice" if slabs else "block") as progress:
        predict_to_zarr(
            model,
            image.array,
            target,
            channel_axis=args.channel_axis,
            block=args.block,
            tile_size=args.tile_size,
            overlap=args.overlap,
            batch_size=args.batch_size,
            device=args.device,
            uncertainty=args.uncertainty,
            spacing=image.spacing,
            affine=image.affine,
            progress=progress,
        )


@contextmanager
def _progress_bar(name: str, unit: str) -> Iterator[Callable[[int, int], None]]:
    """A tqdm bar, and the ``progress(done, total)`` callback that moves it."""
    from tqdm import tqdm

    with tqdm(desc=name, unit=unit) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        yield progress


def is_zarr(path: Path) -> bool:
    return any(part.lower().endswith(".zarr") for part in path.parts)


def _expand_inputs(paths: list[Path]) -> list[Path]:
    """Files (and zarr stores) as given; folders replaced by the supported images inside them (sorted)."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir() and not is_zarr(path):
            found = sorted(
                p for p in path.iterdir() if (p.is_file() or is_zarr(p)) and str(p).lower().endswith(SUFFIXES)
            )
            if not found:
                raise ContrastSegError(f"{path} holds no image files ({', '.join(SUFFIXES)}).")
            out.extend(found)
        else:
            out.append(path)
    return out


def output_name(path: Path, tag: str, suffix: str | None = None) -> str:
    """``<input name>_<tag><suffix>``; ``suffix`` defaults to the input's (JPEG: PNG; an array in a store takes
    its store's name)."""
    found = image_suffix(path)
    name = next((p for p in path.parts if p.lower().endswith(".zarr")), path.name) if found == ".zarr" else path.name
    default = LABEL_SUFFIX.get(found, found) if found in PICTURE_SUFFIXES else found
    return name[: -len(found)] + f"_{tag}" + (suffix or default)
