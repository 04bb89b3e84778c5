"""What the module's widget says about the background process's events (plain text, no Qt, no Slicer)."""

from __future__ import annotations

import numpy as np

#: The progress bar counts the budget in this many parts.
BAR_UNITS = 1000
#: A painting round that raised the estimate by less than this is said to have helped little (as in napari).
SMALL_GAIN = 0.01


def started_text(event: dict) -> str:
    held = event.get("held_out_voxels") or 0
    note = f"; {held} painted voxels held out to estimate Dice" if held else ""
    what = f"{event.get('dims', '?')}, {event.get('n_parameters', '?')} parameters"
    return f"Training on {event.get('device', '?')} ({what}){note}."


def step_text(event: dict, device: str) -> str:
    loss = event.get("losses", {}).get("total")
    loss = f"{loss:.3f}" if isinstance(loss, (int, float)) else "?"
    return (
        f"Training on {device or '?'}: step {event.get('iteration')}, loss {loss}, "
        f"{float(event.get('iterations_per_second', 0.0)):.1f} it/s, "
        f"{float(event.get('progress', 0.0)):.0%} of the budget"
    )


def progress_value(event: dict) -> int:
    """The progress bar's value for a step event."""
    return round(float(event.get("progress", 0.0)) * BAR_UNITS)


def estimate_text(mean, note: str = "") -> str:
    """An estimate event's mean Dice, and its ``note`` (what it cannot see) where it has one."""
    if not isinstance(mean, (int, float)) or not np.isfinite(mean):
        return ""
    return f"Estimated Dice {mean:.2f} (on the held-out share of the painting)" + (f": {note}." if note else "")


def gain_text(estimates: list[tuple[int, float]], note: str = "") -> str:
    """After each training: the estimate, what the last painting added (the "does more paint help?" signal) and
    the last estimate's ``note``."""
    if not estimates:
        return ""
    painted, mean = estimates[-1]
    text = f"Estimated Dice {mean:.2f} with {painted} painted slices"
    earlier = [m for p, m in estimates[:-1] if p < painted]
    if earlier:
        gain = mean - earlier[-1]
        text += f"; the last painting added {gain:+.2f}"
        if gain < SMALL_GAIN:
            text += " (little: more paint may no longer help much)"
    return text + (f"; {note}." if note else ".")


def suggestion_text(suggestion: dict) -> str:
    return (
        f"Slice {suggestion['index']} along axis {'IJK'[int(suggestion['axis'])]}: mean uncertainty "
        f"{suggestion['uncertainty']:.2f}, {suggestion['distance']} slices from the nearest painted one. Paint it, "
        "then Train (Continue from last model on)."
    )
