"""``contrastseg train``: one image and its painting, or many images, into a model file."""

from __future__ import annotations

import argparse
import json
import math
import signal
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..core import distributed
from ..core.config import NORMS, HoldoutConfig, NetworkConfig, NormalizationConfig, TrainConfig
from ..core.data import SegmentationData
from ..core.errors import ContrastSegError
from ..core.files import check_output
from ..core.image_io import read_image
from ..core.model import TrainedModel, load_model
from ..core.model_io import model_path
from ..core.trainer import train
from ..core.training_set import find_pairs, load_pairs
from ..progress import consume_events

#: How an existing output may be replaced, said in refusals.
REPLACE_HINT = ", or pass --overwrite to replace it"


def add_parser(sub) -> None:
    d = TrainConfig()
    p = sub.add_parser(
        "train",
        help="train a model on an image and its sparse painted labels, or on many images",
        description="Train on IMAGE LABELS, or on the images of --images. By default training runs for about "
        f"{d.time_budget:.0f} seconds, or less once the held-out share of the painting stops improving; give "
        "--iterations for a fixed number of steps. Under torchrun, trains data-parallel (gloo on CPUs, NCCL on GPUs); "
        "rank 0 writes the model and prints progress.",
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
    p.add_argument("--overwrite", action="store_true", help="replace an existing model file (never an input)")
    p.add_argument("--classes", help="comma-separated class names, background first")
    p.add_argument("--warm-start", type=Path, help="continue from this model's weights")
    p.add_argument(
        "--pretrain",
        action="store_true",
        help="label-free pre-training on IMAGE (no LABELS needed; semicontrast or action): a starting point for a "
        "later --warm-start, which then skips the pre-training stages",
    )
    p.add_argument("--events", choices=["jsonl"], help="print trainer events as JSON lines on stdout")
    p.add_argument("--checkpoint-dir", type=Path, help="folder for intermediate checkpoints")
    p.add_argument("--method", default=d.method, help="supervised, semicontrast or action")
    p.add_argument(
        "--time-budget",
        type=float,
        help=f"training seconds (default {d.time_budget:.0f}, or none when --iterations is given)",
    )
    p.add_argument("--iterations", type=int, help="stop after this many steps (default: the time budget decides)")
    p.add_argument(
        "--holdout",
        type=float,
        default=d.holdout.fraction,
        help="share of each class's painting kept out of training to estimate Dice, stop and pick the weights (0: off)",
    )
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--patch-size", type=int, default=d.patch_size)
    p.add_argument("--dims", choices=["auto", "2d", "3d"], default=d.dims)
    p.add_argument("--slice-axis", type=int, help="axis to slice 3D volumes along (default: the painted one)")
    p.add_argument("--channel-axis", type=int, help="the image's channel axis (colour pictures: found by itself)")
    p.add_argument("--learning-rate", type=float, default=d.learning_rate)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--device", default=d.device, help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--no-amp", action="store_true", help="full precision on CUDA")
    p.add_argument("--no-augment", action="store_true", help="train on the crops as they are (no augmentation)")
    widths = ",".join(map(str, d.network.features))
    p.add_argument("--features", help=f"U-Net widths (default: the --warm-start model's, else {widths})")
    p.add_argument(
        "--norm", choices=NORMS, help=f"normalisation layer (default: the --warm-start model's, else {d.network.norm})"
    )
    p.add_argument(
        "--context",
        type=int,
        help="neighbouring slices on each side a 2D network on a volume sees "
        f"(default: the --warm-start model's, else {d.network.context})",
    )
    scales = ",".join(f"{s:g}" for s in d.network.filters) or "none"
    p.add_argument(
        "--filters",
        type=filter_scales,
        help="Gaussian scales in pixels of the fixed filter bank in front of the network, e.g. 1,2,4,8, or none "
        f"(default: the --warm-start model's, else {scales})",
    )
    p.add_argument(
        "--through-plane",
        action=argparse.BooleanOptionalAction,
        help="average each slice's class probabilities with its neighbours' when a 2D network predicts a volume "
        f"(default: the --warm-start model's, else {'on' if d.network.through_plane else 'off'})",
    )
    p.add_argument(
        "--forest-labels",
        action=argparse.BooleanOptionalAction,
        default=d.forest.enabled,
        help="a random forest trained on the painting in seconds labels unpainted slices where it is confident, and "
        "the network learns from those labels too (2D training)",
    )
    p.add_argument(
        "--grow",
        action=argparse.BooleanOptionalAction,
        default=d.growth.enabled,
        help="pseudo-labels grown outward from the painted slices: during training the network labels the unpainted "
        "slices next to the painting where it is sure, and learns from them too (2D training on volumes)",
    )
    p.add_argument(
        "--forest-gate",
        type=float,
        default=d.forest.gate,
        metavar="DICE",
        help="use the forest's labels only when the forest scores at least this Dice on the held-out painting "
        f"(0: always; default {d.forest.gate:g})",
    )
    p.add_argument(
        "--forest-blend",
        type=float,
        metavar="WEIGHT",
        help="the weight of a random forest, fitted on the painting at the end of training and saved with the "
        "model, in every prediction (0: the network alone; 2D training; default: the --warm-start model's, else "
        f"{d.forest.blend:g})",
    )
    p.add_argument("--window", nargs=2, type=float, metavar=("MIN", "MAX"), help="fixed intensity window (CT)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="method option (JSON value)")
    p.set_defaults(run=run)


def filter_scales(text: str) -> tuple[float, ...]:
    """``1,2,4,8`` -> ``(1.0, 2.0, 4.0, 8.0)``; ``none`` -> ``()``; anything else is refused."""
    if text.strip().lower() in ("none", "0", ""):
        return ()
    try:
        scales = tuple(float(s) for s in text.split(","))
    except ValueError:
        scales = ()
    if not scales or not all(0 < s < math.inf for s in scales):
        raise argparse.ArgumentTypeError(f"expected positive scales such as 1,2,4,8, or none; got {text!r}")
    return scales


def config_from_args(args: argparse.Namespace, model: TrainedModel | None = None) -> TrainConfig:
    """A :class:`TrainConfig` from parsed ``train`` options; network, normalisation and forest-weight options not
    given are the warm-start ``model``'s (else the defaults)."""
    base = model.info.network if model is not None else NetworkConfig()
    features = tuple(int(f) for f in args.features.split(",")) if args.features else base.features
    context = base.context if args.context is None else args.context
    filters = base.filters if args.filters is None else args.filters
    through_plane = base.through_plane if args.through_plane is None else args.through_plane
    network = NetworkConfig(
        features=features,
        dropout=base.dropout,
        norm=args.norm or base.norm,
        context=context,
        filters=filters,
        through_plane=through_plane,
    )
    if args.window:
        normalization = NormalizationConfig(mode="window", window_min=args.window[0], window_max=args.window[1])
    else:
        normalization = model.info.normalization if model is not None else NormalizationConfig()
    options = {}
    for item in args.option:
        key, sep, value = item.partition("=")
        if not sep:
            raise ContrastSegError(f"--option needs KEY=VALUE, got {item!r}")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    defaults = TrainConfig()
    blend = args.forest_blend if args.forest_blend is not None else model.info.forest_weight if model else None
    time_budget = args.time_budget if args.iterations is not None or args.time_budget else defaults.time_budget
    config = TrainConfig(
        method=args.method,
        iterations=args.iterations,
        time_budget=time_budget,
        batch_size=args.batch_size,
        patch_size=args.patch_size,
        dims=args.dims,
        slice_axis=args.slice_axis,
        learning_rate=args.learning_rate,
        seed=args.seed,
        device=args.device,
        amp=not args.no_amp,
        method_options=options,
        network=network,
        normalization=normalization,
        holdout=HoldoutConfig(fraction=args.holdout),
        pretrain=args.pretrain,
        forest=replace(
            defaults.forest,
            enabled=args.forest_labels,
            gate=args.forest_gate,
            blend=defaults.forest.blend if blend is None else blend,
        ),
        growth=replace(defaults.growth, enabled=args.grow),
    )
    if args.no_augment:
        config.augmentation = replace(config.augmentation, enabled=False)
    return config


def run(args: argparse.Namespace) -> int:
    single = args.image is not None and (args.labels is not None or args.pretrain)
    if (args.images is None) != single or (args.images and args.image):
        raise ContrastSegError("give either IMAGE LABELS or --images FOLDER_OR_LIST, not both or neither.")
    names = [n.strip() for n in args.classes.split(",")] if args.classes else None
    inputs = [p for p in (args.image, args.labels, args.warm_start) if p is not None]  # --images: each pair below
    output = check_output(model_path(args.output), inputs, args.overwrite, REPLACE_HINT)
    if args.checkpoint_dir is not None:
        check_output(args.checkpoint_dir / "checkpoint.safetensors", inputs + [output], args.overwrite, REPLACE_HINT)
    if args.images:
        pairs = find_pairs(args.images)
        for pair in pairs:
            check_output(output, [pair.image, *([pair.labels] if pair.labels else [])], overwrite=True)
        data = load_pairs(pairs, names, args.channel_axis)
    else:
        image = read_image(args.image)
        labels = read_image(args.labels).array if args.labels else np.zeros(image.array.shape, np.uint8)
        if args.labels is None and args.channel_axis is not None:  # pre-training: labels of the spatial shape
            labels = np.zeros(np.delete(image.array.shape, args.channel_axis), np.uint8)
        data = SegmentationData(image.array, labels, names, image.spacing, args.channel_axis)
    initial = load_model(args.warm_start) if args.warm_start else None
    config = config_from_args(args, initial)
    device = distributed.init_from_environment(config.device)
    try:
        config.device = str(device) if device is not None else config.device
        return _run_training(args, output, data, config, initial, lead=distributed.rank() == 0)
    finally:
        distributed.shutdown()


def _run_training(
    args: argparse.Namespace,
    output: Path,
    data: SegmentationData | list[SegmentationData],
    config: TrainConfig,
    initial: TrainedModel | None,
    lead: bool,
) -> int:
    """Train, from ``initial``'s weights if given; the lead process (rank 0, the only one outside torchrun) saves."""
    cancel = threading.Event()
    _stop_on_signals(cancel)
    events = train(data, config, initial_model=initial, cancel=cancel, checkpoint_dir=args.checkpoint_dir)
    finished = consume_events(events, jsonl=args.events == "jsonl", show=lead)
    if finished is None:
        return 1
    if not lead:
        return 0
    path = finished.model.save(output)
    if args.events == "jsonl":
        print(json.dumps({"kind": "saved", "path": str(path)}), flush=True)
    else:
        estimate = finished.estimate
        said = "" if estimate is None else f"; estimated Dice {estimate.mean:.3f} on the held-out painting"
        said += f" ({estimate.note})" if estimate is not None and estimate.note else ""
        print(
            f"{finished.stop_reason}: stopped after {finished.iteration} iterations in {finished.seconds:.1f} s"
            f"{said}; model written to {path}"
        )
    return 0


def _stop_on_signals(cancel: threading.Event) -> None:
    """First SIGINT/SIGTERM: finish the current step and save the model; a second one: exit at once."""

    def handler(signum, frame):
        if cancel.is_set():
            raise SystemExit(130)
        cancel.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, handler)
