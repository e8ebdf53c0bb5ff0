"""Synaptic input of a network in Triton: receive, conductance and decay of the synaptic states, and
event-driven propagation of spikes through CSR rows into a ring buffer of per-delay slots.

The formulas and their order are those of ``Simulation._step`` (and ``solvers/network_kernel.py``):
at the start of a step the arrivals due now enter the states (gain · slot; gain 1 for exp, the
peak-normalising factor for exp2 kinetics) and their slot is freed; the conductance g (exp: s,
exp2: s_decay − s_rise) goes to the post cells' linear input (lin_g += g µS, lin_ge += g·e_rev nA);
after the cells' step the states decay (× exp(−dt/τ)) and this step's spikes are added to the slot
``delay`` steps ahead. The first three run as one kernel per synaptic entry, fused; a target that
several spikes of a step reach receives them by atomic adds, so their order (and the last bit of
the sum) may vary between GPU runs.

Kernels are compiled on first use and cached per interpreter setting (TRITON_INTERPRET=1 on the CPU).
They call only builtins of triton.language, none of its jit-defined functions (zeros_like, max, ...):
the interpreter runs those as nested functions whose patches of triton.language.core it never
undoes, which breaks later CUDA compiles in the same process.
"""

import math
import types
import weakref

import numpy as np
import torch
import triton
import triton.language as tl

from .point import block_size_for, lower_for_cuda

_JITTED = {}
_ON_DEVICE = weakref.WeakKeyDictionary()  # Connections → {(device, dtype): CSR arrays there}


def _receive_conduct_decay(states_ptr, ring_ptr, coefficients_ptr, lin_g_ptr, lin_ge_ptr, slot, n_sites,
                           EXP2: tl.constexpr, ACCUMULATE: tl.constexpr, BLOCK: tl.constexpr):
    """One synaptic entry's step for its ``n_sites`` (batch × post cells) sites. ``coefficients``:
    gain of the first and second state, their decay factors, e_rev (mV). The first entry of a post
    population writes lin_g/lin_ge, later ones (ACCUMULATE) add to them."""
    sites = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    live = sites < n_sites
    arrived = tl.load(ring_ptr + slot + sites, mask=live, other=0.0)
    tl.store(ring_ptr + slot + sites, tl.full([BLOCK], 0.0, arrived.dtype), mask=live)
    first = tl.load(states_ptr + sites, mask=live, other=0.0) + tl.load(coefficients_ptr) * arrived
    if EXP2:
        second = tl.load(states_ptr + n_sites + sites, mask=live, other=0.0) + tl.load(coefficients_ptr + 1) * arrived
        g = second - first
        tl.store(states_ptr + n_sites + sites, second * tl.load(coefficients_ptr + 3), mask=live)
    else:
        g = first
    tl.store(states_ptr + sites, first * tl.load(coefficients_ptr + 2), mask=live)
    ge = g * tl.load(coefficients_ptr + 4)
    if ACCUMULATE:
        g = tl.load(lin_g_ptr + sites, mask=live, other=0.0) + g
        ge = tl.load(lin_ge_ptr + sites, mask=live, other=0.0) + ge
    tl.store(lin_g_ptr + sites, g, mask=live)
    tl.store(lin_ge_ptr + sites, ge, mask=live)


def _enqueue(spikes_ptr, row, row_pointer_ptr, post_ptr, weights_ptr, ring_ptr, slot, n_pre, n_events, n_targets,
             longest, BLOCK: tl.constexpr):
    """Adds spike count · w along the CSR rows of the pre cells that spiked (``spikes`` at ``row``,
    (batch × n_pre) values) to the ring slot at ``slot`` ((batch × n_targets) values). Each lane walks
    its own cell's row (``longest``: the longest row); lanes of silent cells are masked off, so they
    touch no memory."""
    events = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    live = events < n_events
    amplitude = tl.load(spikes_ptr + row + events, mask=live, other=0.0)
    cell = events % n_pre
    first = tl.load(row_pointer_ptr + cell, mask=live, other=0)
    length = tl.where(amplitude != 0.0, tl.load(row_pointer_ptr + cell + 1, mask=live, other=0) - first, 0)
    targets = ring_ptr + slot + (events // n_pre) * n_targets
    for j in range(0, longest):
        valid = j < length
        post = tl.load(post_ptr + first + j, mask=valid, other=0)
        weight = tl.load(weights_ptr + first + j, mask=valid, other=0.0)
        tl.atomic_add(targets + post, amplitude * weight, mask=valid)


def _kernel(function):
    """``function`` compiled with ``triton.jit`` under the interpreter setting in force now."""
    key = (function.__name__, triton.knobs.runtime.interpret)
    if key not in _JITTED:
        namespace = {"__name__": __name__, "tl": tl, "triton": triton}
        rebound = types.FunctionType(function.__code__, namespace, function.__name__, function.__defaults__)
        _JITTED[key] = triton.jit(rebound)
    return _JITTED[key]


class SynapticEntry:
    """One merged synaptic input (a ``Simulation._projections`` entry) on the device: its states
    (n_states, B, sites), ring buffer (depth, B, sites), coefficients and CSR groups."""

    def __init__(self, states, ring, coefficients, exp2, groups):
        self.states, self.ring, self.coefficients, self.exp2 = states, ring, coefficients, exp2
        self.groups = groups  # (pre name, delay steps, row_pointer int64, post int32, weights, longest row, n_pre)
        self.depth, self.n_targets = ring.shape[0], ring.shape[2]
        self.n_sites = ring.shape[1] * self.n_targets

    def receive_conduct_decay(self, step, lin_g, lin_ge, accumulate):
        """Step ``step`` of the chunk: arrivals into the states, their conductance into ``lin_g`` (µS)
        and ``lin_ge`` (nA) (added if ``accumulate``, else written), then the states' decay."""
        block = block_size_for(self.n_sites)
        _kernel(_receive_conduct_decay)[(triton.cdiv(self.n_sites, block),)](
            self.states, self.ring, self.coefficients, lin_g, lin_ge, (step % self.depth) * self.n_sites,
            self.n_sites, EXP2=self.exp2, ACCUMULATE=accumulate, BLOCK=block)

    def enqueue(self, step, spikes):
        """This step's spikes (``spikes[pre]``: (steps, B, n_pre) counts) into the slots ``delay`` ahead."""
        for pre, delay, row_pointer, post, weights, longest, n_pre in self.groups:
            counts = spikes[pre]
            n_events = counts.shape[1] * n_pre
            block = block_size_for(n_events)
            _kernel(_enqueue)[(triton.cdiv(n_events, block),)](
                counts, step * n_events, row_pointer, post, weights, self.ring,
                ((step + delay) % self.depth) * self.n_sites, n_pre, n_events, self.n_targets, longest, BLOCK=block)


def entry_on_device(entry, states, queues, dt, dtype, device, n_pre):
    """A ``SynapticEntry`` for ``entry`` (a ``Simulation._projections`` entry with exp or exp2 kinetics of
    fixed numbers) from its state tensors and queues (each (B, sites)); ``n_pre[name]``: pre cells."""
    synapse = entry["synapse"]
    exp2 = synapse.n_states == 2
    taus = (synapse.tau_rise, synapse.tau_decay) if exp2 else (synapse.tau, synapse.tau)
    gains = (synapse.factor, synapse.factor) if exp2 else (1.0, 1.0)
    decays = [math.exp(-dt / tau) for tau in taus]
    coefficients = torch.tensor([*gains, *decays, synapse.e_rev], dtype=dtype, device=device)
    groups = [(pre, delay, *_csr(connections, dtype, device), n_pre[pre])
              for pre, delay_groups in entry["arrivals"] for delay, connections in delay_groups]
    return SynapticEntry(torch.stack(states).contiguous(), torch.stack(queues).contiguous(), coefficients, exp2, groups)


def _csr(connections, dtype, device):
    """A delay group's row pointers (int64), targets (int32) and weights (µS) on ``device`` and its longest
    row, copied there once: a run's Connections outlive its chunks."""
    cached = _ON_DEVICE.setdefault(connections, {})
    key = (str(device), dtype)
    if key not in cached:
        cached[key] = (torch.as_tensor(connections.row_pointer, device=device),
                       torch.as_tensor(connections.post_np, device=device).to(torch.int32),
                       connections.weights.detach().to(dtype=dtype, device=device).contiguous(),
                       int(np.diff(connections.row_pointer).max(initial=0)))
    return cached[key]


def compile_for_cuda(dtype, capability=90):
    """Both synaptic kernels compiled to cubins for compute ``capability`` with no GPU (TRITON_INTERPRET unset)."""
    pointer = {torch.float32: "*fp32", torch.float64: "*fp64"}[dtype]
    receive = {name: pointer for name in ("states_ptr", "ring_ptr", "coefficients_ptr", "lin_g_ptr", "lin_ge_ptr")}
    receive.update({"slot": "i32", "n_sites": "i32", "EXP2": "constexpr", "ACCUMULATE": "constexpr", "BLOCK": "constexpr"})
    enqueue = {"spikes_ptr": pointer, "row": "i32", "row_pointer_ptr": "*i64", "post_ptr": "*i32", "weights_ptr": pointer,
               "ring_ptr": pointer, "slot": "i32", "n_pre": "i32", "n_events": "i32", "n_targets": "i32", "longest": "i32",
               "BLOCK": "constexpr"}
    return {"receive_conduct_decay": lower_for_cuda(_kernel(_receive_conduct_decay), receive,
                                                    {"EXP2": True, "ACCUMULATE": True, "BLOCK": 128}, capability),
            "enqueue": lower_for_cuda(_kernel(_enqueue), enqueue, {"BLOCK": 128}, capability)}
