"""napari plugin benchmark: GUI responsiveness while training, and time to a useful live preview.

Run under a display (Xvfb on a server):

    xvfb-run -a python benchmarks/napari_responsiveness.py --json /tmp/napari_bench.json

1. **rf-features baseline** on the bundled colin27-deep crop: scikit-image ``multiscale_basic_features`` (sigma 1-8,
   intensity/edges/texture) + sklearn RandomForest (100 trees, depth 12) fitted on the painted slices, scored (mean
   Dice over the 12 structures) on never-painted slices.
2. **Event-loop lag**: a 10 ms ``QTimer``'s lateness (p50/p95/max) in a real viewer (1400x850) with the sample and
   the dock widget open: with the timer alone, and while a second timer moves the slice slider every 250 ms (napari
   redraws the canvas each time). Measured idle; while training in the widget's thread worker with 1 torch thread
   (the default on 2 cores: cores - 1) in its lower-priority work thread (the default), the same at the GUI's priority,
   and with 2 threads (all cores); and, for comparison, while training runs in a separate process (the CLI,
   1 thread), which leaves the GUI thread nothing to do.
3. **Time to preview**: press Train with the widget's defaults; time to the first preview drawn in the
   ``prediction`` layer, and to the first moment the model's whole-volume Dice on never-painted slices beats the
   rf baseline (models checkpointed every 25 steps while training and scored afterwards, so scoring does not slow
   training down).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from napari_contrastseg._napari.qt_wait import wait_until

SAMPLE = "colin27-deep"


# ---------------------------------------------------------------- baseline
def rf_baseline() -> dict:
    from skimage.feature import multiscale_basic_features
    from sklearn.ensemble import RandomForestClassifier

    from napari_contrastseg.samples import load_sample

    s = load_sample(SAMPLE)
    start = time.perf_counter()
    lo, hi = np.percentile(s.image, [1, 99])
    image = (s.image - lo) / max(hi - lo, 1e-6)
    features = multiscale_basic_features(image, intensity=True, edges=True, texture=True, sigma_min=1, sigma_max=8)
    painted = s.painted > 0
    forest = RandomForestClassifier(n_estimators=100, max_depth=12, n_jobs=-1, random_state=0)
    forest.fit(features[painted], s.painted[painted])
    prediction = forest.predict(features.reshape(-1, features.shape[-1])).reshape(s.painted.shape).astype(np.uint8)
    seconds = time.perf_counter() - start
    return {"mean_dice": score(prediction), "seconds": round(seconds, 1)}


def score(prediction: np.ndarray) -> float:
    """Mean Dice over the foreground classes on never-painted slices of the sample."""
    from napari_contrastseg.core.metrics import dice_per_class
    from napari_contrastseg.samples import load_sample
    from napari_contrastseg.samples.protocol import unpainted_mask

    s = load_sample(SAMPLE)
    mask = unpainted_mask(s.painted, s.painted_axis)
    dice = dice_per_class(prediction, s.ground_truth, list(range(2, len(s.class_names) + 1)), mask)
    return round(float(np.nanmean(list(dice.values()))), 3)


# ------------------------------------------------------------------ viewer
class LagMeter:
    """Lateness of a 10 ms repeating QTimer; optionally a slider that moves every 250 ms (napari redraws)."""

    def __init__(self, viewer) -> None:
        from qtpy.QtCore import Qt, QTimer

        self.viewer = viewer
        self.samples: list[float] = []
        self._last = None
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(10)
        self.timer.timeout.connect(self._tick)
        self.mover = QTimer()
        self.mover.setInterval(250)
        self.mover.timeout.connect(self._move)
        self._step = 0

    def _tick(self) -> None:
        now = time.perf_counter()
        if self._last is not None:
            self.samples.append(max(0.0, now - self._last - 0.010))
        self._last = now

    def _move(self) -> None:
        dims = self.viewer.dims
        dim = dims.not_displayed[0]
        size = int(dims.nsteps[dim])
        self._step = (self._step + 3) % size
        dims.set_current_step(dim, self._step)

    def measure_both(self, seconds: float) -> dict:
        """Timer alone, then while the slider moves every 250 ms; each for ``seconds``."""
        return {"timer_only": self.measure(seconds), "browsing_slices": self.measure(seconds, browse=True)}

    def measure(self, seconds: float, browse: bool = False) -> dict:
        from qtpy.QtWidgets import QApplication

        self.samples, self._last = [], None
        self.timer.start()
        if browse:
            self.mover.start()
        end = time.perf_counter() + seconds
        app = QApplication.instance()
        while time.perf_counter() < end:
            app.processEvents()
            time.sleep(0.001)
        self.timer.stop()
        self.mover.stop()
        lag = np.asarray(self.samples) * 1000
        return {
            "p50_ms": round(float(np.percentile(lag, 50)), 1),
            "p95_ms": round(float(np.percentile(lag, 95)), 1),
            "max_ms": round(float(lag.max()), 1),
            "ticks": int(lag.size),
        }


def open_viewer():
    import napari

    viewer = napari.Viewer(show=True)
    viewer.window.resize(1400, 850)
    viewer.open_sample("napari-contrastseg", SAMPLE)
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-contrastseg", "Scribble segmentation")
    wait_until(lambda: False, 0.5)
    return viewer, widget


def lag_in_thread(viewer, widget, meter: LagMeter, threads: int, seconds: float, nice: int | None = None) -> dict:
    from napari_contrastseg._napari.settings import TrainingSettings
    from napari_contrastseg._napari.workers.background import DEFAULT_NICE

    widget.training.extras.nice = DEFAULT_NICE if nice is None else nice
    widget.apply_settings(TrainingSettings(iterations=100_000, time_budget=0, cpu_threads=threads, device="cpu"))
    steps: list = []
    slot = lambda e: steps.append(e) if e.kind == "step" else None  # noqa: E731
    widget.event_applied.connect(slot)
    widget.train()
    wait_until(lambda: bool(steps), 60)
    result = meter.measure_both(seconds)
    widget.stop()
    wait_until(lambda: not widget.is_running, 120)
    widget.event_applied.disconnect(slot)
    widget.training.extras.nice = DEFAULT_NICE
    result["training_iterations_per_second"] = round(steps[-1].iterations_per_second, 1) if steps else None
    return result


def lag_with_process(meter: LagMeter, seconds: float, workdir: Path) -> dict:
    """Training in a separate process (the CLI) with one torch thread, while the viewer is measured."""
    from napari_contrastseg.samples import load_sample

    s = load_sample(SAMPLE)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    cmd = [
        sys.executable, "-m", "napari_contrastseg", "train", str(s.paths["image"]), str(s.paths["painted"]),
        "-o", str(workdir / "process-model.safetensors"), "--iterations", "100000", "--patch-size", "64",
        "--device", "cpu", "--events", "jsonl",
    ]  # fmt: skip
    log = workdir / "process-events.jsonl"
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.DEVNULL, env=env)
    try:
        wait_until(lambda: '"kind": "step"' in log.read_text(), 120)  # the first step
        result = meter.measure_both(seconds)
    finally:
        proc.send_signal(signal.SIGINT)  # the CLI stops after the current step and saves the model
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return result


def time_to_preview(viewer, widget, rf_dice: float, workdir: Path) -> dict:
    """Train with the widget's defaults; times are from pressing Train."""
    from napari_contrastseg._napari.settings import TrainingSettings
    from napari_contrastseg.core.model import load_model

    viewer.layers.remove("prediction") if "prediction" in viewer.layers else None
    widget.apply_settings(TrainingSettings())
    widget.training.extras.checkpoint_dir, widget.training.extras.checkpoint_every = workdir / "checkpoints", 25
    widget.training.loss_plot.clear()
    checkpoints: list[tuple[float, int, Path]] = []

    def on_event(event) -> None:
        if event.kind == "checkpoint":
            target = workdir / f"it{event.iteration:05d}.safetensors"
            shutil.copy(event.path, target)
            checkpoints.append((time.perf_counter(), event.iteration, target))

    widget.event_applied.connect(on_event)
    widget.train()
    pressed = widget.jobs.timings["train_pressed"]
    wait_until(lambda: not widget.is_running, 600)
    widget.event_applied.disconnect(on_event)
    widget.training.extras.checkpoint_dir, widget.training.extras.checkpoint_every = None, 0
    timings = widget.jobs.timings
    from napari_contrastseg.samples import load_sample

    image = load_sample(SAMPLE).image
    import torch

    torch.set_num_threads(1)  # two OpenMP threads on a busy 2-core machine spin and slow everything down ~10x
    curve = []
    for t, iteration, path in checkpoints:
        dice = score(load_model(path).predict(image, device="cpu", probabilities=False).labels)
        curve.append({"seconds": round(t - pressed, 1), "iteration": iteration, "mean_dice": dice})
    beat = next((c for c in curve if c["mean_dice"] > rf_dice), None)
    final = score(np.asarray(viewer.layers["prediction"].data))
    return {
        "settings": {k: v for k, v in vars(TrainingSettings()).items()},
        "first_preview_s": round(timings["first_preview"] - pressed, 2),
        "started_s": round(timings["started"] - pressed, 2),
        "rf_level_s": beat["seconds"] if beat else None,
        "rf_level_iteration": beat["iteration"] if beat else None,
        "training_s": round(timings["finished"] - pressed, 1),
        "whole_prediction_s": round(timings["whole_prediction"] - pressed, 1),
        "final_mean_dice": final,
        "curve": curve,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="length of each lag measurement")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--parts", default="rf,lag,process,preview", help="comma-separated subset of rf, lag, process, preview"
    )
    args = parser.parse_args(argv)
    parts = set(args.parts.split(","))
    import torch

    from napari_contrastseg._napari.devices import cpu_cores

    results: dict = {
        "cpu_cores": cpu_cores(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "torch": torch.__version__,
        "command": "xvfb-run -a python benchmarks/napari_responsiveness.py " + " ".join(argv or sys.argv[1:]),
    }
    rf_dice = 0.308  # measured value on this sample, used when the rf part is skipped
    if "rf" in parts:
        results["rf_baseline"] = rf_baseline()
        rf_dice = results["rf_baseline"]["mean_dice"]
        print("rf baseline", results["rf_baseline"], flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="contrastseg-bench-"))
    os.environ.setdefault("CONTRASTSEG_AUTOSAVE_DIR", str(workdir / "autosave"))
    viewer, widget = open_viewer()
    meter = LagMeter(viewer)
    lag: dict = {}
    if "lag" in parts:
        lag["idle"] = meter.measure_both(args.seconds)
        print("idle", lag["idle"], flush=True)
        for name, threads, nice in (
            ("thread_worker_1_torch_thread", 1, None),
            ("thread_worker_1_torch_thread_same_priority", 1, 0),
            ("thread_worker_2_torch_threads", 2, None),
        ):
            lag[name] = r = lag_in_thread(viewer, widget, meter, threads, args.seconds, nice)
            print(name, r, flush=True)
    if "process" in parts:
        lag["separate_process_1_torch_thread"] = r = lag_with_process(meter, args.seconds, workdir)
        print("separate process", r, flush=True)
    if lag:
        results["event_loop_lag"] = lag
    if "preview" in parts:
        results["time_to_preview"] = r = time_to_preview(viewer, widget, rf_dice, workdir)
        print("time to preview", {k: v for k, v in r.items() if k != "curve"}, flush=True)
    widget.shutdown()
    viewer.close()
    shutil.rmtree(workdir, ignore_errors=True)
    results["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
