"""The HH-vs-LIF experiments: a training spec read from a project file, training with live progress,
evaluation under corruptions, and whole experiments (every neuron type × seed) with tables and plots.

API (what ``brainfuse train`` and the workbench's Train pane call):

- ``TrainingSpec.from_project(project)`` / ``TrainingSpec.from_dict(section, project_data)``: the
  project's "training" section checked (``ProjectError`` naming the field, e.g.
  ``training.epochs: must be at least 1, got 0``); ``spec.replace(epochs=3, ...)`` checks again;
  ``spec.quick()`` applies the section's "quick" overrides.
- ``train(spec, neuron, seed, progress=None, should_stop=None)`` → ``TrainedModel``:
  ``progress(epoch, batch_index, loss, accuracy)`` after every batch, ``should_stop()`` polled
  after every batch (True ends training there; what was trained so far is returned).
- ``TrainedModel.save(path)`` / ``TrainedModel.load(path)``; ``model_path(project_path, neuron, seed)``
  is the conventional place next to the project (``<project>.trained/<neuron>_seed<k>.pt``).
- ``evaluate(model, spec)``: accuracy on the clean test set, and per (corruption, severity) for
  digits_noise.
- ``run_experiment(spec, out_dir, quick=False)``: train and evaluate every neuron type and seed;
  writes results.json, results.md, learning_curves.png and (digits_noise) accuracy_vs_severity.png.

Tasks (``load_task``), all with a train and a test set that do not depend on the model's seed:

- ``digits_noise``: scikit-learn's 8×8 digits (split ``data.split_seed``), each image held as a
  constant input current for ``bins`` bins; tested clean and under every corruption × severity.
- ``digits_rows``: the digits shown row by row as spike trains (``data.digit_rows`` options:
  row_ms, gap_ms, code, max_rate_hz), one bin per data step.
- ``delayed_match``, ``temporal_xor``: the spike tasks of ``data.temporal`` (their keyword
  options under "data", plus n_train, n_test; the test set is drawn with seed + 1).

Memory: the HH/LIF memory ratio is that of the peak resident set (VmHWM, reset once the data are
loaded and the model built, above the resident set then) of ``MEMORY_PROBE_BATCHES`` training
batches of each neuron type in a fresh process (``memory_probe_isolated``; the median of
``MEMORY_PROBE_REPEATS`` processes), so that nothing else the experiment did counts.
"""

import copy
import dataclasses
import inspect
import json
import math
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import BrainFuseError, ProjectError
from ..project.schema import check_training
from . import data as datasets
from .models import NEURONS, SpikingClassifier, spiking_layer

TASKS = ("digits_noise", "digits_rows", "delayed_match", "temporal_xor")
SPIKE_TASKS = {"digits_rows": None, "delayed_match": datasets.delayed_match_to_sample, "temporal_xor": datasets.temporal_xor}
MEMORY_PROBE_BATCHES = 3
# The peak of one process varies by ±10 % with the allocator; the median of three is steadier.
MEMORY_PROBE_REPEATS = 3
INPUT_SCALE = {"hh": 40.0, "lif": 8.0}


@dataclasses.dataclass(frozen=True)
class TrainingSpec:
    """One experiment's settings (units: ms, mV, °C, µA/cm²). Built from a project's "training"
    section; every field has the default shown. ``hh_cell``: the one-compartment project cell
    (``{"name", "cell", "channels"}``: the cell's entry and the project's channel entries) whose
    channels, densities, cm, reversals and v_init make the HH neurons; None: squid HH at -65 mV."""

    task: str
    neurons: tuple = NEURONS
    hidden: int = 64
    bins: int = 25
    bin_ms: float = 1.0
    dt: float = 0.1
    celsius: float = 6.3
    threshold: float = -20.0
    learn_conductances: bool = True
    lif: dict = dataclasses.field(default_factory=dict)
    input_scale: dict = dataclasses.field(default_factory=lambda: dict(INPUT_SCALE))
    readout: str = "count"
    windows: int = 4
    surrogate_beta: float = 0.5
    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 0.01
    seeds: tuple = (0, 1, 2)
    corruptions: tuple = datasets.CORRUPTIONS
    severities: tuple = datasets.SEVERITIES
    constants: object = "cifar10c"
    data: dict = dataclasses.field(default_factory=dict)
    quick_settings: dict = dataclasses.field(default_factory=dict)
    hh_cell: dict = None
    name: str = "experiment"
    smoke: bool = False

    def __post_init__(self):
        check_training(self.section())
        for key in ("neurons", "seeds", "corruptions", "severities"):
            object.__setattr__(self, key, tuple(getattr(self, key)))
        object.__setattr__(self, "input_scale", {**INPUT_SCALE, **self.input_scale})
        substeps = self.bin_ms / self.dt
        if abs(substeps - round(substeps)) > 1e-9 * substeps:
            raise ProjectError("training.dt",
                               f"bin_ms ({self.bin_ms} ms) must be a whole number of steps of dt ({self.dt} ms)")
        if self.readout == "windows" and self.task == "digits_noise" and self.windows > self.bins:
            raise ProjectError("training.windows", f"the windows readout needs at least one bin per window: {self.windows} "
                                                   f"windows > bins ({self.bins})")
        if self.task in SPIKE_TASKS:
            _data_options(self)
        elif set(self.data) - {"split_seed"}:
            unknown = sorted(set(self.data) - {"split_seed"})[0]
            raise ProjectError(f"training.data.{unknown}", "task 'digits_noise' has one data option, split_seed")
        self.hh_options()
        if self.quick_settings and not self.smoke:
            try:
                self.quick()
            except ProjectError as err:
                raise ProjectError("training.quick", f"the quick settings do not make a valid spec: {err}") from None

    @classmethod
    def from_dict(cls, section, project_data=None, name="experiment"):
        """The spec of a "training" ``section``; ``project_data`` (the project document) supplies the
        cell named by ``section["cell"]``."""
        if not isinstance(section, dict):
            raise ProjectError("training", "must be an object with at least a task")
        check_training(section)
        settings = {key: value for key, value in section.items() if key not in ("quick", "cell")}
        hh_cell = None
        if "cell" in section:
            cells = (project_data or {}).get("cells", {})
            if section["cell"] not in cells:
                raise ProjectError("training.cell", f"no cell {section['cell']!r} in this project; its cells are "
                                                    f"{', '.join(sorted(cells)) or 'none'}")
            hh_cell = {"name": section["cell"], "cell": cells[section["cell"]],
                       "channels": (project_data or {}).get("channels", {})}
        for key in ("neurons", "seeds", "corruptions", "severities"):
            if key in settings:
                settings[key] = tuple(settings[key])
        return cls(**settings, quick_settings=section.get("quick", {}), hh_cell=hh_cell, name=name)

    @classmethod
    def from_project(cls, project):
        """The spec of a Project (or a project file's path); ProjectError if it has no training section."""
        from ..project import Project, load_project

        if not isinstance(project, Project):
            project = load_project(project)
        data = project.to_dict()
        name = project.path.stem if project.path is not None else "experiment"
        if "training" not in data:
            raise ProjectError("training", f"project {name!r} has no training section; add one, e.g. "
                                           '"training": {"task": "digits_noise"} (see projects/digits_noise.json)')
        return cls.from_dict(data["training"], data, name)

    def section(self):
        """This spec as a project "training" section (JSON values)."""
        section = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)
                   if field.name not in ("quick_settings", "hh_cell", "name", "smoke")}
        for key in ("neurons", "seeds", "corruptions", "severities"):
            section[key] = list(section[key])
        if self.hh_cell is not None:
            section["cell"] = self.hh_cell["name"]
        if self.quick_settings:
            section["quick"] = self.quick_settings
        return json.loads(json.dumps(section))

    def to_dict(self):
        """Everything needed to rebuild the spec, cell included (``from_json_dict`` reverses it)."""
        return {"name": self.name, "training": self.section(), "hh_cell": self.hh_cell, "smoke": self.smoke}

    @classmethod
    def from_json_dict(cls, data):
        section, cell = data["training"], data.get("hh_cell")
        project = None if cell is None else {"cells": {cell["name"]: cell["cell"]}, "channels": cell["channels"]}
        return cls.from_dict(section, project, data.get("name", "experiment")).replace(smoke=data.get("smoke", False))

    def replace(self, **changes):
        """A copy with ``changes`` (checked like a project file's values)."""
        return dataclasses.replace(self, **changes)

    def quick(self):
        """The smoke-test version: the section's "quick" overrides applied (``smoke`` marks it)."""
        changes = {key: tuple(value) if isinstance(value, list) else value for key, value in self.quick_settings.items()}
        if "cell" in changes:
            raise ProjectError("training.quick.cell", "the quick run uses the same cell; remove cell from quick")
        return self.replace(**changes, smoke=True)

    def hh_options(self):
        """HHLayer keyword arguments: the project cell's channels (densities as inserted), cm,
        reversals and v_init (as v_rest), with the spec's celsius and threshold."""
        options = {"celsius": self.celsius, "threshold": self.threshold, "learn_conductances": self.learn_conductances}
        if self.hh_cell is None:
            return options
        from ..project.build import build_cell, build_channels

        where = f"cells.{self.hh_cell['name']}"
        try:
            cell = build_cell(self.hh_cell["name"], self.hh_cell["cell"], build_channels(self.hh_cell["channels"]))
        except BrainFuseError as err:
            raise ProjectError("training.cell", f"the cell does not build: {err}") from None
        if len(cell.morphology.sections) != 1 or cell.layout.size != 1:
            raise ProjectError("training.cell", f"{where} must be a one-compartment cell (one section, nseg 1) to make HH "
                                                "layer neurons")
        if cell.pools:
            raise ProjectError("training.cell", f"{where} has calcium pools, which HH layer neurons do not carry")
        channels = []
        for insertion in cell.insertions:
            channel = copy.copy(cell.channels[insertion.channel])
            if insertion.gbar is not None:
                channel.gbar = insertion.gbar
            channels.append(channel)
        if not channels:
            raise ProjectError("training.cell", f"{where} inserts no channels")
        return {**options, "channels": channels, "cm": cell.cm, "reversals": dict(cell.reversals), "v_rest": cell.v_init}


def _data_options(spec):
    """(generator keyword arguments, n_train, n_test) of a spike task; digits_rows takes its sizes
    from the digits split (n_train and n_test are None)."""
    options = dict(spec.data)
    generator = datasets.digit_rows if spec.task == "digits_rows" else SPIKE_TASKS[spec.task]
    own = ["split_seed", "seed"] if spec.task == "digits_rows" else ["n_train", "n_test", "seed"]
    allowed = own + [name for name in inspect.signature(generator).parameters
                     if name not in ("images", "n", "dt_ms", "seed", "dtype")]
    for key in options:
        if key not in allowed:
            raise ProjectError(f"training.data.{key}", f"task {spec.task!r} has no data option {key!r}; its options are "
                                                       f"{', '.join(allowed)}")
    if spec.task == "digits_rows":
        return options, None, None
    n_train, n_test = options.pop("n_train", 512), options.pop("n_test", 256)
    for key, value in (("n_train", n_train), ("n_test", n_test)):
        if not (isinstance(value, int) and value > 0):
            raise ProjectError(f"training.data.{key}", f"must be a positive whole number of trials, got {value!r}")
    return options, n_train, n_test


@dataclasses.dataclass
class TaskData:
    """Train and test inputs (images (N, 1, 8, 8) or spike trains (N, bins, channels)) and labels;
    ``corrupted``: {(corruption, severity): test images} (digits_noise only)."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    inputs: int
    classes: int
    corrupted: dict = dataclasses.field(default_factory=dict)


def load_task(spec):
    """The data of ``spec.task`` (offline: scikit-learn's digits or generated spike trains)."""
    try:
        if spec.task == "digits_noise":
            split = datasets.digits_split(spec.data.get("split_seed", 0))
            constants = spec.constants if isinstance(spec.constants, dict) else {}
            corrupted = {}
            for name in spec.corruptions:
                table = constants.get(name, "cifar10c") if isinstance(spec.constants, dict) else spec.constants
                corrupted.update(datasets.corrupted_test_sets(split.x_test, (name,), spec.severities, constants=table))
            return TaskData(split.x_train, split.y_train, split.x_test, split.y_test, 64, 10, corrupted)
        options, n_train, n_test = _data_options(spec)
        seed = options.pop("seed", 0)
        if spec.task == "digits_rows":
            split = datasets.digits_split(options.pop("split_seed", 0))
            x_train = datasets.digit_rows(split.x_train, dt_ms=spec.bin_ms, seed=seed, **options)
            x_test = datasets.digit_rows(split.x_test, dt_ms=spec.bin_ms, seed=seed + 1, **options)
            return TaskData(x_train, split.y_train, x_test, split.y_test, x_train.shape[2], 10)
        generator = SPIKE_TASKS[spec.task]
        x_train, y_train = generator(n_train, dt_ms=spec.bin_ms, seed=seed, **options)
        x_test, y_test = generator(n_test, dt_ms=spec.bin_ms, seed=seed + 1, **options)
        return TaskData(x_train, y_train, x_test, y_test, x_train.shape[2], 2)
    except datasets.DataError as err:
        raise ProjectError("training.data", str(err)) from None


def build_model(spec, neuron, inputs, classes):
    """The SpikingClassifier of ``spec`` with ``neuron`` ("hh" or "lif") hidden units."""
    if neuron not in NEURONS:
        raise ProjectError("training.neurons", f"neuron must be one of {', '.join(NEURONS)}, got {neuron!r}")
    layer = spiking_layer(neuron, spec.hidden, bin_ms=spec.bin_ms, dt=spec.dt, readout=spec.readout,
                          hh=spec.hh_options(), lif=spec.lif, surrogate_beta=spec.surrogate_beta)
    return SpikingClassifier(layer, inputs, classes, bins=spec.bins, input_scale=spec.input_scale[neuron],
                             readout=spec.readout, windows=spec.windows)


@dataclasses.dataclass
class TrainedModel:
    """A trained network with its spec and history.

    ``history``: {"loss": [per batch], "batch_accuracy": [per batch], "epochs": [{"epoch", "train_accuracy",
    "test_accuracy", "batches", "complete"}]}; ``wall_time_s``: training time (evaluations after each
    epoch excluded); ``stopped``: True when ``should_stop`` ended it early."""

    model: SpikingClassifier
    spec: TrainingSpec
    neuron: str
    seed: int
    history: dict
    wall_time_s: float
    stopped: bool = False

    def save(self, path):
        """torch.save of the state dict, the spec (JSON) and the history; parent folders are created."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"state_dict": self.model.state_dict(), "spec": json.dumps(self.spec.to_dict()), "neuron": self.neuron,
                    "seed": self.seed, "history": json.dumps(self.history), "wall_time_s": self.wall_time_s,
                    "stopped": self.stopped, "inputs": self.model.inputs, "classes": self.model.classes}, path)
        return path

    @classmethod
    def load(cls, path):
        """A TrainedModel saved by ``save`` (the network rebuilt from its spec, then its weights loaded)."""
        try:
            saved = torch.load(path, weights_only=True)
        except FileNotFoundError:
            raise ProjectError(str(path), "no such trained-model file") from None
        spec = TrainingSpec.from_json_dict(json.loads(saved["spec"]))
        model = build_model(spec, saved["neuron"], saved["inputs"], saved["classes"])
        model.load_state_dict(saved["state_dict"])
        return cls(model, spec, saved["neuron"], saved["seed"], json.loads(saved["history"]), saved["wall_time_s"],
                   saved["stopped"])


def model_path(project_path, neuron, seed):
    """Where a project's trained model goes: ``<project>.trained/<neuron>_seed<k>.pt`` beside the project file."""
    project_path = Path(project_path)
    return project_path.with_name(project_path.stem + ".trained") / f"{neuron}_seed{seed}.pt"


def train(spec, neuron, seed, progress=None, should_stop=None, data=None):
    """Train ``neuron`` ("hh" or "lif") networks of ``spec`` from ``seed`` with Adam on cross-entropy.

    ``progress(epoch, batch_index, loss, accuracy)`` is called after every batch (epoch and batch
    from 0; the batch's loss and accuracy); ``should_stop()`` is polled after every batch and True
    stops training there: the model trained so far is returned with ``stopped=True`` and its last,
    partial epoch in the history. ``data``: a ``load_task(spec)`` result to reuse.
    """
    data = load_task(spec) if data is None else data
    torch.manual_seed(seed)
    model = build_model(spec, neuron, data.inputs, data.classes)
    optimiser = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=spec.learning_rate)
    order = torch.Generator().manual_seed(seed)
    history = {"loss": [], "batch_accuracy": [], "epochs": []}
    n = len(data.y_train)
    wall, stopped = 0.0, False
    for epoch in range(spec.epochs):
        started = time.perf_counter()
        model.train()
        correct = seen = batches = 0
        permutation = torch.randperm(n, generator=order)
        for batch_index, start in enumerate(range(0, n, spec.batch_size)):
            chosen = permutation[start:start + spec.batch_size]
            scores = model(data.x_train[chosen])
            loss = nn.functional.cross_entropy(scores, data.y_train[chosen])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            hits = int((scores.detach().argmax(1) == data.y_train[chosen]).sum())
            correct, seen, batches = correct + hits, seen + len(chosen), batches + 1
            history["loss"].append(loss.item())
            history["batch_accuracy"].append(hits / len(chosen))
            if progress is not None:
                progress(epoch, batch_index, loss.item(), hits / len(chosen))
            if should_stop is not None and should_stop():
                stopped = True
                break
        wall += time.perf_counter() - started
        history["epochs"].append({"epoch": epoch, "train_accuracy": correct / seen,
                                  "test_accuracy": accuracy(model, data.x_test, data.y_test, spec.batch_size),
                                  "batches": batches, "complete": not stopped})
        if stopped:
            break
    return TrainedModel(model, spec, neuron, seed, history, wall, stopped)


def accuracy(model, x, y, batch_size=256):
    """Fraction of ``x`` classified as ``y`` (no gradients)."""
    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(y), batch_size):
            correct += int((model(x[start:start + batch_size]).argmax(1) == y[start:start + batch_size]).sum())
    return correct / len(y)


def evaluate(model, spec, data=None):
    """``{"clean": accuracy, "corrupted": {corruption: {severity: accuracy}}}`` on the test set
    (corrupted copies for digits_noise only; empty otherwise). ``model``: a TrainedModel or its network."""
    network = model.model if isinstance(model, TrainedModel) else model
    data = load_task(spec) if data is None else data
    corrupted = {}
    for (name, severity), images in data.corrupted.items():
        corrupted.setdefault(name, {})[severity] = accuracy(network, images, data.y_test, spec.batch_size)
    return {"clean": accuracy(network, data.x_test, data.y_test, spec.batch_size), "corrupted": corrupted}


def run_experiment(spec, out_dir, quick=False, progress=True, memory=None):
    """Train and evaluate every neuron type of ``spec`` for every seed (``quick``: the spec's quick
    settings, unless ``spec`` is already its smoke version), then write to ``out_dir``: results.json,
    results.md (the tables), learning_curves.png and, for digits_noise, accuracy_vs_severity.png;
    the trained models under models/. ``memory``: measure each neuron type's peak training memory
    in fresh processes (default: except in a smoke run, where starting the processes would cost
    more than the training). ``progress``: tqdm bars. Returns the results dict."""
    from tqdm.auto import tqdm

    spec = spec.quick() if quick and not spec.smoke else spec
    out_dir = Path(out_dir)
    (out_dir / "models").mkdir(parents=True, exist_ok=True)
    memory = not spec.smoke if memory is None else memory
    data = load_task(spec)
    batches = math.ceil(len(data.y_train) / spec.batch_size) * spec.epochs
    runs = []
    for neuron in spec.neurons:
        for seed in spec.seeds:
            with tqdm(total=batches, desc=f"{spec.name} {neuron.upper()} seed {seed}", unit="batch", disable=not progress,
                      leave=False) as bar:
                def step(epoch, batch_index, loss, acc):
                    bar.update(1)
                    bar.set_postfix(epoch=epoch, loss=f"{loss:.3f}", acc=f"{acc:.2f}")

                trained = train(spec, neuron, seed, progress=step, data=data)
            trained.save(out_dir / "models" / f"{neuron}_seed{seed}.pt")
            runs.append({"neuron": neuron, "seed": seed, "wall_time_s": trained.wall_time_s,
                         "evaluation": evaluate(trained, spec, data), "history": trained.history})
    costs = {neuron: _cost(spec, neuron, runs, memory) for neuron in spec.neurons}
    results = {"spec": spec.to_dict(), "quick": spec.smoke, "train_size": len(data.y_train), "test_size": len(data.y_test),
               "runs": runs, "summary": summarise(spec, runs), "costs": costs}
    if {"hh", "lif"} <= set(costs):
        results["ratios"] = {"time": costs["hh"]["seconds_per_epoch"] / costs["lif"]["seconds_per_epoch"],
                             "memory": (costs["hh"]["peak_mb"] / costs["lif"]["peak_mb"]
                                        if memory and costs["lif"]["peak_mb"] > 0 else None)}
    (out_dir / "results.json").write_text(json.dumps(results, indent=1, default=str))
    (out_dir / "results.md").write_text(markdown(results))
    plot_learning_curves(results, out_dir / "learning_curves.png")
    if spec.task == "digits_noise":
        plot_severity(results, out_dir / "accuracy_vs_severity.png")
    return results


def _cost(spec, neuron, runs, memory):
    mine = [run for run in runs if run["neuron"] == neuron]
    epochs = [len(run["history"]["epochs"]) for run in mine]
    seconds = [run["wall_time_s"] for run in mine]
    cost = {"wall_time_s": seconds, "seconds_per_epoch": sum(seconds) / sum(epochs)}
    cost["peak_mb"] = memory_probe_isolated(spec, neuron, MEMORY_PROBE_REPEATS) if memory else None
    return cost


def _memory_kb(field):
    """A /proc/self/status memory figure in kB (VmRSS: now; VmHWM: the peak since start or the last reset)."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"/proc/self/status has no {field}")


def memory_probe(spec_json, neuron):
    """Peak resident-set growth (MB) over ``MEMORY_PROBE_BATCHES`` training batches of ``neuron``, above
    the resident set once the data are loaded and the model built; meant for a fresh process
    (``memory_probe_isolated``). The peak is reset first (Linux: ``/proc/self/clear_refs``), after a
    one-sample pass, so that neither making the data (whose temporaries can outgrow training) nor
    compiling the kernels counts."""
    spec = TrainingSpec.from_json_dict(json.loads(spec_json))
    data = load_task(spec)
    torch.manual_seed(0)
    model = build_model(spec, neuron, data.inputs, data.classes)
    optimiser = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=spec.learning_rate)
    # One sample first: compiling or loading the kernels is not training memory.
    nn.functional.cross_entropy(model(data.x_train[:1]), data.y_train[:1]).backward()
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")
    baseline = _memory_kb("VmRSS")
    for start in range(0, MEMORY_PROBE_BATCHES * spec.batch_size, spec.batch_size):
        x, y = data.x_train[start:start + spec.batch_size], data.y_train[start:start + spec.batch_size]
        loss = nn.functional.cross_entropy(model(x), y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return (_memory_kb("VmHWM") - baseline) / 1024


def memory_probe_isolated(spec, neuron, repeats=1):
    """``memory_probe`` in ``repeats`` fresh processes; the median (MB)."""
    code = ("import sys, json; from brainfuse_core.training.experiments import memory_probe; "
            f"print(json.dumps(memory_probe(sys.stdin.read(), {neuron!r})))")
    peaks = []
    for _ in range(repeats):
        output = subprocess.run([sys.executable, "-c", code], input=json.dumps(spec.to_dict()), capture_output=True,
                                text=True, check=True)
        peaks.append(float(output.stdout.strip().splitlines()[-1]))
    return statistics.median(peaks)


def _spread(values):
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0, "n": len(values)}


def summarise(spec, runs):
    """Mean and standard deviation over seeds: {"clean": {neuron: …}, "corrupted": {corruption: {severity: {neuron: …}}}}."""
    summary = {"clean": {}, "corrupted": {}}
    for neuron in spec.neurons:
        mine = [run["evaluation"] for run in runs if run["neuron"] == neuron]
        summary["clean"][neuron] = _spread([e["clean"] for e in mine])
        for name in mine[0]["corrupted"]:
            for severity in mine[0]["corrupted"][name]:
                values = [e["corrupted"][name][severity] for e in mine]
                summary["corrupted"].setdefault(name, {}).setdefault(str(severity), {})[neuron] = _spread(values)
    return summary


def _cell(entry):
    return "" if entry is None else f"{entry['mean']:.3f} ± {entry['std']:.3f}"


def markdown(results):
    """The results as markdown tables: accuracy (mean ± s.d. over seeds) per corruption and
    severity, HH beside LIF; then wall time, time per epoch, peak memory and the HH/LIF ratios."""
    spec = TrainingSpec.from_json_dict(results["spec"])
    neurons = spec.neurons
    summary = results["summary"]
    lines = [f"### {spec.name}: {spec.task}{' (quick)' if results['quick'] else ''}", "",
             f"{len(spec.seeds)} seeds ({', '.join(map(str, spec.seeds))}); {spec.hidden} hidden neurons, {spec.epochs} epochs, "
             f"batch {spec.batch_size}, Adam lr {spec.learning_rate}, readout {spec.readout}{f' ({spec.windows} windows)' if spec.readout == 'windows' else ''}, bins of {spec.bin_ms:g} ms, "
             f"dt {spec.dt:g} ms; {results['train_size']} training and {results['test_size']} test samples.", "",
             "| test set | severity | " + " | ".join(n.upper() for n in neurons) + " |",
             "| --- | --- | " + " | ".join("---" for _ in neurons) + " |",
             "| clean | – | " + " | ".join(_cell(summary["clean"][n]) for n in neurons) + " |"]
    for name, severities in summary["corrupted"].items():
        for severity, entry in severities.items():
            lines.append(f"| {name} | {severity} | " + " | ".join(_cell(entry.get(n)) for n in neurons) + " |")
    lines += ["", "| neuron | wall time per seed (s) | s per epoch | peak training memory (MB) |", "| --- | --- | --- | --- |"]
    for neuron, cost in results["costs"].items():
        peak = "not measured" if cost["peak_mb"] is None else f"{cost['peak_mb']:.0f}"
        lines.append(f"| {neuron.upper()} | {', '.join(f'{s:.1f}' for s in cost['wall_time_s'])} | "
                     f"{cost['seconds_per_epoch']:.2f} | {peak} |")
    if "ratios" in results:
        ratios = results["ratios"]
        memory = "not measured" if ratios["memory"] is None else f"{ratios['memory']:.2f}×"
        lines += ["", f"HH / LIF: time per epoch {ratios['time']:.2f}×, peak training memory {memory} "
                      f"(peak resident-set growth over {MEMORY_PROBE_BATCHES} training batches in a fresh process, median of "
                      f"{MEMORY_PROBE_REPEATS})."]
    return "\n".join(lines) + "\n"


COLOURS = {"hh": "tab:red", "lif": "tab:blue"}


def plot_learning_curves(results, path):
    """Per-batch loss (thin, every seed) and per-epoch test accuracy (mean ± s.d.) of each neuron type."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(10, 3.8))
    for neuron, colour in COLOURS.items():
        mine = [run for run in results["runs"] if run["neuron"] == neuron]
        if not mine:
            continue
        for k, run in enumerate(mine):
            loss_axis.plot(run["history"]["loss"], color=colour, alpha=0.5, lw=0.8, label=neuron.upper() if k == 0 else None)
        epochs = min(len(run["history"]["epochs"]) for run in mine)
        curves = np.array([[e["test_accuracy"] for e in run["history"]["epochs"][:epochs]] for run in mine])
        x = np.arange(1, epochs + 1)
        accuracy_axis.plot(x, curves.mean(0), "o-", color=colour, label=neuron.upper())
        accuracy_axis.fill_between(x, curves.mean(0) - curves.std(0), curves.mean(0) + curves.std(0), color=colour, alpha=0.2)
    loss_axis.set(xlabel="batch", ylabel="training loss (cross-entropy)")
    accuracy_axis.set(xlabel="epoch", ylabel="test accuracy", ylim=(0, 1))
    accuracy_axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    loss_axis.legend()
    accuracy_axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_severity(results, path):
    """Accuracy against severity (0 = clean) per corruption, HH and LIF, mean ± s.d. over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = results["summary"]
    names = list(summary["corrupted"])
    figure, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3.2), sharey=True, squeeze=False)
    for axis, name in zip(axes[0], names):
        severities = list(summary["corrupted"][name])
        for neuron in summary["clean"]:
            entries = [summary["clean"][neuron]] + [summary["corrupted"][name][s][neuron] for s in severities]
            mean = np.array([e["mean"] for e in entries])
            std = np.array([e["std"] for e in entries])
            x = [0] + [int(s) for s in severities]
            axis.plot(x, mean, "o-", color=COLOURS[neuron], label=neuron.upper())
            axis.fill_between(x, mean - std, mean + std, color=COLOURS[neuron], alpha=0.2)
        axis.set(title=name.replace("_", " "), xlabel="severity (0 = clean)", xticks=[0] + [int(s) for s in severities])
    axes[0][0].set(ylabel="test accuracy")
    axes[0][0].legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
