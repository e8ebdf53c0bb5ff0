"""Stimuli: current clamps (step, pulse train, waveform, noisy) and a voltage clamp.

Every stimulus targets ``population`` (default "cell"), a list of ``cells`` (default all) and a
site ``section(x)`` (default the root section's centre). Currents are in nA; with
``density=True`` amplitudes are µA/cm² of the target node's membrane instead (as in the
squid-axon literature). Like NEURON's IClamp, a clamp is on while delay ≤ t < delay + dur,
sampled at the middle of each step.
"""

import torch

from .errors import ModelError
from .units import UA_PER_CM2_TO_NA


class Stimulus:
    def __init__(self, population="cell", cells=None, section=None, x=0.5, density=False, name=None):
        self.population, self.cells, self.section, self.x, self.density = population, cells, section, x, density
        self.name = name or type(self).__name__

    def sites(self, population):
        """(cell indices, node index) this stimulus drives."""
        cells = list(range(population.n)) if self.cells is None else list(self.cells)
        if any(not 0 <= c < population.n for c in cells):
            raise ModelError(f"stimulus {self.name}: cell indices must lie in 0..{population.n - 1}")
        return cells, population.cell.location(self.section, self.x)

    def scale(self, population, node):
        if not self.density:
            return 1.0
        return float(population.cell.layout.area[node]) * UA_PER_CM2_TO_NA

    def _window(self, t, delay, dur):
        return ((t >= delay) & (t < delay + dur)).to(t.dtype)

    def table(self, t, batch, n_sites):
        """(table, index): the current (nA) in step n is ``table[index[n]]``, of shape (B or 1, sites or 1).

        Stimuli that change every step have one row per step; a sampled waveform keeps its samples."""
        return self.currents(t, batch, n_sites), torch.arange(len(t))


class IClamp(Stimulus):
    """A current step of ``amp`` from ``delay`` for ``dur`` ms."""

    def __init__(self, amp, delay=0.0, dur=1e9, **kwargs):
        super().__init__(**kwargs)
        self.amp, self.delay, self.dur = amp, delay, dur

    def currents(self, t, batch, n_sites):
        return self._window(t, self.delay, self.dur)[:, None, None] * per_batch(self.amp, t)


class PulseTrain(Stimulus):
    """``number`` pulses of ``amp`` and width ``width`` ms every ``interval`` ms, starting at ``delay``."""

    def __init__(self, amp, delay, width, interval, number, **kwargs):
        super().__init__(**kwargs)
        if width > interval:
            raise ModelError(f"pulse train: width ({width} ms) exceeds interval ({interval} ms)")
        self.amp, self.delay, self.width, self.interval, self.number = amp, delay, width, interval, number

    def currents(self, t, batch, n_sites):
        since = t - self.delay
        index = torch.floor(since / self.interval)
        on = (since >= 0) & (index < self.number) & (since - index * self.interval < self.width)
        return on.to(t.dtype)[:, None, None] * per_batch(self.amp, t)


class Waveform(Stimulus):
    """An arbitrary current waveform sampled every ``sample_dt`` ms: a tensor of shape (T,), (T, B) or (T, B, sites)."""

    def __init__(self, values, sample_dt, **kwargs):
        super().__init__(**kwargs)
        self.values, self.sample_dt = values, sample_dt

    def table(self, t, batch, n_sites):
        values = self.values.to(t.dtype) if torch.is_tensor(self.values) else torch.as_tensor(self.values, dtype=t.dtype)
        while values.dim() < 3:
            values = values.unsqueeze(-1)
        return values, torch.floor(t / self.sample_dt).long().clamp(max=values.shape[0] - 1)

    def currents(self, t, batch, n_sites):
        table, index = self.table(t, batch, n_sites)
        return table[index]


class NoisyClamp(Stimulus):
    """Gaussian white-noise current: mean ``mean`` and standard deviation ``std`` per step, from ``seed``."""

    def __init__(self, mean, std, delay=0.0, dur=1e9, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.mean, self.std, self.delay, self.dur, self.seed = mean, std, delay, dur, seed

    def currents(self, t, batch, n_sites):
        generator = torch.Generator().manual_seed(int(self.seed))
        noise = torch.randn((len(t), batch, n_sites), generator=generator, dtype=torch.float64).to(t.dtype)
        return self._window(t, self.delay, self.dur)[:, None, None] * (self.mean + self.std * noise)


class VClamp(Stimulus):
    """Voltage clamp through a series resistance ``rs`` (MΩ), as NEURON's SEClamp.

    ``levels`` is a list of (duration ms, command mV); after the last the clamp is off.
    The clamp current (nA, positive = into the cell) is reported in ``Result.clamp_currents``.
    """

    def __init__(self, levels, rs=1e-3, **kwargs):
        super().__init__(**kwargs)
        if not rs > 0:
            raise ModelError(f"voltage clamp: rs must be positive (MΩ), got {rs!r}")
        self.levels, self.rs = levels, rs

    def command(self, t):
        """(T,) command voltage and (T,) on-mask."""
        command = torch.zeros_like(t)
        on = torch.zeros_like(t, dtype=torch.bool)
        start = 0.0
        for duration, level in self.levels:
            window = (t >= start) & (t < start + duration)
            command = torch.where(window, torch.as_tensor(level, dtype=t.dtype), command)
            on = on | window
            start += duration
        return command, on


CURRENT_CLAMPS = (IClamp, PulseTrain, Waveform, NoisyClamp)


def per_batch(value, like):
    """A float, a scalar tensor, or a (B,) tensor of per-batch values, shaped to broadcast over (T, B, sites)."""
    value = torch.as_tensor(value, dtype=like.dtype) if not torch.is_tensor(value) else value.to(like.dtype)
    return value.reshape(-1, 1) if value.dim() == 1 else value
