"""What a fit compares: protocols (stimuli, duration, probes) with target traces and spike features.

A protocol's loss is the sum of
* per probe in ``traces``: the weighted mean squared difference (mV²) between the simulated trace and
  the target; ``windows`` restrict it to time windows [(start ms, stop ms, weight), ...] (0 elsewhere);
* per ``SpikeFeatures``: weight · (feature − target)² for spike count, first-spike latency (ms) and mean
  rate (Hz), measured on a probe's voltage trace.

Spike counts (and the rate) are sums of the core's threshold-crossing surrogate (``spikes.threshold_crossing``,
the one Simulation uses, width ``surrogate_beta``): exact in the forward pass, a smooth gradient backward.
The latency needs no surrogate: the linearly interpolated crossing time is differentiable in the voltages.
Measuring on a probe trace (rather than Simulation's spike trains at the spike site) lets features be
taken anywhere, e.g. a dendritic spike.
"""

import torch

from ..errors import ModelError
from ..simulation import Simulation
from ..spikes import threshold_crossing


class SpikeFeatures:
    """Spike-feature targets measured on ``probe``'s voltage trace within ``window`` (start, stop) ms
    (default the whole run): ``count`` (spikes), ``latency`` (ms from the window's start to the first
    upward crossing of ``threshold`` mV; the window's length when there is none), ``rate`` (Hz).
    Targets are numbers, or one per recorded trace (batch × cells); None leaves a feature out. ``weights`` scale each
    squared error (count: 1/spike², latency: 1/ms², rate: 1/Hz²)."""

    NAMES = ("count", "latency", "rate")

    def __init__(self, probe, count=None, latency=None, rate=None, threshold=-20.0, window=None, weights=None):
        self.probe, self.threshold, self.window = probe, float(threshold), window
        self.targets = {name: value for name, value in zip(self.NAMES, (count, latency, rate)) if value is not None}
        if not self.targets:
            raise ModelError(f"spike features on {probe!r}: give at least one of count, latency, rate")
        if window is not None and not (len(window) == 2 and 0 <= window[0] < window[1]):
            raise ModelError(f"spike features on {probe!r}: window must be (start ms, stop ms) with 0 ≤ start < stop, got {window!r}")
        weights = dict(weights or {})
        unknown = set(weights) - set(self.NAMES)
        if unknown:
            raise ModelError(f"spike features on {probe!r}: unknown weight {sorted(unknown)[0]!r}; use {', '.join(self.NAMES)}")
        self.weights = {name: float(weights.get(name, 1.0)) for name in self.targets}

    def measure(self, trace, times, beta):
        """{feature: (traces,) tensor} of (traces, samples) voltages sampled at ``times`` (ms)."""
        start, stop = self.window if self.window is not None else (0.0, float(times[-1]))
        stop = min(stop, float(times[-1]))
        inside = ((times[1:] > start) & (times[1:] <= stop)).to(trace.dtype)
        v0, v1 = trace[..., :-1], trace[..., 1:]
        crossings = threshold_crossing(v0, v1, self.threshold, beta) * inside
        features = {"count": crossings.sum(-1), "rate": crossings.sum(-1) / ((stop - start) * 1e-3)}
        latency = []
        for row in range(trace.shape[0]):
            found = torch.nonzero(crossings[row].detach()).flatten()
            if len(found) == 0:
                latency.append(torch.as_tensor(stop - start, dtype=trace.dtype))
                continue
            k = int(found[0])
            fraction = (self.threshold - v0[row, k]) / (v1[row, k] - v0[row, k])
            latency.append(times[k] + fraction * (times[k + 1] - times[k]) - start)
        features["latency"] = torch.stack(latency)
        return {name: features[name] for name in self.targets}


class Protocol:
    """One experiment: ``stimuli`` for ``duration`` ms, recorded by ``probes``, compared with ``traces``
    (probe name -> target shaped as the probe's trace, (batch, cells, samples), leading dimensions of 1 may
    be left out: (samples,) for one cell) within optional ``windows`` (probe name -> [(start ms, stop ms,
    weight), ...]), and with ``spikes`` (SpikeFeatures, one or a list).

    ``batch`` > 1 runs several variants at once in Simulation's batch dimension, e.g. current steps of
    several amplitudes as one ``IClamp`` whose ``amp`` is a (batch,) tensor: one run instead of several."""

    def __init__(self, name, stimuli, duration, probes, traces=None, windows=None, spikes=(), batch=1):
        if int(batch) != batch or batch < 1:
            raise ModelError(f"protocol {name!r}: batch must be a positive integer, got {batch!r}")
        self.name, self.batch = name, int(batch)
        self.stimuli, self.duration, self.probes = list(stimuli), float(duration), list(probes)
        self.traces = {key: _tensor(value, f"protocol {name!r}: target {key!r}") for key, value in (traces or {}).items()}
        self.windows = dict(windows or {})
        self.spikes = [spikes] if isinstance(spikes, SpikeFeatures) else list(spikes)
        probe_names = [probe.name for probe in self.probes]
        for what, keys in (("traces", self.traces), ("windows", self.windows), ("spikes", [s.probe for s in self.spikes])):
            for key in keys:
                if key not in probe_names:
                    raise ModelError(f"protocol {name!r}: {what} name probe {key!r}, which the protocol does not record; "
                                     f"its probes are {', '.join(probe_names) or 'none'}")
        for key, windows in self.windows.items():
            if key not in self.traces:
                raise ModelError(f"protocol {name!r}: windows for probe {key!r}, which has no target trace")
            for window in windows:
                if len(window) != 3 or not window[0] < window[1] or window[2] < 0:
                    raise ModelError(f"protocol {name!r}: a window of probe {key!r} is (start ms, stop ms, weight ≥ 0) "
                                     f"with start < stop, got {window!r}")
        if not self.traces and not self.spikes:
            raise ModelError(f"protocol {name!r}: give target traces or spike features to fit")

    def simulate(self, model, dt, celsius, method, dtype, surrogate_beta, horizon=None):
        """The protocol's Result, or that of its first ``horizon`` ms."""
        duration = self.duration if horizon is None else min(self.duration, horizon)
        return Simulation(model, self.stimuli, self.probes, dt=dt, celsius=celsius, method=method, dtype=dtype,
                          batch=self.batch, surrogate_beta=surrogate_beta).run(duration)

    def loss(self, result, surrogate_beta):
        """(total, {term: value}) of a Result of this protocol; terms are named 'trace:PROBE' and 'FEATURE:PROBE'.
        A Result shorter than the protocol (a fit's horizon) is compared with the targets' first samples and
        with the spike features whose windows end within it."""
        terms = {}
        shortened = result.duration < self.duration
        for key, target in self.traces.items():
            trace = result.traces[key]
            if shortened:
                target = target[..., : trace.shape[-1]]
            leading = trace.dim() - target.dim()
            if leading < 0 or trace.shape[leading:] != target.shape or any(d != 1 for d in trace.shape[:leading]):
                raise ModelError(f"protocol {self.name!r}: target {key!r} has shape {tuple(target.shape)} but the probe "
                                 f"records {tuple(trace.shape)} (batch, cells, samples) ({self.duration:g} ms at the run's "
                                 "dt, the first sample at t = 0); give a target of that shape")
            error = (trace - target.to(trace.dtype).reshape(trace.shape)) ** 2
            if key in self.windows:
                weight = self._window_weights(key, result.times[key]).to(trace.dtype)
                terms[f"trace:{key}"] = (error * weight).sum(-1).mean() / weight.sum().clamp_min(1e-30)
            else:
                terms[f"trace:{key}"] = error.mean()
        for features in self.spikes:
            # Within a fit's shorter horizon, a count or rate over a longer window would be compared with a
            # part of it: such features wait for a horizon that holds their window.
            if (features.window[1] if features.window is not None else self.duration) > result.duration + 1e-9:
                continue
            trace = result.traces[features.probe]
            measured = features.measure(trace.reshape(-1, trace.shape[-1]), result.times[features.probe], surrogate_beta)
            for name, value in measured.items():
                target = torch.as_tensor(features.targets[name], dtype=value.dtype)
                if target.numel() not in (1, value.numel()):
                    raise ModelError(f"protocol {self.name!r}: {name} target on {features.probe!r} has {target.numel()} "
                                     f"values for {value.numel()} recorded traces (batch × cells)")
                terms[f"{name}:{features.probe}"] = features.weights[name] * ((value - target) ** 2).mean()
        return sum(terms.values()), terms

    def _window_weights(self, key, times):
        weight = torch.zeros_like(times)
        for start, stop, w in self.windows[key]:
            weight = weight + w * ((times >= start) & (times < stop)).to(times.dtype)
        return weight


def _tensor(value, where):
    try:
        tensor = torch.as_tensor(value.detach() if torch.is_tensor(value) else value, dtype=torch.float64)
    except (TypeError, ValueError) as err:
        raise ModelError(f"{where}: must be an array of numbers ({err})") from None
    if tensor.dim() == 0:
        raise ModelError(f"{where}: must be an array of samples, (batch, cells, samples) or with leading dimensions of 1 left out")
    return tensor
