"""The held-out share of the painting, the stop rule and time budgets: what the trainer returns and why it stopped."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from napari_contrastseg.core.budget import Budget, Plateau, learning_rate_factor
from napari_contrastseg.core.config import HoldoutConfig, TrainConfig
from napari_contrastseg.core.data import SegmentationData
from napari_contrastseg.core.errors import InputError
from napari_contrastseg.core.events import Estimate, Finished, Started, Step
from napari_contrastseg.core.holdout import HeldOutSet, estimate_note, split_painting
from napari_contrastseg.core.sampling import PatchSampler
from napari_contrastseg.core.trainer import train

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _painting() -> np.ndarray:
    """Two painted slices (axis 0) of a (10, 60, 70) volume: background, a large class, and a 6 x 6 lesion."""
    labels = np.zeros((10, 60, 70), np.int64)
    labels[[2, 7]] = 1
    labels[[2, 7], 10:40, 10:50] = 2
    labels[7, 50:56, 60:66] = 3
    return labels


def test_split_holds_out_whole_blocks_of_every_class_and_keeps_most_for_training():
    labels = _painting()
    train_labels, held = split_painting([labels], HoldoutConfig(), 0, 2, np.random.default_rng(0))
    train_labels, held = train_labels[0], held[0]
    assert np.array_equal(np.where(held > 0, held, train_labels), labels)  # every painted voxel in one of the two
    assert not ((held > 0) & (train_labels > 0)).any()
    for c in (1, 2, 3):
        share = (held == c).sum() / (labels == c).sum()
        assert 0.1 <= share <= 0.5, (c, share)  # the 36-voxel lesion too, with smaller blocks
    # on slice 2 (no lesion) whole 16 x 16 blocks are held out: a block with a held-out voxel has no trained one
    for by in range(0, 60, 16):
        for bx in range(0, 70, 16):
            block_held, block_train = held[2, by : by + 16, bx : bx + 16], train_labels[2, by : by + 16, bx : bx + 16]
            assert not (block_held.any() and block_train.any()), (by, bx)


def test_nothing_is_held_out_when_no_foreground_can_be():
    labels = np.zeros((4, 30, 30), np.int64)
    labels[1] = 1
    labels[1, 5, 5] = 2  # one voxel: holding it out would leave none to train on
    train_labels, held = split_painting([labels], HoldoutConfig(), 0, 2, np.random.default_rng(0))
    assert np.array_equal(train_labels[0], labels) and not held[0].any()
    train_labels, held = split_painting([_painting()], HoldoutConfig(fraction=0), 0, 2, np.random.default_rng(0))
    assert not held[0].any()


def test_held_out_set_scores_each_class_on_its_own_blocks():
    labels = _painting()
    image = np.random.default_rng(0).random((1, *labels.shape), dtype=np.float32)
    train_labels, held = split_painting([labels], HoldoutConfig(), 0, 2, np.random.default_rng(0))
    sampler = PatchSampler([image], train_labels, (32, 32), 0, np.random.default_rng(0), context=1)
    held_out = HeldOutSet(sampler, held, HoldoutConfig(), 0, 2, np.random.default_rng(0))
    assert len(held_out) > 0 and held_out.images.shape[1:] == (3, 32, 32)  # neighbour slices as channels
    assert held_out.classes == [1, 2, 3]
    assert (held_out.labels > 0).sum() <= (held[0] > 0).sum()  # each held-out voxel scored at most once


def test_budget_progress_is_the_larger_share_and_a_run_needs_a_limit():
    import torch

    budget = Budget(100, 1000.0, torch.device("cpu"))
    assert budget.progress(25) == pytest.approx(0.25, abs=0.01)
    assert Budget(None, 0.05, torch.device("cpu")).progress(0) < 1
    timed = Budget(None, 0.05, torch.device("cpu"))
    time.sleep(0.06)
    assert timed.progress(0) == 1.0 and timed.exhausted_by(0) == "time budget"
    assert budget.exhausted_by(100) == "iterations"
    with pytest.raises(InputError, match="time budget"):
        Budget(None, None, torch.device("cpu"))
    assert learning_rate_factor(0) == 1 and learning_rate_factor(1) == pytest.approx(0.05)


def test_plateau_needs_enough_evaluations_a_found_class_and_patience():
    plateau = Plateau(HoldoutConfig(patience=0.3, earliest=0.5, every=0.05))
    for k, progress in enumerate(np.arange(0.05, 0.45, 0.05)):
        plateau.update(0.0 if k < 2 else 0.5, progress, float(progress), 0.0)
    assert not plateau.stalled(0.45)  # before ``earliest``
    for progress in (0.5, 0.6, 0.7, 0.8):
        plateau.update(0.5, progress, progress, 0.0)
    assert plateau.stalled(0.8)  # 0.5 first reached at 0.15: no rise for more than 0.3 of the budget
    zero = Plateau(HoldoutConfig())
    for progress in np.arange(0.1, 1.0, 0.1):
        zero.update(0.0, progress, progress, 0.0)
    assert not zero.stalled(0.9)  # a class not found yet keeps training going


def test_time_budget_run_reports_estimates_and_returns_the_best_weights(data_2d, fast_config):
    fast_config.iterations = None
    fast_config.time_budget = 3.0
    fast_config.holdout = HoldoutConfig(fraction=0.2, block=8)
    events = list(train(data_2d, fast_config))
    started, finished = events[0], events[-1]
    assert isinstance(started, Started) and started.time_budget == 3.0 and started.held_out_voxels > 0
    assert isinstance(finished, Finished) and finished.stop_reason in ("time budget", "no longer improving")
    steps = [e for e in events if isinstance(e, Step)]
    assert steps[-1].seconds <= 3.5 and 0 < steps[0].progress < steps[-1].progress <= 1
    estimates = [e for e in events if isinstance(e, Estimate)]
    assert len(estimates) >= 2 and set(estimates[0].dice) <= {"background", "class 2"}
    assert not estimates[0].best  # after one step: the yardstick, never returned
    best = max(e.mean for e in estimates[1:])
    assert finished.estimate.mean == pytest.approx(best)  # the returned weights are the best-scored ones
    assert finished.summary["estimated_mean_dice"] == pytest.approx(best)
    assert finished.summary["stop_reason"] == finished.stop_reason


def test_the_estimate_says_when_it_cannot_see_beyond_the_only_painted_slice(data_3d, fast_config):
    one = data_3d.labels.copy()
    one[4] = 0  # painted on slice 1 alone
    assert estimate_note([data_3d.labels], 0) == ""  # two painted slices
    assert "only painted slice" in estimate_note([one], 0)
    assert "only painted slice" in estimate_note([one], None)  # 3D networks: the axis with the fewest painted slices
    assert estimate_note([one], 1) == ""  # along another axis the painting spans many slices
    assert estimate_note([one, data_3d.labels], 0) == ""  # two images: three painted slices in all
    assert estimate_note([one[1]], None) == ""  # a 2D image has no other slices
    fast_config.holdout = HoldoutConfig(fraction=0.3, block=8)
    events = list(train(SegmentationData(data_3d.image, one), fast_config))
    estimates = [e for e in events if isinstance(e, Estimate)]
    assert estimates and all("only painted slice" in e.note for e in estimates)
    assert "only painted slice" in events[-1].estimate.note
    events = list(train(data_3d, fast_config))
    assert all(e.note == "" for e in events if isinstance(e, Estimate))


def test_a_run_without_any_limit_is_refused(data_2d):
    events = list(train(data_2d, TrainConfig(iterations=None, time_budget=None, device="cpu")))
    assert events[-1].kind == "failed" and "time budget" in events[-1].message


def test_painting_is_never_changed_by_the_split(data_2d, fast_config):
    labels = data_2d.labels.copy()
    fast_config.holdout = HoldoutConfig(fraction=0.3, block=4)
    list(train(SegmentationData(data_2d.image, data_2d.labels), fast_config))
    assert np.array_equal(data_2d.labels, labels)


def test_plateau_counts_only_the_last_stage():
    plateau = Plateau(HoldoutConfig(patience=0.3, earliest=0.5, every=0.05), start=0.5)
    for progress in np.arange(0.05, 0.5, 0.05):  # pre-training: a good score early, then none better
        plateau.update(0.6 if progress < 0.1 else 0.3, progress, progress, 0.0)
    assert not plateau.stalled(0.45)
    assert not plateau.update(0.1, 0.5, 0.5, 0.0)  # the last stage begins: its first score is the yardstick
    assert plateau.update(0.2, 0.55, 0.55, 0.0) and plateau.best == 0.2  # the pre-training's 0.6 is forgotten
    for progress in (0.6, 0.65, 0.7):
        plateau.update(0.2, progress, progress, 0.0)
    assert not plateau.stalled(0.7)  # 0.4 of the last stage: before ``earliest`` of it
    for progress in (0.75, 0.8):
        plateau.update(0.2, progress, progress, 0.0)
    assert plateau.stalled(0.8)  # no rise for 0.5 of the last stage, half of it done


def test_the_untrained_network_is_a_yardstick_never_the_best_nor_a_reason_to_stop():
    config = HoldoutConfig(patience=0.3, earliest=0.5, every=0.05)
    cold = Plateau(config)
    assert not cold.update(0.7, 0.0, 0.0, 0.0)  # after one step: a lucky score on a few held-out voxels
    assert cold.best == -math.inf
    for progress in np.arange(0.05, 1.0, 0.05):
        cold.update(0.6, progress, progress, 0.0)
    assert cold.best == 0.6 and not cold.stalled(0.95)  # never above the yardstick: training goes on to the end
    tiny = Plateau(config)
    tiny.update(0.005, 0.0, 0.0, 0.0)  # 13 classes: one voxel of one class found by chance
    for progress in np.arange(0.05, 0.9, 0.05):
        tiny.update(0.0, progress, progress, 0.0)
    assert not tiny.stalled(0.85)  # the old rule stopped here, having learnt nothing
    warm = Plateau(config, trained_start=True)  # Continue: the first score is of weights trained on this painting
    assert warm.update(0.7, 0.0, 0.0, 0.0) and warm.best == 0.7
    for progress in np.arange(0.05, 0.9, 0.05):
        warm.update(0.6, progress, progress, 0.0)
    assert warm.stalled(0.85)  # and it is what a Continue that only got worse returns


@pytest.mark.parametrize("method,start", [("supervised", 0.0), ("semicontrast", 0.6), ("action", 0.5)])
def test_the_last_stage_starts_after_the_pre_training_shares(method, start):
    from napari_contrastseg.core.config import TrainConfig
    from napari_contrastseg.core.methods import create_method
    from napari_contrastseg.core.network import UNet

    m = create_method(method, UNet(2, 1, 3, TrainConfig().network), 3)
    assert m.final_stage_start == pytest.approx(start)
    m.resume = True
    assert m.final_stage_start == 0.0


def test_continue_counts_its_first_estimate_only_from_weights_trained_on_a_painting(data_2d, fast_config):
    from napari_contrastseg.core.trainer import _trained_on_labels

    fast_config.holdout = HoldoutConfig(fraction=0.3, block=8)
    first = list(train(data_2d, fast_config))[-1].model
    again = list(train(data_2d, fast_config, initial_model=first))
    assert again[0].warm_start == "full" and [e for e in again if isinstance(e, Estimate)][0].best
    assert _trained_on_labels(first)
    fast_config.method, fast_config.pretrain = "semicontrast", True
    fast_config.method_options = {"local_mode": "exact", "chunk_size": 256}
    names = ["background", "class 2"]  # the same classes as the painting: the head loads, but learnt no label
    unpainted = SegmentationData(data_2d.image, np.zeros_like(data_2d.labels), names)
    pretrained = list(train(unpainted, fast_config))[-1].model
    assert not _trained_on_labels(pretrained)
    fast_config.pretrain = False
    after = list(train(SegmentationData(data_2d.image, data_2d.labels, names), fast_config, initial_model=pretrained))
    assert after[0].warm_start == "full" and not [e for e in after if isinstance(e, Estimate)][0].best
