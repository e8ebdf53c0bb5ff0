"""Spike detection by upward threshold crossing, with a surrogate gradient, and spike-time helpers.

Forward, a spike in step n is exactly the event v(tₙ) < θ ≤ v(tₙ₊₁). Backward, the step
function's derivative is replaced by the fast-sigmoid surrogate (Zenke & Ganguli 2018)
∂s/∂v(tₙ₊₁) = β / (1 + β·|v(tₙ₊₁) − θ|)², applied only where v(tₙ) < θ; β (1/mV) sets its width.
Spike *times* need no surrogate: the linearly interpolated crossing time
tₙ + dt·(θ − vₙ)/(vₙ₊₁ − vₙ) is differentiable in the voltages.
"""

import numpy as np
import torch


class _ThresholdCrossing(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v_new, below_before, threshold, beta):
        ctx.save_for_backward(v_new, below_before)
        ctx.threshold, ctx.beta = threshold, beta
        return ((v_new >= threshold) & below_before).to(v_new.dtype)

    @staticmethod
    def backward(ctx, grad):
        v_new, below_before = ctx.saved_tensors
        surrogate = ctx.beta / (1.0 + ctx.beta * (v_new - ctx.threshold).abs()) ** 2
        return grad * surrogate * below_before.to(grad.dtype), None, None, None


def threshold_crossing(v_old, v_new, threshold, beta=1.0):
    """Spikes (0/1 floats) where v crosses ``threshold`` upward in this step, with the surrogate gradient."""
    return _ThresholdCrossing.apply(v_new, v_old.detach() < threshold, threshold, beta)


def crossing_fraction(v_old, v_new, threshold):
    """Where in the step (0..1) v crosses ``threshold``, by linear interpolation (garbage where it does not)."""
    span = v_new - v_old
    safe = torch.where(span.abs() > 0, span, torch.ones_like(span))
    return ((threshold - v_old) / safe).clamp(0.0, 1.0)


def spike_times_from_trace(trace, dt, threshold=-20.0, t0=0.0):
    """Upward crossing times (ms) of a sampled trace, linearly interpolated. Works on numpy arrays or tensors.

    This is the procedure used on every simulator's trace in the validation cases, so all are
    timed the same way.
    """
    v = np.asarray(trace.detach().cpu() if torch.is_tensor(trace) else trace, dtype=float)
    below, above = v[:-1] < threshold, v[1:] >= threshold
    index = np.nonzero(below & above)[0]
    fraction = (threshold - v[index]) / (v[index + 1] - v[index])
    return t0 + (index + fraction) * dt


class SpikeRecord:
    """Spikes of one population: parallel arrays ``time`` (ms), ``cell`` and ``batch``, sorted by time."""

    def __init__(self, time, cell, batch, n_cells, duration):
        order = np.argsort(time, kind="stable")
        self.time, self.cell, self.batch = np.asarray(time)[order], np.asarray(cell)[order], np.asarray(batch)[order]
        self.n_cells, self.duration = n_cells, duration

    def __len__(self):
        return len(self.time)

    def times(self, cell=0, batch=0):
        return self.time[(self.cell == cell) & (self.batch == batch)]

    def counts(self, batch=0):
        return np.bincount(self.cell[self.batch == batch], minlength=self.n_cells)

    def rates(self, batch=0):
        """Firing rate (Hz) of every cell over the run."""
        return self.counts(batch) / (self.duration * 1e-3)

    def cv_isi(self, batch=0, min_spikes=3):
        """Coefficient of variation of inter-spike intervals for each cell with ≥ ``min_spikes`` spikes."""
        values = []
        mask = self.batch == batch
        cells, times = self.cell[mask], self.time[mask]
        order = np.lexsort((times, cells))
        cells, times = cells[order], times[order]
        bounds = np.flatnonzero(np.diff(cells)) + 1
        for group in np.split(times, bounds):
            if len(group) >= min_spikes:
                isi = np.diff(group)
                values.append(isi.std() / isi.mean())
        return np.asarray(values)
