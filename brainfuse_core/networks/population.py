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
    """``n`` independent Poisson spike trains at ``rate`` (Hz), drawn per batch element from ``seed``."""

    is_source = True

    def __init__(self, name, n, rate, seed=0, start=0.0, stop=None):
        if rate < 0:
            raise ModelError(f"Poisson source {name!r}: rate must be ≥ 0 Hz, got {rate!r}")
        self.name, self.n, self.rate, self.seed, self.start, self.stop = name, int(n), rate, seed, start, stop

    def spike_raster(self, n_steps, dt, batch, dtype, device):
        """(T, B, n) 0/1 spikes; at most one per step (exact for rate·dt ≪ 1)."""
        generator = torch.Generator(device="cpu").manual_seed(int(self.seed))
        p = self.rate * dt * 1e-3
        raster = (torch.rand((n_steps, batch, self.n), generator=generator, dtype=torch.float64) < p).to(dtype)
        t = torch.arange(n_steps, dtype=torch.float64) * dt
        active = (t >= self.start) & (t < (self.stop if self.stop is not None else float("inf")))
        return (raster * active.to(dtype)[:, None, None]).to(device)


class SpikeTrainSource:
    """Given spike times (ms): ``times[i]`` lists the times of source ``i``."""

    is_source = True

    def __init__(self, name, times):
        self.name = name
        self.times = [sorted(float(t) for t in train) for train in times]
        self.n = len(self.times)

    def spike_raster(self, n_steps, dt, batch, dtype, device):
        raster = np.zeros((n_steps, 1, self.n))
        for i, train in enumerate(self.times):
            steps = np.floor(np.asarray(train) / dt + 1e-9).astype(int)
            steps = steps[(steps >= 0) & (steps < n_steps)]
            np.add.at(raster[:, 0, i], steps, 1.0)
        return torch.as_tensor(raster, dtype=dtype, device=device).expand(n_steps, batch, self.n)
