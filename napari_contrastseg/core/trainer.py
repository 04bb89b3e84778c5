"""The one training loop every front end drives: ``for event in train(data, config): ...``."""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from . import distributed
from .augment import SpatialAugment, intensity_augment
from .averaging import WeightAverage
from .blend_weight import choose_weight
from .budget import Budget, Plateau, learning_rate_factor
from .config import TrainConfig
from .data import SegmentationData
from .device import autocast, describe_device, release_memory, select_device
from .errors import ContrastSegError, InputError, TrainingError
from .events import Checkpoint, Estimate, Failed, Finished, LossValues, Preview, Started, Step, TrainingEvent
from .forest import ForestLabels, PixelForest, forest_labels, slices_first
from .growth import grown_labels
from .holdout import HeldOutSet, estimate_note, split_painting
from .inference import predict_normalized
from .methods import Batch, create_method
from .methods.schedule import seeded_generator
from .model import TrainedModel
from .network import UNet, channels_last
from .sampling import PatchSampler
from .setup import TrainingPlan, check_warm_start, plan_training


class CancelFlag(Protocol):
    """Anything with ``is_set()``, e.g. :class:`threading.Event`."""

    def is_set(self) -> bool: ...


@dataclass
class PreviewRequest:
    """The slice a front end wants previewed; it may change ``index``/``axis`` while training runs.

    For a 2D network on a volume the preview is along the training slice axis; ``index`` None means the middle
    painted slice. ``axis`` is used by 3D networks only.
    """

    index: int | None = None
    axis: int | None = None


def train(
    data: SegmentationData | Sequence[SegmentationData],
    config: TrainConfig | None = None,
    *,
    initial_model: TrainedModel | None = None,
    cancel: CancelFlag | None = None,
    preview: PreviewRequest | None = None,
    checkpoint_dir: str | Path | None = None,
) -> Iterator[TrainingEvent]:
    """Train on painted voxels (and, per method, unpainted ones) of one image or several, yielding events.

    Yields :class:`Started`, then :class:`Step` every iteration, :class:`Preview` every ``preview_every`` steps
    when ``preview`` is given, :class:`Checkpoint` every ``checkpoint_every`` steps when ``checkpoint_dir`` is
    given, and finally :class:`Finished` (also after a cancel, with the last weights) or :class:`Failed`.
    Problems never escape as exceptions: they arrive as a :class:`Failed` event with a plain message.

    Under ``torchrun`` (a process group initialised, see :mod:`.distributed`) every rank runs this with the same
    config: each rank trains on its own ``batch_size`` crops of one shared draw of ``world_size * batch_size``,
    gradients, BatchNorm statistics and the methods' queues are shared, and only rank 0 writes checkpoints.
    """
    config = config or TrainConfig()
    device = None
    try:
        plan = plan_training(data, config)
        device = select_device(config.device)
        yield from _run(plan, config, device, initial_model, cancel, preview, checkpoint_dir)
    except ContrastSegError as err:
        yield Failed(str(err), type(err).__name__)
    except Exception as err:  # noqa: BLE001 - front ends need an event, not a crash
        yield Failed(f"Training failed unexpectedly: {type(err).__name__}: {err}", type(err).__name__)
    finally:
        if device is not None:
            release_memory(device)


def train_model(
    data: SegmentationData | Sequence[SegmentationData], config: TrainConfig | None = None, **options
) -> TrainedModel:
    """Run :func:`train` to the end and return the model; a :class:`Failed` event raises :class:`TrainingError`."""
    for event in train(data, config, **options):
        if isinstance(event, Failed):
            raise TrainingError(event.message)
        if isinstance(event, Finished):
            return event.model
    raise TrainingError("training ended without a result")


def _run(plan, config, device, initial_model, cancel, preview, checkpoint_dir) -> Iterator[TrainingEvent]:
    info = plan.info
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    network = UNet(info.spatial_dims, info.network_channels, info.n_classes, info.network)
    warm = "none"
    if initial_model is not None:
        warm = check_warm_start(initial_model, info)
        state = initial_model.network.state_dict()
        if warm != "full":
            state = {k: v for k, v in state.items() if not k.startswith("head.")}
        network.load_state_dict(state, strict=warm == "full")
    network.to(device, memory_format=channels_last(info.spatial_dims)).train()
    distributed.broadcast_state(network)
    method = create_method(config.method, network, info.n_classes, config.method_options).to(device)
    method.resume = warm != "none"  # Continue fine-tunes: the pre-training stages are not run again
    method.pretraining = config.pretrain
    if config.pretrain and not method.pretrainable:
        raise InputError(f"Method {config.method!r} has no label-free stage to pre-train; use semicontrast or action.")
    distributed.broadcast_state(method)
    params = [p for m in (network, method) for p in m.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    use_fp16 = config.amp and device.type == "cuda" and not torch.cuda.is_bf16_supported()
    scaler = torch.amp.GradScaler("cuda", enabled=use_fp16)
    stepped = torch.compile(network) if config.compile else network  # shares the weights; previews use `network`
    train_labels, held = split_painting(plan.labels, config.holdout, info.slice_axis, info.spatial_dims, rng)
    sampler = PatchSampler(plan.images, train_labels, tuple(info.patch_size), info.slice_axis, rng,
                           info.network.context, config.sampling_balance)  # fmt: skip
    held_out = HeldOutSet(sampler, held, config.holdout, info.slice_axis, info.spatial_dims, rng)
    note = estimate_note(plan.labels, info.slice_axis)
    augment = SpatialAugment(config.augmentation, info.spatial_dims, seeded_generator())
    trained = warm == "full" and _trained_on_labels(initial_model)  # Continue: its first estimate counts
    plateau, best = Plateau(config.holdout, method.final_stage_start, trained_start=trained), None
    batch_size = config.batch_size
    yield Started(describe_device(device), sum(p.numel() for p in network.parameters()), config.method,
                  config.iterations, f"{info.spatial_dims}d", info.slice_axis, tuple(info.patch_size), batch_size,
                  warm, config.time_budget, int(sum((h > 0).sum() for h in held)), info.normalization.mode)  # fmt: skip
    budget = Budget(config.iterations, config.time_budget, device)  # the forest's seconds count too
    with_forest = config.forest.enabled and info.spatial_dims == 2 and not config.pretrain  # 3D patches: without
    forest = _forest(plan, config, train_labels, held) if with_forest else None
    extras = []  # (sampler, share of the labelled crops) of labels beside the painting
    if forest is not None and forest.labels is not None:
        extras.append((PatchSampler(plan.images, forest.labels, tuple(info.patch_size), info.slice_axis, rng,
                                    info.network.context, config.sampling_balance), config.forest.share))  # fmt: skip
    grown = grown_labels(plan, config, method.final_stage_start, rng)
    average = WeightAverage(network, config.ema) if config.ema else None
    scored = network if average is None else average.network  # what is scored, previewed and returned
    iteration, reason, losses, progress, stage = 0, "", {}, 0.0, 0
    while True:
        if distributed.any_rank(cancel is not None and cancel.is_set(), device):
            reason = "cancelled"
            break
        progress = budget.progress(iteration)
        if progress >= 1:
            reason = budget.exhausted_by(iteration)
            break
        batch = _sample(sampler, batch_size, method, augment, config, device, extras + (grown.extras if grown else []))
        now, within = method.position(progress) if method.stagewise else (0, progress)
        if now != stage:  # each stage is its own optimisation: fresh moments, its own learning-rate schedule
            optimizer.state.clear()
            stage = now
            if average is not None:
                average.restart(network)
        for group in optimizer.param_groups:
            group["lr"] = config.learning_rate * learning_rate_factor(within)
        try:
            losses = _step(stepped, method, optimizer, scaler, batch, progress, config.amp, device)
        except torch.OutOfMemoryError:
            batch_size = _smaller_batch(optimizer, batch_size, device)
            continue
        method.after_step(network, progress)
        if average is not None:
            average.update(network)
        iteration += 1
        elapsed = budget.elapsed
        progress = budget.progress(iteration)
        yield Step(iteration, config.iterations, losses, optimizer.param_groups[0]["lr"], iteration / elapsed,
                   batch_size, progress, elapsed)  # fmt: skip
        if len(held_out) and distributed.any_rank(plateau.due(progress, elapsed), device):
            estimate, best = _estimate(scored, held_out, plateau, info, iteration, budget, device, best, note)
            yield estimate
            if plateau.stalled(progress):
                reason = "no longer improving"
                break
        if grown is not None and grown.due(progress):
            grown.grow(scored, device)
        if preview is not None and config.preview_every and iteration % config.preview_every == 0:
            yield _preview(scored, plan, preview, iteration, device)
        if (
            checkpoint_dir is not None
            and distributed.rank() == 0
            and config.checkpoint_every
            and iteration % config.checkpoint_every == 0
        ):
            snapshot = _snapshot(scored, plan, config, iteration, budget.elapsed, losses, device)
            yield Checkpoint(iteration, str(snapshot.save(Path(checkpoint_dir) / "checkpoint.safetensors")))
    final = None
    if len(held_out) and iteration:
        final, best = _estimate(scored, held_out, plateau, info, iteration, budget, device, best, note)
        yield final
        if best is not None and best[1] is not final:
            scored.load_state_dict(best[0])
    returned = best[1] if best is not None else final
    blended = config.forest.blend and info.spatial_dims == 2 and not config.pretrain and distributed.rank() == 0
    fitting = budget.elapsed
    trees = _pixel_forest(plan, config) if blended and iteration else None  # also when cancelled: seconds
    weight, scores = _blend_weight(scored, plan, config, train_labels, held, device) if trees is not None else (0.0, {})
    seconds = budget.elapsed  # the forest's and the weight choice's seconds count
    model = _snapshot(scored, plan, config, iteration, seconds, losses, device, reason, returned, held, trees, weight)
    if trees is not None:  # the held-out estimate scored the network alone; the forest learnt all of the painting
        model.info.training["forest_blend"] = {
            "weight": weight,
            "seconds": round(seconds - fitting, 2),
            "held_out_dice": {f"{w:g}": round(d, 4) for w, d in scores.items()},
        }
    if forest is not None:  # whether the gate let its labels in, and why
        dice = forest.held_out_dice if math.isfinite(forest.held_out_dice) else None  # None: nothing held out
        model.info.training["forest"] = {"held_out_dice": dice, "used": forest.labels is not None}
    if grown is not None:
        model.info.training["growth"] = grown.summary()
    del network, stepped, method, optimizer, average, scored
    release_memory(device)
    yield Finished(iteration, reason == "cancelled", seconds, model, model.info.training, reason, returned)


def _trained_on_labels(model: TrainedModel) -> bool:
    """Whether ``model``'s weights learnt from a painting (not label-free pre-training alone, whose head is
    untrained); models written before the config was stored count as trained."""
    return not (model.info.training.get("config") or {}).get("pretrain", False)


def _smaller_batch(optimizer, batch_size: int, device: torch.device) -> int:
    """After running out of GPU memory: half the batch, or a :class:`TrainingError` where that cannot help."""
    optimizer.zero_grad(set_to_none=True)
    release_memory(device)
    if distributed.is_distributed():
        raise TrainingError(
            f"Out of GPU memory on rank {distributed.rank()} with {batch_size} crops per step: restart "
            "with a smaller batch size (ranks cannot shrink their batches one by one)."
        ) from None
    if batch_size == 1:
        raise TrainingError(
            "Out of GPU memory even with one crop per step: use a smaller patch size, a smaller network, or the CPU."
        ) from None
    return max(1, batch_size // 2)


def _estimate(network, held_out, plateau, info, iteration, budget, device, best, note=""):
    """Score the held-out painting; returns the :class:`Estimate` (with ``note``, what it cannot see) and the best
    ``(state, estimate)`` so far."""
    start = time.perf_counter()
    scores = held_out.dice(network, device)
    foreground = [d for c, d in scores.items() if c > 1]  # the split holds out foreground whenever it holds out any
    mean = float(np.mean(foreground)) if foreground else float("nan")
    progress = budget.progress(iteration)
    improved = plateau.update(mean, progress, budget.elapsed, time.perf_counter() - start)
    best = best if math.isfinite(plateau.best) else None  # weights of pre-training stages are not kept
    dice = {info.class_names[c - 1]: d for c, d in scores.items()}
    estimate = Estimate(iteration, round(budget.elapsed, 3), dice, mean, improved, note)
    if improved:
        best = ({k: v.detach().clone() for k, v in network.state_dict().items()}, estimate)
    return estimate, best


def _forest(plan, config, train_labels, held) -> ForestLabels:
    """The forest's labels of the unpainted slices and its held-out Dice (:mod:`.forest`)."""
    sigmas = tuple(plan.info.network.filters)
    return forest_labels(plan.images, train_labels, held, plan.info.slice_axis, sigmas, config.forest, config.seed)


def _pixel_forest(plan, config, labels=None, held=None) -> PixelForest:
    """A forest to blend into the predictions (:mod:`.forest`), fitted on ``labels`` (the whole painting unless
    given; ``held``, the held-out share, is left out)."""
    labels = plan.labels if labels is None else labels
    held = [np.zeros_like(lab) for lab in labels] if held is None else held
    axis = plan.info.slice_axis
    stacks = [slices_first(i, lab, h, axis) for i, lab, h in zip(plan.images, labels, held, strict=True)]
    return PixelForest.fit(stacks, tuple(plan.info.network.filters), config.forest, config.seed)[0]


def _blend_weight(network, plan, config, train_labels, held, device) -> tuple[float, dict[float, float]]:
    """The forest's weight chosen on the held-out painting, and each candidate's score (:mod:`.blend_weight`)."""
    weights = tuple(dict.fromkeys((config.forest.blend, *config.forest.weights)))  # the configured first: wins ties
    if len(weights) == 1 or not any((h > 0).any() for h in held):
        return weights[0], {}
    forest = _pixel_forest(plan, config, train_labels, held)
    return choose_weight(network, plan.info, plan.images, held, forest, weights, device)


def _sample(sampler, batch_size, method, augment, config, device, extras=()) -> Batch:
    """This rank's ``batch_size`` crops of one draw of ``world_size * batch_size`` (identical on every rank),
    spatially augmented (labels along) and, for the labelled crops, in intensity too; for each ``(sampler,
    share)`` of ``extras`` (forest labels, grown pseudo-labels) that share of the labelled crops come from that
    sampler. Every rank augments the whole draw with the same generator and keeps its share, so that ranks stay
    in step and N ranks train as one process with N times the batch. Pre-training: unlabelled crops only (the
    labelled ones are empty)."""
    world, rank = distributed.world_size(), distributed.rank()
    images = labels = torch.zeros(0)
    if not config.pretrain:
        n = batch_size * world
        counts, left = [], n - 1  # the painting keeps at least one crop
        for _, share in extras:
            counts.append(min(round(share * n), left))
            left -= counts[-1]
        draws = [sampler.labelled(n - sum(counts))]
        draws += [s.labelled(k) for (s, _), k in zip(extras, counts, strict=True) if k]
        crops = draws[0] if len(draws) == 1 else [np.concatenate(parts) for parts in zip(*draws, strict=True)]
        images, labels = augment(*(_to_device(a, device) for a in crops))
        if config.augmentation.enabled and config.augmentation.intensity:
            images = intensity_augment(images, augment.generator, probability=config.augmentation.probability)
        mine = slice(rank * batch_size, (rank + 1) * batch_size)
        images, labels = images[mine], labels[mine]
    unlabelled = None
    if method.needs_unlabelled:
        n = method.unlabelled_count(batch_size)
        unlabelled = augment(_to_device(sampler.unlabelled(n * world), device))[0][rank * n : (rank + 1) * n]
    return Batch(images, labels, unlabelled)


def _to_device(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """Host crops to the device; on CUDA through pinned memory, without waiting for the copy."""
    tensor = torch.from_numpy(array)
    if device.type != "cuda":
        return tensor.to(device)
    return tensor.pin_memory().to(device, non_blocking=True)


def _step(network, method, optimizer, scaler, batch, progress, amp, device) -> LossValues:
    """One optimisation step, queued on the device without waiting for it (no device-to-host copy)."""
    optimizer.zero_grad(set_to_none=True)
    with autocast(device, amp):
        terms = method.losses(network, batch, progress)
    total = torch.stack([t.float() for t in terms.values()]).sum()
    scaler.scale(total).backward()
    distributed.average_gradients(p for group in optimizer.param_groups for p in group["params"])
    scaler.step(optimizer)
    scaler.update()
    distributed.average_buffers(network)
    values = torch.stack([t.detach().float() for t in (*terms.values(), total)])
    distributed.mean_over_ranks([values])
    return LossValues([*terms, "total"], values)


def _preview(network: UNet, plan: TrainingPlan, request: PreviewRequest, iteration: int, device) -> Preview:
    """Predict the requested slice (or the whole 2D image) with the current weights."""
    info, image, labels = plan.info, plan.images[0], plan.labels[0]  # the first image is the one on screen
    axis = index = None
    if image.ndim == 4:
        axis = info.slice_axis if info.spatial_dims == 2 else (request.axis or 0) % 3
        painted = np.flatnonzero((labels > 0).any(axis=tuple(a for a in range(3) if a != axis)))
        painted = painted if painted.size else np.array([image.shape[axis + 1] // 2])  # an unpainted first image
        index = request.index if request.index is not None else int(painted[len(painted) // 2])
        index = int(np.clip(index, 0, image.shape[axis + 1] - 1))
        if info.spatial_dims == 2:  # the slice, with the neighbours that smoothing averages in
            lo, hi = (max(0, index - 1), index + 2) if info.smooths_slices else (index, index + 1)
        else:
            half = info.patch_size[axis] // 2
            lo = max(0, index - half)
            hi = lo + 2 * half
        image = np.take(image, range(lo, min(image.shape[axis + 1], hi)), axis=axis + 1)
    network.eval()
    try:
        result = predict_normalized(network, image, info, device=device, probabilities=False)
    finally:
        network.train()
    labels, uncertainty = result.labels, result.uncertainty
    if axis is not None:
        labels, uncertainty = np.take(labels, index - lo, axis=axis), np.take(uncertainty, index - lo, axis=axis)
    return Preview(iteration, axis, index, labels, uncertainty)


def _snapshot(network, plan, config, iteration, seconds, losses, device, reason="", estimate=None, held=(),
              forest=None, forest_weight=0.0):  # fmt: skip
    """A CPU copy of the current weights with the run's summary in its metadata (and ``forest``, blended in with
    ``forest_weight``)."""
    counts = sum(np.bincount(lab.reshape(-1), minlength=plan.info.n_classes + 1)[1:] for lab in plan.labels)
    info = copy.deepcopy(plan.info)
    info.training = {
        "iterations": iteration,
        "cancelled": reason == "cancelled",
        "stop_reason": reason,
        "estimated_dice": None if estimate is None else estimate.dice,
        "estimated_mean_dice": None if estimate is None else estimate.mean,
        "held_out_voxels": int(sum((h > 0).sum() for h in held)),
        "seconds": round(seconds, 2),
        "device": describe_device(device),
        "final_losses": dict(losses),
        "painted_voxels_per_class": {n: int(c) for n, c in zip(info.class_names, counts, strict=True)},
        "config": json.loads(json.dumps(config.to_dict())),  # JSON-plain, as stored
    }
    info = replace(info, forest_weight=forest_weight if forest is not None else 0.0)
    cpu_net = copy.deepcopy(network).cpu().eval()
    return TrainedModel(cpu_net, info, forest)
