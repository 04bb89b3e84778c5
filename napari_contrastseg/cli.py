"""The ``contrastseg`` command: train, predict, info and demo."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

from . import __version__
from .core.config import NetworkConfig, NormalizationConfig, TrainConfig
from .core.data import SegmentationData
from .core.errors import ContrastSegError
from .core.image_io import SUFFIXES, image_suffix, read_image, write_image
from .core.model_io import load_model, read_model_info
from .core.trainer import train
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

    p = sub.add_parser("train", help="train a model on an image and its sparse painted labels")
    p.add_argument("image", type=Path)
    p.add_argument("labels", type=Path, help="0 = unpainted, 1..K = classes (1 = background)")
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
    p.add_argument("--features", help="U-Net widths, e.g. 16,32,64,128")
    p.add_argument("--window", nargs=2, type=float, metavar=("MIN", "MAX"), help="fixed intensity window (CT)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="method option (JSON value)")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """A :class:`TrainConfig` from parsed ``train`` options."""
    network = NetworkConfig(features=tuple(int(f) for f in args.features.split(","))) if args.features else None
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
    config.network = network or config.network
    config.normalization = norm or config.normalization
    return config


def _train(args: argparse.Namespace) -> int:
    image, labels = read_image(args.image), read_image(args.labels)
    names = [n.strip() for n in args.classes.split(",")] if args.classes else None
    data = SegmentationData(image.array, labels.array, names, image.spacing, args.channel_axis)
    initial = load_model(args.warm_start) if args.warm_start else None
    cancel = threading.Event()
    _stop_on_signals(cancel)
    events = train(
        data, config_from_args(args), initial_model=initial, cancel=cancel, checkpoint_dir=args.checkpoint_dir
    )
    finished = consume_events(events, jsonl=args.events == "jsonl", total=args.iterations)
    if finished is None:
        return 1
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
    from tqdm import tqdm

    model = load_model(args.model)
    inputs = _expand_inputs(args.images)
    single = len(inputs) == 1 and args.output.suffix != "" and not args.output.is_dir()
    for path in inputs:
        image = read_image(path)
        target = args.output if single else args.output / _output_name(path, "labels")
        with tqdm(desc=path.name, unit="slice" if model.info.spatial_dims == 2 else "tile") as bar:

            def progress(done: int, total: int, bar=bar) -> None:
                bar.total = total
                bar.n = done
                bar.refresh()

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
        print(f"{path} -> {target}")
    return 0


def _expand_inputs(paths: list[Path]) -> list[Path]:
    """Files as given; folders replaced by the supported image files inside them (sorted)."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and str(p).lower().endswith(SUFFIXES))
            if not found:
                raise ContrastSegError(f"{path} holds no image files ({', '.join(SUFFIXES)}).")
            out.extend(found)
        else:
            out.append(path)
    return out


def _output_name(path: Path, tag: str) -> str:
    suffix = image_suffix(path)
    return path.name[: -len(suffix)] + f"_{tag}" + suffix


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
