"""What a chip run returns: spikes per chip step, probed states, activity counts and saturations.

The raw integer arrays are what backends are compared on (bit for bit); ``spikes`` and
``traces`` convert them to the simulator's units for comparisons with float runs.
"""

import numpy as np

from ..spikes import SpikeRecord
from .fixed_point import from_fixed


class ChipResult:
    """``spike_steps[pop]`` / ``spike_cells[pop]``: chip step and cell of every spike; ``probe_raw[name]``:
    (chip steps, cells) raw values at the end of each chip step (V in Q.v_frac, gates in Q.gate_frac);
    ``counts``: activity counts; ``saturated``: how many values each saturating variable clipped.
    A floating-point run (``fixed=False``) has its probes in mV and fractions already."""

    def __init__(self, manifest, spikes, probes, counts, saturated, backend, seconds=None, fixed=True):
        self.manifest = manifest
        self.backend = backend
        self.seconds = seconds
        self.fixed = fixed
        names = [pop["name"] for pop in manifest["populations"]]
        self.spike_steps = {name: np.asarray(s, dtype=np.int64) for name, (s, _) in zip(names, spikes)}
        self.spike_cells = {name: np.asarray(c, dtype=np.int64) for name, (_, c) in zip(names, spikes)}
        dtype = np.int64 if fixed else np.float64
        self.probe_raw = {probe["name"]: np.asarray(p, dtype=dtype) for probe, p in zip(manifest["probes"], probes)}
        self.counts = counts
        self.saturated = {key: int(value) for key, value in saturated.items()}

    @property
    def chip_dt(self):
        return self.manifest["chip_dt"]

    @property
    def spikes(self):
        """SpikeRecords per population, each spike timed at the middle of its chip step (ms)."""
        duration = self.manifest["steps"] * self.chip_dt
        return {name: SpikeRecord((steps + 0.5) * self.chip_dt, self.spike_cells[name], np.zeros(len(steps), dtype=np.int64),
                                  pop["n"], duration)
                for (name, steps), pop in zip(self.spike_steps.items(), self.manifest["populations"])}

    @property
    def traces(self):
        """Probed values in mV (v) or as fractions (gates), shape (cells, chip steps)."""
        fmt = self.manifest["formats"]
        if not self.fixed:
            return {name: raw.T for name, raw in self.probe_raw.items()}
        return {probe["name"]: from_fixed(self.probe_raw[probe["name"]], fmt["v_frac"] if probe["gate"] is None else fmt["gate_frac"]).T
                for probe in self.manifest["probes"]}

    @property
    def times(self):
        """Time (ms) of each probe sample: the end of each chip step."""
        return (np.arange(self.manifest["steps"]) + 1) * self.chip_dt

    def overflow_report(self):
        """Which variables saturated and how often (values clipped over the run), and the fraction of updates that did."""
        updates = {"v": self.counts["neuron_substeps"],
                   "gates": self.counts["neuron_substeps"] * max(1, sum(len(p["gates"]) for p in self.manifest["populations"])),
                   "syn": self.counts["neuron_updates"], "dense_input": self.counts["neuron_updates"]}
        return {name: {"saturated": count, "fraction": count / updates[name] if updates.get(name) else 0.0}
                for name, count in self.saturated.items()}

    def same_bits(self, other):
        """Whether two runs agree bit for bit (spikes, probes, counts, saturations); the first difference otherwise."""
        for name in self.spike_steps:
            if not (np.array_equal(self.spike_steps[name], other.spike_steps[name])
                    and np.array_equal(self.spike_cells[name], other.spike_cells[name])):
                return False, f"spikes of {name} differ"
        for name, raw in self.probe_raw.items():
            if not np.array_equal(raw, other.probe_raw[name]):
                step = int(np.argwhere(raw != other.probe_raw[name])[0][0])
                return False, f"probe {name} differs first at chip step {step}"
        if self.counts != other.counts:
            return False, f"counts differ: {self.counts} vs {other.counts}"
        common = sorted(set(self.saturated) & set(other.saturated))
        if [self.saturated[k] for k in common] != [other.saturated[k] for k in common]:
            return False, f"saturations differ: {self.saturated} vs {other.saturated}"
        return True, "identical"
