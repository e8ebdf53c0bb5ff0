"""Training off the event loop, for the Train pane.

A ``TrainingJob`` loads a task's data once, then trains one specification for each chosen neuron
type in turn (HH, then LIF) in a worker thread through ``experiments.train``. After every batch the
API reports (epoch, batch, loss, accuracy); the job's ``TrainingLog`` keeps those points until the
pane drains them into its figures. Stop is polled by the API after every batch: the model trained
so far is kept (it can be saved) and neuron types not started yet are skipped. A model that trained
to the end on digits_noise is evaluated under every corruption and severity of the spec.
A failure (hyper-parameters the API refuses, a crash while training) ends the job with a one-line
``error``; the traceback goes to the log. Nothing here imports Panel, so all of it can be tested
without a server or a browser.
"""

import logging
import math
import threading
import time

from brainfuse_core import BrainFuseError
from brainfuse_core.training import experiments

log = logging.getLogger(__name__)

NEURON_LABELS = {"hh": "HH", "lif": "LIF"}


class TrainingLog:
    """Per-batch (step, loss, accuracy) of every neuron type: written by the worker, drained by the pane
    (thread-safe). ``step`` counts that neuron type's batches from 1."""

    def __init__(self, neurons):
        self._lock = threading.Lock()
        self._points = {neuron: [] for neuron in neurons}
        self._drained = {neuron: 0 for neuron in neurons}
        self.last = None

    def add(self, neuron, epoch, batch, loss, accuracy):
        with self._lock:
            points = self._points[neuron]
            points.append((len(points) + 1, float(loss), float(accuracy)))
            self.last = (neuron, int(epoch), int(batch), float(loss), float(accuracy))

    def drain(self):
        """{neuron: [(step, loss, accuracy), ...]} added since the last drain (neurons without new points left out)."""
        with self._lock:
            new = {}
            for neuron, points in self._points.items():
                if len(points) > self._drained[neuron]:
                    new[neuron] = points[self._drained[neuron]:]
                    self._drained[neuron] = len(points)
            return new

    def count(self, neuron=None):
        with self._lock:
            return sum(len(points) for name, points in self._points.items() if neuron in (None, name))


class TrainingJob:
    """Trains ``spec`` for each neuron type of ``spec.neurons`` ("hh", "lif") from ``seed`` in a worker thread.

    ``state``: "running", then "finished", "stopped" or "failed" (with ``error``); ``models``:
    {neuron: TrainedModel} as each finishes (or is stopped); ``results``: {neuron: {"clean": test
    accuracy, "corrupted": {corruption: {severity: accuracy}}}} ("corrupted" empty unless evaluated)."""

    def __init__(self, spec, seed):
        self.spec, self.seed = spec, seed
        self.neurons = list(spec.neurons)
        self.log = TrainingLog(self.neurons)
        self.batches_per_neuron = None
        self.models = {}
        self.results = {}
        self.state = "running"
        self.phase = "starting"
        self.error = ""
        self._stop = threading.Event()
        self._started = self._ended = None
        self._thread = threading.Thread(target=self._work, name="brainfuse-train", daemon=True)

    # ------------------------------------------------------------------ control
    def start(self):
        self._started = time.perf_counter()
        self._thread.start()
        return self

    def stop(self):
        """Ask the worker to stop after its current batch; the model trained so far is kept."""
        self._stop.set()

    def join(self, timeout=None):
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # ------------------------------------------------------------------ reading
    @property
    def done(self):
        return self.state in ("finished", "stopped", "failed")

    @property
    def stopping(self):
        return self._stop.is_set() and not self.done

    @property
    def wall_s(self):
        if self._started is None:
            return 0.0
        return (self._ended or time.perf_counter()) - self._started

    @property
    def fraction_done(self):
        """Share of all batches of all neuron types trained (1 once finished)."""
        if self.state == "finished":
            return 1.0
        if not self.batches_per_neuron:
            return 0.0
        return min(1.0, self.log.count() / (self.batches_per_neuron * len(self.neurons)))

    # ------------------------------------------------------------------ worker
    def _work(self):
        try:
            self.phase = "loading data"
            data = experiments.load_task(self.spec)
            self.batches_per_neuron = self.spec.epochs * math.ceil(len(data.y_train) / self.spec.batch_size)
            for neuron in self.neurons:
                if self._stop.is_set():
                    break
                self.phase = f"training {NEURON_LABELS[neuron]}"
                model = experiments.train(self.spec, neuron, self.seed, progress=self._progress(neuron),
                                          should_stop=self._stop.is_set, data=data)
                self.models[neuron] = model
                epochs = model.history["epochs"]
                self.results[neuron] = {"clean": epochs[-1]["test_accuracy"] if epochs else None, "corrupted": {}}
                if data.corrupted and not model.stopped and not self._stop.is_set():
                    self.phase = f"evaluating {NEURON_LABELS[neuron]} under corruptions"
                    self.results[neuron] = experiments.evaluate(model, self.spec, data)
        except BrainFuseError as err:
            self._end("failed", _one_line(err))
        except Exception as err:  # noqa: BLE001 - shown to the user as one line; the traceback goes to the log
            log.exception("training failed")
            self._end("failed", _one_line(f"{type(err).__name__}: {err}"))
        else:
            cut_short = len(self.models) < len(self.neurons) or any(model.stopped for model in self.models.values())
            self._end("stopped" if cut_short else "finished")

    def _progress(self, neuron):
        def progress(epoch, batch_index, loss, accuracy):
            self.log.add(neuron, epoch, batch_index, loss, accuracy)
        return progress

    def _end(self, state, error=""):
        self._ended = time.perf_counter()
        self.error = error
        self.phase = ""
        self.state = state


def _one_line(message):
    return " ".join(str(message).split())
