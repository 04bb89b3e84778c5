"""Showing a training run in a terminal: a progress bar, or the trainer's events as JSON lines."""

from __future__ import annotations

import sys
from collections.abc import Iterator

from .core.events import Failed, Finished, Step, TrainingEvent

#: The bar shows the loss every this many steps (reading it waits for the GPU; the bar itself moves every step).
LOSS_SHOWN_EVERY = 10


def consume_events(events: Iterator[TrainingEvent], jsonl: bool, total: int, show: bool = True) -> Finished | None:
    """Print events (JSON lines, or a progress bar); return the Finished event, or None after a failure.

    ``show=False`` (ranks other than 0 of a distributed run) prints failures only.
    """
    bar = None
    jsonl = jsonl and show
    if show and not jsonl:
        from tqdm import tqdm

        bar = tqdm(total=total, desc="training", unit="it")
    try:
        for event in events:
            if jsonl:
                print(event.to_json(), flush=True)
            elif isinstance(event, Step) and bar is not None:
                bar.update(1)
                if event.iteration % LOSS_SHOWN_EVERY == 0 or event.iteration == event.iterations:
                    bar.set_postfix(loss=f"{event.losses['total']:.3f}", refresh=False)
            if isinstance(event, Failed):
                if not jsonl:
                    print(f"contrastseg: error: {event.message}", file=sys.stderr)
                return None
            if isinstance(event, Finished):
                return event
    finally:
        if bar is not None:
            bar.close()
    return None
