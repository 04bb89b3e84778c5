"""The ``contrastseg`` command: train, predict, suggest, info and demo."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .. import __version__
from ..core.errors import ContrastSegError
from ..core.model_io import read_model_info
from . import predict, suggest, train


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (0 ok, 1 user-facing error, 2 usage)."""
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except ContrastSegError as err:
        print(f"contrastseg: error: {err}", file=sys.stderr)
        return 1


def parser() -> argparse.ArgumentParser:
    """The command's argument parser (one sub-command each: train, predict, suggest, info, demo)."""
    top = argparse.ArgumentParser(prog="contrastseg", description=__doc__)
    top.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = top.add_subparsers(required=True, metavar="COMMAND")
    train.add_parser(sub)
    predict.add_parser(sub)
    suggest.add_parser(sub)

    p = sub.add_parser("info", help="print a model file's metadata")
    p.add_argument("model", type=Path)
    p.set_defaults(run=_info)

    p = sub.add_parser("demo", help="train on a bundled real sample, predict, score and draw an overlay")
    p.add_argument("--sample", default="colin27-deep")
    p.add_argument("-o", "--output", type=Path, default=Path("contrastseg-demo"))
    p.add_argument("--method", default="supervised")
    p.add_argument("--time-budget", type=float, help="training seconds (default: the engine's)")
    p.add_argument("--iterations", type=int, default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true", help="replace files in the output folder")
    p.set_defaults(run=_demo)
    return top


def _info(args: argparse.Namespace) -> int:
    print(json.dumps(read_model_info(args.model).to_dict(), indent=2))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from ..demo import run_demo

    return run_demo(
        args.sample,
        args.output,
        method=args.method,
        time_budget=args.time_budget,
        iterations=args.iterations,
        device=args.device,
        seed=args.seed,
        overwrite=args.overwrite,
    )


if __name__ == "__main__":
    sys.exit(main())
