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

import math
import threading

from brainfuse_core.training import experiments

from .worker import WorkerJob

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


class TrainingJob(WorkerJob):
    """Trains ``spec`` for each neuron type of ``spec.neurons`` ("hh", "lif") from ``seed`` in a worker thread.

    ``state``: "running", then "finished", "stopped" or "failed" (with ``error``); ``models``:
    {neuron: TrainedModel} as each finishes (or is stopped); ``results``: {neuron: {"clean": test
    accuracy, "corrupted": {corruption: {severity: accuracy}}}} ("corrupted" empty unless evaluated)."""

    name = "brainfuse-train"

    def __init__(self, spec, seed):
        self.spec, self.seed = spec, seed
        self.neurons = list(spec.neurons)
        self.log = TrainingLog(self.neurons)
        self.batches_per_neuron = None
        self.models = {}
        self.results = {}
        super().__init__()

    @property
    def fraction_done(self):
        """Share of all batches of all neuron types trained (1 once finished)."""
        if self.state == "finished":
            return 1.0
        if not self.batches_per_neuron:
            return 0.0
        return min(1.0, self.log.count() / (self.batches_per_neuron * len(self.neurons)))

    # ------------------------------------------------------------------ worker
    def _run(self):
        self.phase = "loading data"
        data = experiments.load_task(self.spec)
        self.batches_per_neuron = self.spec.epochs * math.ceil(len(data.y_train) / self.spec.batch_size)
        for neuron in self.neurons:
            if self.stop_requested():
                break
            self.phase = f"training {NEURON_LABELS[neuron]}"
            model = experiments.train(self.spec, neuron, self.seed, progress=self._progress(neuron),
                                      should_stop=self.stop_requested, data=data)
            self.models[neuron] = model
            epochs = model.history["epochs"]
            self.results[neuron] = {"clean": epochs[-1]["test_accuracy"] if epochs else None, "corrupted": {}}
            if data.corrupted and not model.stopped and not self.stop_requested():
                self.phase = f"evaluating {NEURON_LABELS[neuron]} under corruptions"
                self.results[neuron] = experiments.evaluate(model, self.spec, data)
        cut_short = len(self.models) < len(self.neurons) or any(model.stopped for model in self.models.values())
        return "stopped" if cut_short else None

    def _progress(self, neuron):
        def progress(epoch, batch_index, loss, accuracy):
            self.log.add(neuron, epoch, batch_index, loss, accuracy)
        return progress
