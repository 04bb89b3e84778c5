"""The seed methods as strategies on the one trainer: every stage runs in 2D and 3D, warm start and cancel work."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from napari_contrastseg.core.events import Finished, Step
from napari_contrastseg.core.methods import METHODS
from napari_contrastseg.core.methods.schedule import stage_at
from napari_contrastseg.core.trainer import train, train_model

SMALL = {
    "semicontrast": {"local_mode": "exact", "chunk_size": 256},
    "action": {"anco_queries": 8, "anco_negatives": 16, "representation_dim": 16, "embedding_dim": 32,
               "queue_size": 4, "local_patch": 16, "local_stride": 8},
}  # fmt: skip
STAGE_TERMS = {
    "semicontrast": [{"global_ntxent", "supervised"}, {"local_contrast", "supervised"}, {"supervised"}],
    "action": [
        {"global_distill", "supervised"},
        {"local_distill", "supervised"},
        {"supervised", "pseudo_label", "anatomical"},
    ],
}


@pytest.mark.parametrize("method", ["semicontrast", "action"])
@pytest.mark.parametrize("dims", ["2d", "3d"])
def test_every_stage_runs_and_gives_finite_losses(method, dims, data_2d, data_3d, fast_config):
    data = data_2d if dims == "2d" else data_3d
    fast_config.method, fast_config.method_options, fast_config.dims = method, SMALL[method], dims
    fast_config.iterations, fast_config.patch_size = 10, 16 if dims == "3d" else 32
    events = list(train(data, fast_config))
    assert isinstance(events[-1], Finished), events[-1]
    steps = [e for e in events if isinstance(e, Step)]
    seen = [set(s.losses) - {"total"} for s in steps]
    for terms in STAGE_TERMS[method]:
        assert terms in seen
    assert all(np.isfinite(v) for s in steps for v in s.losses.values())
    assert events[-1].model.predict(data.image).labels.shape == data.labels.shape


@pytest.mark.parametrize("method", ["semicontrast", "action"])
def test_warm_start_and_cancel(method, data_2d, fast_config):
    fast_config.method, fast_config.method_options = method, SMALL[method]
    first = train_model(data_2d, fast_config)
    cancel = threading.Event()
    fast_config.iterations = 50
    events = []
    for event in train(data_2d, fast_config, initial_model=first, cancel=cancel):
        events.append(event)
        if isinstance(event, Step) and event.iteration == 2:
            cancel.set()
    assert events[0].warm_start == "full"
    assert isinstance(events[-1], Finished) and events[-1].cancelled and events[-1].iteration == 2


def test_reference_hyper_parameters_are_the_defaults():
    s, a = METHODS["semicontrast"].defaults, METHODS["action"].defaults
    assert (s["global_temperature"], s["local_temperature"], s["stride"], s["block"]) == (0.5, 0.1, 4, 16)
    assert (a["momentum"], a["queue_size"], a["tau_s"], a["tau_t"], a["confidence_threshold"]) == (
        0.99, 36, 0.1, 0.01, 0.97,
    )  # fmt: skip
    assert (a["anco_weight"], a["anco_temperature"], a["anco_valid_threshold"]) == (0.01, 0.5, 0.7)
    # named deviations for the CPU cost (docs/methods.md; reference: block, 256 / 512 / all / 512)
    assert s["local_mode"] == "stride" and a["local_patch"] == 16
    assert (a["anco_queries"], a["anco_negatives"], a["anco_keys"], a["representation_dim"]) == (32, 256, 32, 128)


def test_stages_are_separate_optimisations_and_continue_only_fine_tunes(data_2d, fast_config):
    from napari_contrastseg.core.methods.schedule import ramp, stage_position

    assert stage_position(0.1, [0.25, 0.35]) == (0, pytest.approx(0.4))
    assert stage_position(0.3, [0.25, 0.35]) == (1, pytest.approx(0.05 / 0.35))
    assert stage_position(0.8, [0.25, 0.35]) == (2, pytest.approx(0.5))
    assert stage_position(0.1, [0.25, 0.35], resume=True) == (2, pytest.approx(0.1))
    assert ramp(0.0) == 0 and ramp(0.1) == pytest.approx(0.5) and ramp(0.5) == 1
    fast_config.method, fast_config.method_options = "semicontrast", SMALL["semicontrast"]
    fast_config.iterations = 10
    first = [e for e in train(data_2d, fast_config) if e.kind in ("step", "finished")]
    lrs = [e.learning_rate for e in first if e.kind == "step"]
    assert lrs[0] > lrs[1] and lrs[3] > lrs[2]  # each stage's schedule starts again from the full rate
    assert "global_ntxent" in first[0].losses
    again = [e for e in train(data_2d, fast_config, initial_model=first[-1].model) if e.kind == "step"]
    assert all("global_ntxent" not in e.losses and "local_contrast" not in e.losses for e in again)


def test_action_teacher_follows_the_student_by_ema(data_2d, fast_config):
    fast_config.method, fast_config.method_options = "action", SMALL["action"]
    from napari_contrastseg.core.methods import create_method
    from napari_contrastseg.core.network import UNet

    student = UNet(2, 1, 2, fast_config.network)
    method = create_method("action", student, 2, SMALL["action"])
    teacher = method.teacher[0]
    before = [p.clone() for p in teacher.parameters()]
    with torch.no_grad():
        for p in student.parameters():
            p.add_(1.0)
    method.after_step(student, 0.0)
    for t0, t1, s in zip(before, teacher.parameters(), student.parameters(), strict=True):
        torch.testing.assert_close(t1, 0.99 * t0 + 0.01 * s)
    assert not any(p.requires_grad for p in teacher.parameters())
    assert all(id(p) not in {id(q) for q in method.parameters()} for p in teacher.parameters())


@pytest.mark.parametrize(("progress", "stage"), [(0.0, 0), (0.19, 0), (0.2, 1), (0.49, 1), (0.5, 2), (0.99, 2)])
def test_stage_schedule(progress, stage):
    assert stage_at(progress, [0.2, 0.3]) == stage


def test_pretraining_needs_no_paint_and_the_next_run_starts_from_it(data_2d, fast_config, tmp_path):
    from napari_contrastseg.cli import main
    from napari_contrastseg.core.data import SegmentationData
    from napari_contrastseg.core.image_io import write_image

    unpainted = SegmentationData(data_2d.image, np.zeros_like(data_2d.labels))
    fast_config.method, fast_config.method_options, fast_config.pretrain = "semicontrast", SMALL["semicontrast"], True
    events = list(train(unpainted, fast_config))
    steps = [e for e in events if isinstance(e, Step)]
    assert steps and all(set(e.losses) == {"global_ntxent", "total"} for e in steps)  # label-free only
    pretrained = events[-1].model
    fast_config.pretrain = False
    after = list(train(data_2d, fast_config, initial_model=pretrained))
    assert after[0].warm_start.startswith("partial")  # all but the head: the classes are new
    assert all("global_ntxent" not in e.losses for e in after if isinstance(e, Step))  # not pre-trained again
    fast_config.method, fast_config.method_options, fast_config.pretrain = "supervised", {}, True
    assert "no label-free stage" in list(train(unpainted, fast_config))[-1].message
    write_image(tmp_path / "image.npy", data_2d.image)
    cli = ["train", str(tmp_path / "image.npy"), "--pretrain", "-o", str(tmp_path / "pre.safetensors"),
           "--method", "semicontrast", "--iterations", "2", "--features", "8,16,32", "--patch-size", "32",
           "--device", "cpu"]  # fmt: skip
    assert main(cli) == 0 and (tmp_path / "pre.safetensors").is_file()
