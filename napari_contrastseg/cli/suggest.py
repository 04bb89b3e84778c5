"""``contrastseg suggest``: the unpainted slices where more paint should help most, from a model and a painting."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..core.image_io import read_image
from ..core.model import load_model
from ..core.suggest import DEFAULT_STRATEGY, STRATEGIES, suggest_slices


def add_parser(sub) -> None:
    p = sub.add_parser(
        "suggest",
        help="name the unpainted slices to paint next",
        description="Predict IMAGE with MODEL and print the K unpainted slices of LABELS (along the model's slice "
        "axis) where painting should help most, best first, with their scores. napari's and Slicer's 'Next slice' "
        "buttons use the same function.",
    )
    p.add_argument("model", type=Path)
    p.add_argument("image", type=Path)
    p.add_argument("labels", type=Path, help="the painting so far (0 = unpainted)")
    p.add_argument("-k", type=int, default=1, help="how many slices (default 1)")
    p.add_argument("--axis", type=int, help="slice axis (default: the model's, else the painted axis)")
    p.add_argument("--strategy", choices=STRATEGIES, default=DEFAULT_STRATEGY)
    p.add_argument("--channel-axis", type=int)
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--json",
        action="store_true",
        help='print one JSON line {"kind": "suggestions", "slices": [{index, axis, ...}]}',
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    model = load_model(args.model)
    image, labels = read_image(args.image), read_image(args.labels)
    picks = suggest_slices(
        model,
        image.array,
        labels.array,
        args.k,
        axis=args.axis,
        strategy=args.strategy,
        channel_axis=args.channel_axis,
        device=args.device,
    )
    if args.json:
        print(json.dumps({"kind": "suggestions", "slices": [p.to_dict() for p in picks]}), flush=True)
    elif not picks:
        print("Every slice is painted already.")
    else:
        for p in picks:
            print(
                f"slice {p.index} along axis {p.axis}: score {p.score:.3f} (mean uncertainty {p.uncertainty:.3f}, "
                f"{p.distance} slices from the nearest painted one)"
            )
    return 0
