"""Populations: N identical cells simulated as one batched block, and spike sources."""

import numpy as np
import torch

from ..cells import Cell
from ..errors import ModelError


class Population:
    """``n`` copies of ``cell``. Spikes are upward crossings of ``threshold`` (mV) at ``spike_site``
    (section, x) — the root section's centre by default. ``v_init`` (mV) is a float, an (n,) array
    or tensor, or None for the cell's own."""

    def __init__(self, name, cell, n, threshold=-20.0, spike_site=None, v_init=None):
        if not isinstance(cell, Cell):
            raise ModelError(f"population {name!r}: cell must be a Cell")
        if int(n) != n or n < 1:
            raise ModelError(f"population {name!r}: size must be a positive integer, got {n!r}")
        self.name, self.cell, self.n, self.threshold = name, cell, int(n), threshold
        self.spike_site = spike_site or (cell.morphology.root, 0.5)
        self.v_init = v_init

    is_source = False

    def initial_voltage(self, batch, dtype, device):
        v0 = self.cell.v_init if self.v_init is None else self.v_init
        v0 = torch.as_tensor(v0, dtype=dtype, device=device)
        if v0.dim() == 0:
            v0 = v0.expand(self.n)
        return v0.reshape(-1, self.n, 1).expand(batch, self.n, self.cell.layout.size).clone()


class PoissonSource:
    """``n`` independent Poisson spike trains at ``rate`` (Hz), drawn per batch element from ``seed``.

    Each step carries a Poisson *count* of spikes (mean rate·dt), so a source may stand for many
    superposed inputs (e.g. K_ext background afferents at rate·K_ext) even when rate·dt ≥ 1.
    Counts are drawn in fixed blocks of steps, each seeded by (seed, block): any chunk of a run
    sees the same spikes however the run is chunked, and only one block is held in memory.
    """

    is_source = True
    BLOCK_STEPS = 1024

    def __init__(self, name, n, rate, seed=0, start=0.0, stop=None):
        if rate < 0:
            raise ModelError(f"Poisson source {name!r}: rate must be ≥ 0 Hz, got {rate!r}")
        self.name, self.n, self.rate, self.seed, self.start, self.stop = name, int(n), rate, seed, start, stop
        self._cached = (None, None)

    def spike_counts(self, first, last, dt, batch, dtype, device):
        """(last − first, B, n) spike counts of steps first..last−1."""
        blocks = range(first // self.BLOCK_STEPS, (last - 1) // self.BLOCK_STEPS + 1)
        counts = torch.cat([self._block(k, dt, batch) for k in blocks])
        offset = first - blocks[0] * self.BLOCK_STEPS
        counts = counts[offset: offset + last - first]
        t = torch.arange(first, last, dtype=torch.float64) * dt
        active = (t >= self.start) & (t < (self.stop if self.stop is not None else float("inf")))
        return (counts * active[:, None, None]).to(dtype=dtype, device=device)

    def _block(self, index, dt, batch):
        key = (index, dt, batch)
        if self._cached[0] != key:
            rng = np.random.default_rng([int(self.seed), index])
            counts = rng.poisson(self.rate * dt * 1e-3, size=(self.BLOCK_STEPS, batch, self.n))
            self._cached = (key, torch.from_numpy(counts.astype(np.float64)))
        return self._cached[1]


class SpikeTrainSource:
    """Given spike times (ms): ``times[i]`` lists the times of source ``i``."""

    is_source = True

    def __init__(self, name, times):
        self.name = name
        self.times = [sorted(float(t) for t in train) for train in times]
        self.n = len(self.times)

    def spike_counts(self, first, last, dt, batch, dtype, device):
        """(last − first, B, n) spike counts of steps first..last−1."""
        counts = np.zeros((last - first, 1, self.n))
        for i, train in enumerate(self.times):
            steps = np.floor(np.asarray(train) / dt + 1e-9).astype(int) - first
            steps = steps[(steps >= 0) & (steps < last - first)]
            np.add.at(counts[:, 0, i], steps, 1.0)
        return torch.as_tensor(counts, dtype=dtype, device=device).expand(last - first, batch, self.n)
