"""Spike counts per time bin from a voltage trace, with the fast-sigmoid surrogate gradient, in one
compiled pass each way.

The result is exactly ``spikes.threshold_crossing`` summed over each bin's steps (the same event
v_before < θ ≤ v_after, the same surrogate β / (1 + β·|v_after − θ|)²), but a layer's trace has
millions of entries and the tensor version makes half a dozen passes over it and keeps a mask;
here the forward reads the trace once and the backward recomputes what it needs from the trace
alone. The voltage a step starts from is the previous step's after an integrate-and-fire reset
(``reset`` (threshold, v_reset) mV), or simply the previous one.
"""

import numba
import numpy as np
import torch

from ..spikes import threshold_crossing


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _start(trace, v_start, k, i, has_reset, reset_threshold, v_reset):
    before = v_start[i] if k == 0 else trace[k - 1, i]
    if has_reset and before >= reset_threshold:
        return v_reset
    return before


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _count(trace, v_start, substeps, threshold, has_reset, reset_threshold, v_reset, counts):
    steps, n = trace.shape
    for k in range(steps):
        b = k // substeps
        for i in range(n):
            before = _start(trace, v_start, k, i, has_reset, reset_threshold, v_reset)
            if before < threshold <= trace[k, i]:
                counts[b, i] += 1.0


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _surrogate(trace, v_start, d_counts, substeps, threshold, beta, has_reset, reset_threshold, v_reset, d_trace):
    steps, n = trace.shape
    for k in range(steps):
        b = k // substeps
        for i in range(n):
            before = _start(trace, v_start, k, i, has_reset, reset_threshold, v_reset)
            if before < threshold:
                distance = 1.0 + beta * abs(trace[k, i] - threshold)
                d_trace[k, i] = d_counts[b, i] * beta / (distance * distance)
            else:
                d_trace[k, i] = 0.0


def spike_counts(trace, v_start, substeps, threshold, beta, reset=None):
    """Spikes per bin (steps / substeps, ...) from ``trace`` (steps, ...) mV, v after every step, and
    ``v_start`` (...) mV, v before the first; gradients reach ``trace`` (not ``v_start``). Off the
    CPU (a trace on a GPU) the same counts and gradient come from tensor operations."""
    if trace.device.type != "cpu":
        return _tensor_counts(trace, v_start, int(substeps), threshold, beta, reset)
    return _SpikeCounts.apply(trace, v_start.detach(), int(substeps), float(threshold), float(beta), reset)


def _tensor_counts(trace, v_start, substeps, threshold, beta, reset):
    before = torch.cat([v_start.detach().unsqueeze(0).to(trace.dtype), trace[:-1].detach()])
    if reset is not None:
        before = torch.where(before >= reset[0], torch.full_like(before, reset[1]), before)
    spikes = threshold_crossing(before, trace, threshold, beta)
    return spikes.reshape(-1, substeps, *spikes.shape[1:]).sum(1)


class _SpikeCounts(torch.autograd.Function):
    @staticmethod
    def forward(ctx, trace, v_start, substeps, threshold, beta, reset):
        shape = trace.shape
        flat = trace.detach().reshape(shape[0], -1).contiguous()
        start = v_start.reshape(-1).to(flat.dtype).contiguous()
        has_reset, reset_threshold, v_reset = (False, 0.0, 0.0) if reset is None else (True, float(reset[0]), float(reset[1]))
        counts = np.zeros((shape[0] // substeps, flat.shape[1]), dtype=flat.numpy().dtype)
        _count(flat.numpy(), start.numpy(), substeps, threshold, has_reset, reset_threshold, v_reset, counts)
        ctx.save_for_backward(flat, start)
        ctx.settings = (shape, substeps, threshold, beta, has_reset, reset_threshold, v_reset)
        return torch.from_numpy(counts).reshape(shape[0] // substeps, *shape[1:])

    @staticmethod
    def backward(ctx, d_counts):
        flat, start = ctx.saved_tensors
        shape, substeps, threshold, beta, has_reset, reset_threshold, v_reset = ctx.settings
        d_flat = d_counts.detach().reshape(d_counts.shape[0], -1).to(flat.dtype).contiguous()
        d_trace = np.empty_like(flat.numpy())
        _surrogate(flat.numpy(), start.numpy(), d_flat.numpy(), substeps, threshold, beta, has_reset, reset_threshold,
                   v_reset, d_trace)
        return torch.from_numpy(d_trace).reshape(shape), None, None, None, None, None
