"""Showing a training run in a terminal: a progress bar, or the trainer's events as JSON lines."""

from __future__ import annotations

import sys
from collections.abc import Iterator

from .core.events import Estimate, Failed, Finished, Started, Step, TrainingEvent

#: The bar shows the loss every this many steps (reading it waits for the GPU; the bar itself moves every step).
LOSS_SHOWN_EVERY = 10
#: The bar counts the budget in this many parts.
BAR_UNITS = 100


def consume_events(events: Iterator[TrainingEvent], jsonl: bool, show: bool = True) -> Finished | None:
    """Print events (JSON lines, or a progress bar over the budget); return the Finished event, or None after a
    failure. ``show=False`` (ranks other than 0 of a distributed run) prints failures only."""
    bar = None
    jsonl = jsonl and show
    shown: dict[str, str] = {}
    try:
        for event in events:
            if jsonl:
                print(event.to_json(), flush=True)
            elif show and isinstance(event, Started):
                bar = _bar(event)
            elif isinstance(event, Step) and bar is not None:
                bar.n = round(event.progress * BAR_UNITS)
                shown["it"] = str(event.iteration)
                if event.iteration % LOSS_SHOWN_EVERY == 0:
                    shown["loss"] = f"{event.losses['total']:.3f}"
                bar.set_postfix(shown, refresh=False)
                bar.update(0)
            elif isinstance(event, Estimate) and bar is not None:
                shown["estimated Dice"] = f"{event.mean:.3f}"
            if isinstance(event, Failed):
                if not jsonl:
                    print(f"contrastseg: error: {event.message}", file=sys.stderr)
                return None
            if isinstance(event, Finished):
                if bar is not None:
                    bar.n = BAR_UNITS
                    bar.refresh()
                return event
    finally:
        if bar is not None:
            bar.close()
    return None


def _bar(started: Started):
    """Say what runs and for how long, and return a tqdm bar over the budget."""
    from tqdm import tqdm

    limits = []
    if started.time_budget:
        limits.append(f"{started.time_budget:.0f} s")
    if started.iterations:
        limits.append(f"{started.iterations} iterations")
    held = started.held_out_voxels
    note = f"; {held} painted voxels held out to estimate Dice" if held else ""
    what = f"{started.method} on {started.device}, {started.dims} crops {started.patch_size}"
    print(f"training {what}, for at most {' or '.join(limits)}{note}", file=sys.stderr)
    return tqdm(total=BAR_UNITS, desc="training", unit="%", bar_format="{l_bar}{bar}| {elapsed}{postfix}")
