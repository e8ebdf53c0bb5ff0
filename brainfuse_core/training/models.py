"""The networks of the HH-vs-LIF experiments: one architecture, two kinds of neuron.

    input → nn.Linear → × input_scale (µA/cm² per unit) → spiking layer → readout → nn.Linear → class scores

The spiking layer is an ``HHLayer`` (any channel set) or a ``LIFLayer``; nothing else differs,
so a difference in accuracy, time or memory comes from the neurons. ``input_scale`` is a fixed
gain (not learnt) that puts the Linear's initial outputs (about ±1) into the current range
where the neurons fire: an HH cell needs several µA/cm², a LIF cell of τ_m 10 ms about
(θ − v_rest)/τ_m µA/cm² (1.5 for θ − v_rest = 15 mV).

Inputs (``forward`` takes either):

- images (N, ...) flattened to features and presented as a constant current over ``bins`` bins
  of ``bin_ms`` (direct coding: the pixel values, corruptions included, reach the neurons as
  current, with no spike-encoding noise of their own);
- spike trains (N, bins, channels): the Linear maps each bin's input spikes to that bin's current.

The layer runs the whole sequence in one forward, its cells' state carried from bin to bin (each
forward starts from rest), so whatever a neuron keeps of earlier bins lies in its own dynamics:
membrane, gates and slow currents such as the M-current. There is no recurrence.

Readouts (per hidden neuron one feature, or one per window, then ``nn.Linear`` to the classes):

- ``"count"``: spike count summed over all bins (the rate readout). Its gradient reaches the
  layer through the fast-sigmoid surrogate of ``spikes.threshold_crossing`` (∂s/∂v = β/(1 + β|v − θ|)²,
  β = ``surrogate_beta`` 1/mV). Summing over the whole sequence keeps no record of when a spike
  came, so in a temporal task the order of events reaches the readout only through the neurons'
  state (e.g. a response to a second cue that is weaker because the first cue recruited the same
  neurons' adaptation).
- ``"voltage"``: the membrane voltage at the end of each bin, averaged over bins, as
  (v − v_rest)/10 mV: no spike surrogate in the path; spikes still shape v.
- ``"windows"``: the "windowed count" readout: the sequence cut into ``windows`` equal time windows
  (edges at round(k·T/windows) bins), each neuron's spike count per window, concatenated window by
  window (features (N, windows·hidden): all neurons of the first window, then the second, ...).
  The readout now sees when spikes came, but it is still linear in per-window counts: a cell
  without memory longer than the gap between two events answers each event the same whatever came
  before, so its windows are a sum of separate functions of each event, and a combination such as
  XOR (not a sum of functions of each bit) needs the neurons' own state. Same surrogate as "count".
"""

import torch
from torch import nn

from ..errors import ModelError
from .layers import HHLayer, LIFLayer

NEURONS = ("hh", "lif")
READOUTS = ("count", "voltage", "windows")
VOLTAGE_SCALE_MV = 10.0


class SpikingClassifier(nn.Module):
    """``nn.Linear(inputs, hidden)`` → × ``input_scale`` → ``layer`` (HHLayer or LIFLayer of ``hidden``
    neurons, spike output for ``readout="count"`` or ``"windows"``, voltage output for ``"voltage"``) →
    readout → ``nn.Linear(features, classes)``. ``bins``: bins an image is held for (ignored for
    spike-train inputs). ``windows``: number of time windows of the ``"windows"`` readout (ignored by
    the others); a sequence must have at least that many bins."""

    def __init__(self, layer, inputs, classes, *, bins, input_scale, readout="count", windows=1):
        super().__init__()
        if readout not in READOUTS:
            raise ModelError(f"readout must be one of {', '.join(READOUTS)}, got {readout!r}")
        if not (isinstance(windows, int) and windows > 0):
            raise ModelError(f"windows must be a positive whole number, got {windows!r}")
        expected = "voltage" if readout == "voltage" else "spikes"
        if layer.output != expected:
            raise ModelError(f"readout {readout!r} needs a layer with output={expected!r}, got {layer.output!r}")
        if not (isinstance(bins, int) and bins > 0):
            raise ModelError(f"bins must be a positive whole number, got {bins!r}")
        if not input_scale > 0:
            raise ModelError(f"input_scale must be a positive number of µA/cm² per unit, got {input_scale!r}")
        self.inputs, self.classes, self.bins, self.readout = inputs, classes, bins, readout
        self.windows = windows if readout == "windows" else 1
        self.input = nn.Linear(inputs, layer.size)
        self.register_buffer("input_scale", torch.tensor(float(input_scale)))
        self.layer = layer
        self.output = nn.Linear(layer.size * self.windows, classes)

    def forward(self, x):
        """Images (N, ...) with ``inputs`` features, or spike trains (N, bins, ``inputs``) → scores (N, classes)."""
        features = self.features(x)
        return self.output(features)

    def features(self, x):
        """The readout's features: spike counts or mean scaled voltage (N, hidden), or counts per
        window (N, windows·hidden)."""
        if x.dim() == 3 and x.shape[2] == self.inputs:
            current = self.input(x) * self.input_scale
        else:
            flat = x.flatten(1)
            if flat.shape[1] != self.inputs:
                raise ModelError(f"the model takes {self.inputs} features per image or spike trains (N, bins, {self.inputs}); "
                                 f"got shape {tuple(x.shape)}")
            current = (self.input(flat) * self.input_scale).unsqueeze(1).expand(-1, self.bins, -1)
        out = self.layer(current)
        if self.readout == "count":
            return out.sum(1)
        if self.readout == "windows":
            steps = out.shape[1]
            if steps < self.windows:
                raise ModelError(f"the windows readout cuts the sequence into {self.windows} windows, but it has only "
                                 f"{steps} bins; use fewer windows or more bins")
            edges = [round(k * steps / self.windows) for k in range(self.windows + 1)]
            return torch.cat([out[:, a:b].sum(1) for a, b in zip(edges[:-1], edges[1:])], dim=1)
        return (out.mean(1) - self.layer.v_rest) / VOLTAGE_SCALE_MV


def spiking_layer(neuron, hidden, *, bin_ms, dt, readout, hh=None, lif=None, surrogate_beta=0.5):
    """The hidden layer for ``neuron`` "hh" or "lif". ``hh``: HHLayer keyword arguments (channels,
    celsius, threshold, cm, reversals, v_rest, learn_conductances, ...); ``lif``: LIFLayer keyword
    arguments (tau_m, threshold, v_reset, v_rest, ...)."""
    output = "voltage" if readout == "voltage" else "spikes"
    common = dict(bin_ms=bin_ms, dt=dt, surrogate_beta=surrogate_beta, output=output)
    if neuron == "hh":
        return HHLayer(hidden, **common, **(hh or {}))
    if neuron == "lif":
        return LIFLayer(hidden, **common, **(lif or {}))
    raise ModelError(f"neuron must be one of {', '.join(NEURONS)}, got {neuron!r}")
