"""The ``contrastseg`` command: train, predict, info and demo."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from . import __version__
from .core import distributed
from .core.config import NORMS, NetworkConfig, NormalizationConfig, TrainConfig
from .core.data import SegmentationData
from .core.errors import ContrastSegError
from .core.image_io import SUFFIXES, image_suffix, read_image, write_image
from .core.model import TrainedModel
from .core.model_io import load_model, read_model_info
from .core.trainer import train
from .core.training_set import find_pairs, load_pairs
from .progress import consume_events


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (0 ok, 1 user-facing error, 2 usage)."""
    args = _parser().parse_args(argv)
    try:
        return args.run(args)
    except ContrastSegError as err:
        print(f"contrastseg: error: {err}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="contrastseg", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    p = sub.add_parser(
        "train",
        help="train a model on an image and its sparse painted labels, or on many images",
        description="Train on IMAGE LABELS, or on the images of --images. Under torchrun, trains data-parallel "
        "(gloo on CPUs, NCCL on GPUs); rank 0 writes the model and prints progress.",
    )
    p.add_argument("image", type=Path, nargs="?")
    p.add_argument("labels", type=Path, nargs="?", help="0 = unpainted, 1..K = classes (1 = background)")
    p.add_argument(
        "--images",
        type=Path,
        help="instead of IMAGE LABELS: a folder of NAME.ext images with NAME_labels.ext labels (unlabelled images "
        "allowed), or a .txt/.csv list of 'image[,labels]' lines",
    )
    p.add_argument("-o", "--output", type=Path, required=True, help="model file to write (.safetensors)")
    p.add_argument("--classes", help="comma-separated class names, background first")
    p.add_argument("--warm-start", type=Path, help="continue from this model's weights")
    p.add_argument("--events", choices=["jsonl"], help="print trainer events as JSON lines on stdout")
    p.add_argument("--checkpoint-dir", type=Path, help="folder for intermediate checkpoints")
    _add_training_options(p)
    p.set_defaults(run=_train)

    p = sub.add_parser("predict", help="segment images with a trained model")
    p.add_argument("model", type=Path)
    p.add_argument("images", type=Path, nargs="+", help="image files or folders of images")
    p.add_argument("-o", "--output", type=Path, required=True, help="output file (one input) or folder")
    p.add_argument("--uncertainty", action="store_true", help="also write <name>_uncertainty next to each mask")
    p.add_argument("--tile-size", type=int, help="sliding-window tile (default: the training crop size)")
    p.add_argument("--overlap", type=float, default=0.25)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--channel-axis", type=int)
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
    p.set_defaults(run=_predict)

    p = sub.add_parser("info", help="print a model file's metadata")
    p.add_argument("model", type=Path)
    p.set_defaults(run=_info)

    p = sub.add_parser("demo", help="train on a bundled real sample, predict, score and draw an overlay")
    p.add_argument("--sample", default="colin27-deep")
    p.add_argument("-o", "--output", type=Path, default=Path("contrastseg-demo"))
    p.add_argument("--method", default="supervised")
    p.add_argument("--iterations", type=int, default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=_demo)
    return parser


def _add_training_options(p: argparse.ArgumentParser) -> None:
    d = TrainConfig()
    p.add_argument("--method", default=d.method, help="supervised, semicontrast or action")
    p.add_argument("--iterations", type=int, default=d.iterations)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--patch-size", type=int, default=d.patch_size)
    p.add_argument("--dims", choices=["auto", "2d", "3d"], default=d.dims)
    p.add_argument("--slice-axis", type=int, help="axis to slice 3D volumes along (default: the painted one)")
    p.add_argument("--channel-axis", type=int)
    p.add_argument("--learning-rate", type=float, default=d.learning_rate)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--device", default=d.device, help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--no-amp", action="store_true", help="full precision on CUDA")
    widths = ",".join(map(str, d.network.features))
    p.add_argument("--features", help=f"U-Net widths (default: the --warm-start model's, else {widths})")
    p.add_argument(
        "--norm", choices=NORMS, help=f"normalisation layer (default: the --warm-start model's, else {d.network.norm})"
    )
    p.add_argument("--window", nargs=2, type=float, metavar=("MIN", "MAX"), help="fixed intensity window (CT)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="method option (JSON value)")


def config_from_args(args: argparse.Namespace, base: NetworkConfig | None = None) -> TrainConfig:
    """A :class:`TrainConfig` from parsed ``train`` options; network options not given are taken from ``base``."""
    base = base or NetworkConfig()
    features = tuple(int(f) for f in args.features.split(",")) if args.features else base.features
    network = NetworkConfig(features=features, dropout=base.dropout, norm=args.norm or base.norm)
    norm = (
        NormalizationConfig(mode="window", window_min=args.window[0], window_max=args.window[1])
        if args.window
        else None
    )
    options = {}
    for item in args.option:
        key, sep, value = item.partition("=")
        if not sep:
            raise ContrastSegError(f"--option needs KEY=VALUE, got {item!r}")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    config = TrainConfig(
        method=args.method,
        iterations=args.iterations,
        batch_size=args.batch_size,
        patch_size=args.patch_size,
        dims=args.dims,
        slice_axis=args.slice_axis,
        learning_rate=args.learning_rate,
        seed=args.seed,
        device=args.device,
        amp=not args.no_amp,
        method_options=options,
    )
    config.network = network
    config.normalization = norm or config.normalization
    return config


def _train(args: argparse.Namespace) -> int:
    if (args.images is None) == (args.image is None or args.labels is None) or (args.images and args.image):
        raise ContrastSegError("give either IMAGE LABELS or --images FOLDER_OR_LIST, not both or neither.")
    names = [n.strip() for n in args.classes.split(",")] if args.classes else None
    if args.images:
        data = load_pairs(find_pairs(args.images), names, args.channel_axis)
    else:
        image, labels = read_image(args.image), read_image(args.labels)
        data = SegmentationData(image.array, labels.array, names, image.spacing, args.channel_axis)
    initial = load_model(args.warm_start) if args.warm_start else None
    config = config_from_args(args, initial.info.network if initial else None)
    device = distributed.init_from_environment(config.device)
    try:
        config.device = str(device) if device is not None else config.device
        return _run_training(args, data, config, initial, lead=distributed.rank() == 0)
    finally:
        distributed.shutdown()


def _run_training(
    args: argparse.Namespace,
    data: SegmentationData | list[SegmentationData],
    config: TrainConfig,
    initial: TrainedModel | None,
    lead: bool,
) -> int:
    """Train, from ``initial``'s weights if given; the lead process (rank 0, the only one outside torchrun) saves."""
    cancel = threading.Event()
    _stop_on_signals(cancel)
    events = train(data, config, initial_model=initial, cancel=cancel, checkpoint_dir=args.checkpoint_dir)
    finished = consume_events(events, jsonl=args.events == "jsonl", total=args.iterations, show=lead)
    if finished is None:
        return 1
    if not lead:
        return 0
    path = finished.model.save(args.output)
    if args.events == "jsonl":
        print(json.dumps({"kind": "saved", "path": str(path)}), flush=True)
    else:
        state = "stopped early" if finished.cancelled else "done"
        print(f"{state} after {finished.iteration} iterations in {finished.seconds:.1f} s; model written to {path}")
    return 0


def _stop_on_signals(cancel: threading.Event) -> None:
    """First SIGINT/SIGTERM: finish the current step and save the model; a second one: exit at once."""

    def handler(signum, frame):
        if cancel.is_set():
            raise SystemExit(130)
        cancel.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, handler)


def _predict(args: argparse.Namespace) -> int:
    model = load_model(args.model)
    inputs = _expand_inputs(args.images)
    single = len(inputs) == 1 and args.output.suffix != "" and (_is_zarr(args.output) or not args.output.is_dir())
    for path in inputs:
        chunked = args.out_of_core or _is_zarr(path) or (single and _is_zarr(args.output))
        target = args.output if single else args.output / _output_name(path, "labels", ".zarr" if chunked else None)
        if chunked:
            _predict_out_of_core(model, path, target, args)
        else:
            _predict_in_memory(model, path, target, args)
        print(f"{path} -> {target}")
    return 0


def _predict_in_memory(model, path: Path, target: Path, args: argparse.Namespace) -> None:
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
        suffix = image_suffix(target)
        write_image(str(target)[: -len(suffix)] + "_uncertainty" + suffix, result.uncertainty, like=image)


def _predict_out_of_core(model, path: Path, target: Path, args: argparse.Namespace) -> None:
    """Lazily read ``path``, predict block by block into the zarr group ``target`` (labels, uncertainty)."""
    from .core.chunked import predict_to_zarr

    if not _is_zarr(target):
        raise ContrastSegError(f"Out-of-core prediction writes zarr: give an output ending in .zarr, not {target}.")
    source, out = path.resolve(), target.resolve()
    if source == out or out in source.parents or source in out.parents:
        raise ContrastSegError(f"The output {target} would overwrite the input {path}; choose another output.")
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


def _is_zarr(path: Path) -> bool:
    return any(part.lower().endswith(".zarr") for part in path.parts)


def _expand_inputs(paths: list[Path]) -> list[Path]:
    """Files (and zarr stores) as given; folders replaced by the supported images inside them (sorted)."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir() and not _is_zarr(path):
            found = sorted(
                p for p in path.iterdir() if (p.is_file() or _is_zarr(p)) and str(p).lower().endswith(SUFFIXES)
            )
            if not found:
                raise ContrastSegError(f"{path} holds no image files ({', '.join(SUFFIXES)}).")
            out.extend(found)
        else:
            out.append(path)
    return out


def _output_name(path: Path, tag: str, suffix: str | None = None) -> str:
    """``<input name>_<tag><suffix>``; ``suffix`` defaults to the input's (an array in a store takes its name)."""
    found = image_suffix(path)
    name = next((p for p in path.parts if p.lower().endswith(".zarr")), path.name) if found == ".zarr" else path.name
    return name[: -len(found)] + f"_{tag}" + (suffix or found)


def _info(args: argparse.Namespace) -> int:
    print(json.dumps(read_model_info(args.model).to_dict(), indent=2))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(
        args.sample, args.output, method=args.method, iterations=args.iterations, device=args.device, seed=args.seed
    )


if __name__ == "__main__":
    sys.exit(main())
