"""Deploying a trained spike-count classifier to the chip: the hidden HH layer on chip, the Linears on the host.

A ``SpikingClassifier`` (``training/models.py``) with an ``HHLayer`` and the ``"count"`` readout is

    image → Linear → × input_scale (µA/cm²) → HH layer, the current held for ``bins`` bins → spike counts → Linear

Only the HH layer runs on the chip. Its input is a constant current per neuron and sample (the
first Linear and the gain applied to the image), so the host computes it once per sample and the
chip receives it as an injected current; the readout Linear is a dense float layer applied to
the spike counts the chip reports, on the host ("readout off-chip"). Nothing is trained again.

The chip population is the layer's cell (its channels with the learnt gbar, cm, reversals,
v_rest, threshold) at the layer's dt (the substep) and temperature, through ``quantize`` like any
other model. Samples run side by side: a chunk of S samples is one population of S × hidden cells
(cell s·hidden + j is neuron j of sample s), each with its own constant current (a ``Waveform``
clamp in µA/cm², which the quantizer turns into I·dt/C per substep), for the sample window
``bins × bin_ms``. The cells are not connected, so this is the same as running the samples one
after another on one set of neurons reset to rest between samples. A neuron's spike count is its
number of spikes over the window; the chip records at most one spike per cell and chip step, so the
chip step (``substeps`` × dt, by default one bin) must be shorter than the cell's refractory period
for the counts to be comparable (an HH spike lasts longer than one 1 ms bin).

``deploy_classifier`` returns a ``ClassifierDeployment``: float and chip accuracy on the same test
samples, the spike counts of both, their agreement, saturations, timings and, on request, a Lava
run of the first few samples compared bit for bit with the NumPy reference.
"""

import dataclasses
import time

import numpy as np
import torch

from ..errors import ModelError
from ..networks import Network, Population
from ..recording import Probe
from ..stimuli import Waveform
from ..training.experiments import TrainedModel, load_task
from ..training.layers import HHLayer
from .lava_backend import LavaBackendError, run_lava
from .quantize import quantize
from .reference import simulate

POPULATION = "hidden"


@dataclasses.dataclass
class ClassifierDeployment:
    """Float vs chip on ``samples`` test samples. ``float_counts`` / ``chip_counts``: (samples, hidden) spike
    counts over each sample's window; ``float_predictions`` / ``chip_predictions``: the classes the readout
    picks from them; ``agreement``: spike-count agreement (``count_agreement``); ``overflow``: saturated values
    per variable over all chunks; ``timings``: seconds per stage; ``lava``: None, or the Lava check of the first
    samples ({"samples", "bit_exact", "detail", "seconds"} or {"samples", "error"})."""

    samples: int
    labels: np.ndarray
    float_counts: np.ndarray
    chip_counts: np.ndarray
    float_predictions: np.ndarray
    chip_predictions: np.ndarray
    agreement: dict
    settings: dict
    overflow: dict
    timings: dict
    lava: dict = None

    @property
    def float_accuracy(self):
        return float(np.mean(self.float_predictions == self.labels))

    @property
    def chip_accuracy(self):
        return float(np.mean(self.chip_predictions == self.labels))

    def to_dict(self):
        return {"samples": self.samples, "float_accuracy": self.float_accuracy, "chip_accuracy": self.chip_accuracy,
                "same_prediction": float(np.mean(self.float_predictions == self.chip_predictions)),
                "agreement": self.agreement, "settings": self.settings, "overflow": self.overflow,
                "timings_s": self.timings, "lava": self.lava}

    def summary(self):
        a = self.agreement
        lines = [f"{self.samples} test samples: float accuracy {self.float_accuracy:.4f}, chip accuracy {self.chip_accuracy:.4f} "
                 f"({100 * (self.chip_accuracy - self.float_accuracy):+.2f} points); same prediction for "
                 f"{100 * np.mean(self.float_predictions == self.chip_predictions):.1f} % of samples",
                 f"spike counts (chip step {self.settings['chip_dt_ms']:g} ms): {100 * a['equal_fraction']:.2f} % of "
                 f"(sample, neuron) counts equal, mean |Δ| {a['mean_abs_difference']:.4f}, max |Δ| {a['max_abs_difference']}, "
                 f"total {a['chip_spikes']} chip vs {a['float_spikes']} float spikes"]
        if self.lava is not None:
            lines.append(f"Lava ({self.lava['samples']} samples): " + (f"error: {self.lava['error']}" if "error" in self.lava else
                         "bit-exact with the NumPy reference" if self.lava["bit_exact"] else f"DIFFERS: {self.lava['detail']}"))
        saturated = {name: entry for name, entry in self.overflow.items() if entry}
        if saturated:
            lines.append(f"saturations (clipped updates): {saturated}; V at its floor in {a['cells_at_v_floor']} and at its "
                         f"ceiling in {a['cells_at_v_ceiling']} of {a['sample_neurons']} cells, "
                         f"{a['clipped_cells_spiking']} of them spiking, {a['clipped_cells_with_unequal_counts']} with unequal counts")
        return "\n".join(lines)


def check_deployable(model):
    """ModelError unless ``model`` is a SpikingClassifier whose hidden layer the chip can run: HH neurons,
    spike-count readout, a fresh state per sample."""
    layer = getattr(model, "layer", None)
    if not isinstance(layer, HHLayer):
        raise ModelError(f"only classifiers with an HH hidden layer deploy to the chip; this one has {type(layer).__name__}")
    if model.readout != "count":
        raise ModelError(f"the chip classifier reads spike counts; this model's readout is {model.readout!r} "
                         "(train it with readout 'count')")
    if layer.stateful:
        raise ModelError("the chip runs every sample from rest; deploy a layer with stateful=False")


def hidden_currents(model, images):
    """The current density (µA/cm²) each hidden neuron receives for each image: the first Linear × the input
    gain, (N, hidden), float64. Constant over a sample's bins."""
    flat = images.flatten(1)
    if flat.shape[1] != model.inputs:
        raise ModelError(f"the model takes {model.inputs} features per image; got shape {tuple(images.shape)}")
    with torch.no_grad():
        return (model.input(flat) * model.input_scale).double()


def chip_model(model, currents):
    """(network, stimuli) for ``quantize``: one population of S × hidden copies of the layer's cell, cell
    s·hidden + j driven by ``currents[s, j]`` µA/cm² throughout."""
    layer = model.layer
    samples, hidden = currents.shape
    with torch.no_grad():
        cell = layer._cell()
    population = Population(POPULATION, cell, samples * hidden, threshold=layer.threshold)
    # One waveform sample longer than the window: the current stays constant throughout.
    window_ms = model.bins * layer.bin_ms
    clamp = Waveform(currents.reshape(1, 1, -1), sample_dt=2 * window_ms, population=POPULATION, density=True,
                     name="hidden input")
    return Network([population]), [clamp]


def _substeps(model, substeps):
    layer = model.layer
    substeps = layer.substeps if substeps is None else substeps
    window = model.bins * layer.substeps
    if not (isinstance(substeps, int) and substeps >= 1 and window % substeps == 0):
        raise ModelError(f"substeps must be a positive whole number dividing the sample window ({window} steps of "
                         f"{layer.dt:g} ms), got {substeps!r}")
    return substeps


def quantize_chunk(model, currents, substeps=None, formats=None):
    """The deployment artifact of the hidden layer for the samples of ``currents`` (N, hidden) µA/cm²."""
    check_deployable(model)
    layer = model.layer
    substeps = _substeps(model, substeps)
    network, stimuli = chip_model(model, currents)
    with torch.no_grad():
        return quantize(network, model.bins * layer.bin_ms, stimuli=stimuli, probes=[Probe(POPULATION, "v", name=POPULATION)],
                        dt=layer.dt, substeps=substeps, celsius=layer.celsius, formats=formats)


def chip_counts(result, samples, hidden):
    """(samples, hidden) spike counts of a chunk's ``ChipResult``."""
    cells = result.spike_cells[POPULATION]
    return np.bincount(cells, minlength=samples * hidden).reshape(samples, hidden)


def saturated_cells(result, samples, hidden):
    """(floor, ceiling): (samples, hidden) masks of the cells whose V sat at the lowest or highest value of its
    word at the end of some chip step (a current the float model follows below −128 mV or above +128 mV)."""
    raw = result.probe_raw[POPULATION]
    v_bits = result.manifest["formats"]["v_bits"]
    floor = (raw == -(2 ** (v_bits - 1))).any(0).reshape(samples, hidden)
    ceiling = (raw == 2 ** (v_bits - 1) - 1).any(0).reshape(samples, hidden)
    return floor, ceiling


def count_agreement(float_counts, chip_counts):
    """How closely two (samples, hidden) count arrays agree."""
    difference = np.abs(chip_counts.astype(np.int64) - float_counts.astype(np.int64))
    return {"sample_neurons": int(difference.size), "equal_fraction": float(np.mean(difference == 0)),
            "mean_abs_difference": float(difference.mean()), "max_abs_difference": int(difference.max(initial=0)), "float_spikes": int(float_counts.sum()),
            "chip_spikes": int(chip_counts.sum()),
            "total_count_error_percent": float(100 * abs(int(chip_counts.sum()) - int(float_counts.sum()))
                                               / max(int(float_counts.sum()), 1))}


def deploy_classifier(trained, data=None, samples=None, substeps=None, chunk=128, formats=None, lava_samples=0,
                      lava_timeout=120.0, progress=False):
    """Deploy ``trained`` (a TrainedModel, or the path of a saved one) and classify its task's test set on the chip.

    ``data``: a ``load_task`` result to reuse; ``samples``: how many test samples (the first ones; default all);
    ``substeps``: substeps of the layer's dt per chip step (default one bin); ``chunk``: samples per chip run;
    ``lava_samples``: also run that many samples in Lava (fixed point) and compare them bit for bit with the
    reference (a missing environment, crash or time-out is recorded in ``lava``, not raised)."""
    from tqdm.auto import tqdm

    if not isinstance(trained, TrainedModel):
        trained = TrainedModel.load(trained)
    model, spec = trained.model, trained.spec
    check_deployable(model)
    model.eval()
    if spec.task != "digits_noise":
        raise ModelError(f"the chip classifier takes images held as a constant current (task digits_noise); "
                         f"this model was trained on {spec.task!r}")
    data = load_task(spec) if data is None else data
    count = len(data.y_test) if samples is None else min(int(samples), len(data.y_test))
    images, labels = data.x_test[:count], data.y_test[:count]
    hidden, timings = model.layer.size, {}

    started = time.perf_counter()
    with torch.no_grad():
        float_counts = model.features(images).double()
        float_predictions = model.output(float_counts.to(model.output.weight.dtype)).argmax(1).numpy()
    timings["float model"] = time.perf_counter() - started

    currents = hidden_currents(model, images)
    counts = np.zeros((count, hidden), dtype=np.int64)
    floor = np.zeros((count, hidden), dtype=bool)
    ceiling = np.zeros((count, hidden), dtype=bool)
    overflow = {}
    timings["quantize"] = timings["chip reference"] = 0.0
    manifest = None
    for start in tqdm(range(0, count, chunk), desc="chip classifier", unit="chunk", disable=not progress):
        block = currents[start:start + chunk]
        began = time.perf_counter()
        artifact = quantize_chunk(model, block, substeps, formats)
        timings["quantize"] += time.perf_counter() - began
        began = time.perf_counter()
        result = simulate(artifact)
        timings["chip reference"] += time.perf_counter() - began
        counts[start:start + len(block)] = chip_counts(result, len(block), hidden)
        floor[start:start + len(block)], ceiling[start:start + len(block)] = saturated_cells(result, len(block), hidden)
        for name, value in result.saturated.items():
            overflow[name] = overflow.get(name, 0) + value
        manifest = artifact.manifest

    began = time.perf_counter()
    with torch.no_grad():
        readout = model.output(torch.as_tensor(counts, dtype=model.output.weight.dtype))
    chip_predictions = readout.argmax(1).numpy()
    timings["readout (host)"] = time.perf_counter() - began

    lava = None
    if lava_samples:
        lava = _lava_check(model, currents[:lava_samples], substeps, formats, lava_timeout)
        timings["Lava"] = lava.get("seconds")
    settings = {"dt_ms": manifest["dt"], "substeps": manifest["substeps"], "chip_dt_ms": manifest["chip_dt"],
                "steps_per_sample": manifest["steps"], "celsius": manifest["celsius"], "hidden": hidden, "chunk": chunk,
                "formats": manifest["formats"], "readout": "off-chip (host float Linear on the chip's spike counts)"}
    float_counts = float_counts.round().long().numpy()
    agreement = count_agreement(float_counts, counts)
    clipped = floor | ceiling
    agreement.update({"cells_at_v_floor": int(floor.sum()), "cells_at_v_ceiling": int(ceiling.sum()),
                      "clipped_cells_with_unequal_counts": int(np.sum(clipped & (float_counts != counts))),
                      "clipped_cells_spiking": int(np.sum(clipped & ((float_counts > 0) | (counts > 0))))})
    return ClassifierDeployment(count, labels.numpy(), float_counts, counts, float_predictions, chip_predictions,
                                agreement, settings, overflow, timings, lava)


def _lava_check(model, currents, substeps, formats, timeout):
    """Run a few samples in Lava (fixed point) and compare with the NumPy reference bit for bit."""
    artifact = quantize_chunk(model, currents, substeps, formats)
    reference = simulate(artifact)
    began = time.perf_counter()
    try:
        lava = run_lava(artifact, mode="fixed", timeout=timeout)
    except LavaBackendError as err:
        return {"samples": len(currents), "error": str(err)}
    same, detail = lava.same_bits(reference)
    return {"samples": len(currents), "bit_exact": bool(same), "detail": detail, "seconds": time.perf_counter() - began}
