"""Probes: which state to record, where, and how often; and the Result of a run."""

import json

import numpy as np

from .errors import ModelError


class Probe:
    """Record ``variable`` of ``population`` at ``section(x)`` of the listed ``cells`` every ``every`` steps.

    Variables: "v" (mV), "cai" (mM), or a gate "channel.gate" such as "hh_na.m".
    ``nodes="all"`` records every node of the cell instead of one site (shape plots, space–time
    views): the trace is then (B, cells, nodes, samples), node i lying in section
    ``cell.layout.section_of[i]`` at ``cell.layout.x[i]``.
    """

    def __init__(self, population="cell", variable="v", cells=None, section=None, x=0.5, every=1, name=None, nodes=None):
        if int(every) != every or every < 1:
            raise ModelError(f"probe: every must be a positive integer number of steps, got {every!r}")
        if nodes not in (None, "all"):
            raise ModelError(f"probe: nodes must be None (one site) or \"all\", got {nodes!r}")
        if nodes == "all" and section is not None:
            raise ModelError("probe: give either a section (one site) or nodes=\"all\", not both")
        self.population, self.variable, self.cells, self.section, self.x, self.every = population, variable, cells, section, x, int(every)
        self.nodes = nodes
        location = "@all" if nodes == "all" else "" if section is None and x == 0.5 else f"@{section}({x})"
        self.name = name or f"{population}.{variable}{location}"


class Result:
    """Output of a run.

    ``t``: the times of every recorded sample (ms) per probe in ``times``; ``traces[name]``: tensors
    (B, cells, samples), or (B, cells, nodes, samples) for probes of every node; ``spikes[population]``: a SpikeRecord; ``spike_trains[population]``:
    (steps, B, cells) 0/1 tensors carrying surrogate gradients (when requested);
    ``clamp_currents[name]``: (B, sites, steps) nA for voltage clamps.
    """

    def __init__(self, dt, duration, batch, times, traces, variables, spikes, spike_trains, clamp_currents, wall_time):
        self.dt, self.duration, self.batch, self.variables = dt, duration, batch, variables
        self.times, self.traces, self.spikes = times, traces, spikes
        self.spike_trains, self.clamp_currents, self.wall_time = spike_trains, clamp_currents, wall_time

    @property
    def t(self):
        return next(iter(self.times.values())) if self.times else None

    def __getitem__(self, name):
        return self.traces[name]

    def spike_summary(self):
        """{population: {"spikes": count, "mean_rate_hz": mean over cells and batch}}."""
        summary = {}
        for name, record in self.spikes.items():
            summary[name] = {
                "spikes": int(len(record)),
                "mean_rate_hz": float(len(record) / (record.n_cells * self.batch * self.duration * 1e-3)),
            }
        return summary

    def save(self, directory):
        """Write traces (NPZ, one array per probe plus its time axis), spikes (CSV) and a summary (JSON)."""
        from pathlib import Path

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        arrays = {}
        for name, trace in self.traces.items():
            arrays[name] = trace.detach().cpu().numpy()
            arrays[f"{name}:t"] = self.times[name].cpu().numpy()
        for name, current in self.clamp_currents.items():
            arrays[f"{name}:i"] = current.detach().cpu().numpy()
        np.savez_compressed(directory / "traces.npz", **arrays)
        with open(directory / "spikes.csv", "w") as handle:
            handle.write("population,batch,cell,time_ms\n")
            for name, record in self.spikes.items():
                for b, c, t in zip(record.batch, record.cell, record.time):
                    handle.write(f"{name},{b},{c},{t:.6f}\n")
        with open(directory / "summary.json", "w") as handle:
            json.dump({"dt_ms": self.dt, "duration_ms": self.duration, "wall_time_s": self.wall_time,
                       "populations": self.spike_summary()}, handle, indent=2)
        return directory

    def plot(self, path, max_traces=8):
        """A PNG with the recorded voltage traces and a raster of every population."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        voltage = [name for name in self.traces if self.variables[name] == "v"]
        rows = (1 if voltage else 0) + (1 if any(len(r) for r in self.spikes.values()) else 0)
        fig, axes = plt.subplots(max(rows, 1), 1, figsize=(9, 3.2 * max(rows, 1)), squeeze=False)
        axes = axes[:, 0]
        row = 0
        if voltage:
            ax = axes[row]
            shown = 0
            for name in voltage:
                trace = self.traces[name][0].detach().cpu().numpy()
                trace = trace.reshape(-1, trace.shape[-1])
                for k in range(min(trace.shape[0], max_traces - shown)):
                    ax.plot(self.times[name].cpu().numpy(), trace[k], lw=0.8, label=f"{name}[{k}]")
                    shown += 1
            ax.set_xlabel("t (ms)")
            ax.set_ylabel("V (mV)")
            if shown <= 8:
                ax.legend(fontsize=7, loc="upper right")
            row += 1
        if row < len(axes):
            ax = axes[row]
            offset = 0
            total = sum(record.n_cells for record in self.spikes.values())
            size = max(2.0, min(200.0, 2000.0 / total))  # ticks readable for one cell and for thousands
            for name, record in self.spikes.items():
                mask = record.batch == 0
                ax.scatter(record.time[mask], record.cell[mask] + offset, s=size, marker="|", label=name)
                offset += record.n_cells
            ax.set_xlabel("t (ms)")
            ax.set_ylabel("cell")
            ax.set_xlim(0, self.duration)
            ax.legend(fontsize=7, loc="upper right", markerscale=5)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return path
