"""The CPU fast path for networks of one-compartment populations: a whole chunk of steps of the
whole network in one compiled call.

Stepping a network from Python costs dozens of small calls per step (receive, conductances,
neuron update, spike detection, decay, propagation), which outweighs the arithmetic for networks
of a few thousand cells. Here one generated numba function runs the chunk's steps; per step it
calls, in the order of ``Simulation._step``: receive from the delay queue, the populations'
generated steps (``PointKernel.advance``, written from the channel definitions) with the
received conductances, then synaptic decay and propagation of this step's spikes through CSR
rows into a ring buffer of per-delay queues. The same formulas run in the same order and the
same precision, so spikes and traces equal those of the step-by-step path.

The simulation's state keeps its format (``syn{k}/queue{d}`` tensors): the ring buffer is built
from the queues at the start of a chunk and handed back as queues at its end, so chunk
boundaries, monitors and final states are unchanged.

The chunk runs on one thread. The populations' steps vectorise over cells; splitting them over
threads per step was measured slower on 2 shared cores (a parallel region per step and
population waits for the slowest thread, and numba's parallel loop body did not vectorise).
"""

import math

import numba
import numpy as np
import torch

from ..networks.synapses import Exp2Synapse, ExpSynapse
from . import generated
from .fastmath import wide_vectors


def supports(entry):
    """Whether a merged synaptic input (a ``Simulation._projections`` entry) can run here: exp or
    exp2 kinetics with fixed numbers (tensor time constants may carry gradients)."""
    synapse = entry["synapse"]
    return (type(synapse) in (ExpSynapse, Exp2Synapse)
            and not any(torch.is_tensor(value) for value in vars(synapse).values()))


@numba.njit(nogil=True, error_model="numpy")
def _receive(states, ring, slot, gain):
    """Adds the arrivals due now (gain · queue, as ``receive``) and frees their slot for the longest delay."""
    for s in range(states.shape[0]):
        for b in range(states.shape[1]):
            for t in range(states.shape[2]):
                states[s, b, t] = states[s, b, t] + gain[s] * ring[slot, b, t]
    for b in range(states.shape[1]):
        for t in range(states.shape[2]):
            ring[slot, b, t] = 0.0


@numba.njit(nogil=True, error_model="numpy")
def _conduct(states, exp2, post_flat, stride, e_rev, linear_g, linear_ge):
    """Adds the synaptic conductance (µS) and conductance × reversal (nA) to the post cells' linear input."""
    for b in range(states.shape[1]):
        for t in range(states.shape[2]):
            g = states[1, b, t] - states[0, b, t] if exp2 else states[0, b, t]
            site = b * stride + post_flat[t]
            linear_g[site] += g
            linear_ge[site] += g * e_rev[0]


@numba.njit(nogil=True, error_model="numpy")
def _decay(states, factors):
    for s in range(states.shape[0]):
        for b in range(states.shape[1]):
            for t in range(states.shape[2]):
                states[s, b, t] = states[s, b, t] * factors[s]


@numba.njit(nogil=True, error_model="numpy")
def _enqueue(spikes, step, n_pre, row_pointer, post, weights, scratch, touched, ring, slot):
    """Adds Σ spikes · w of one delay group to its queue slot, summed apart first as ``Connections.propagate``
    does (the same roundings); ``touched`` lists the (flat) targets that received something."""
    n_post, n_touched = scratch.shape[1], 0
    for k in range(spikes.shape[1]):
        amplitude = spikes[step, k]
        if amplitude != 0:
            b, c = k // n_pre, k % n_pre
            for e in range(row_pointer[c], row_pointer[c + 1]):
                arrival = amplitude * weights[e]
                if arrival == 0:  # adds nothing, and must not be listed twice
                    continue
                if scratch[b, post[e]] == 0:
                    touched[n_touched] = b * n_post + post[e]
                    n_touched += 1
                scratch[b, post[e]] += arrival
    for k in range(n_touched):
        b, t = touched[k] // n_post, touched[k] % n_post
        ring[slot, b, t] = ring[slot, b, t] + scratch[b, t]
        scratch[b, t] = 0.0


def _source(layout):
    """The chunk function for a network layout: per population its state count; per synaptic entry
    its queue depth, post population, whether exp2, and its (pre input, delay) groups."""
    populations, entries, n_inputs = layout
    args = ["steps"]
    for j, n_states in enumerate(populations):
        args += [f"p{j}_s{k}" for k in range(n_states)]
        args += [f"p{j}_{name}" for name in ("inj", "rows", "lg", "lge", "par", "thr", "stride", "spk", "frac", "trc", "rec")]
    args += [f"x{i}" for i in range(n_inputs)]
    lines = []
    for k, (depth, post, exp2, groups) in enumerate(entries):
        args += [f"y{k}_{name}" for name in ("st", "ring", "decay", "gain", "erev", "post", "scratch", "touched")]
        for g in range(len(groups)):
            args += [f"y{k}_g{g}_{name}" for name in ("n", "rp", "post", "w")]
    lines.append('@numba.njit(nogil=True, error_model="numpy", cache=True)')
    lines.append(f"def chunk({', '.join(args)}):")
    lines.append("    _wide_vectors()  # kept if LLVM inlines the populations' steps here")
    lines.append("    for m in range(steps):")
    for k, (depth, _, _, _) in enumerate(entries):
        lines.append(f"        _receive(y{k}_st, y{k}_ring, m % {depth}, y{k}_gain)")
    for j, n_states in enumerate(populations):
        lines.append(f"        p{j}_lg[:] = 0.0")
        lines.append(f"        p{j}_lge[:] = 0.0")
        for k, (_, post, exp2, _) in enumerate(entries):
            if post == j:
                lines.append(f"        _conduct(y{k}_st, {exp2}, y{k}_post, p{j}_stride, y{k}_erev, p{j}_lg, p{j}_lge)")
        states = ", ".join(f"p{j}_s{k}" for k in range(n_states))
        lines.append(f"        advance{j}({states}, p{j}_inj, p{j}_rows, p{j}_lg, p{j}_lge, p{j}_par, p{j}_thr, m, p{j}_spk, p{j}_frac, p{j}_trc, p{j}_rec)")
    for k, (depth, _, _, groups) in enumerate(entries):
        lines.append(f"        _decay(y{k}_st, y{k}_decay)")
        for g, (pre, delay) in enumerate(groups):
            spikes = f"p{pre[1]}_spk" if pre[0] == "population" else f"x{pre[1]}"
            lines.append(f"        _enqueue({spikes}, m, y{k}_g{g}_n, y{k}_g{g}_rp, y{k}_g{g}_post, y{k}_g{g}_w, "
                         f"y{k}_scratch, y{k}_touched, y{k}_ring, (m + {delay}) % {depth})")
    return "\n".join(lines) + "\n"


def _compiled(layout, kernels):
    """The chunk function of ``layout`` calling the populations' ``kernels`` (PointKernels), kept on disk
    (``generated.load``) with the populations' own generated modules as its dependencies."""
    namespace = {"numba": numba, "_wide_vectors": wide_vectors, "_receive": _receive, "_conduct": _conduct,
                 "_decay": _decay, "_enqueue": _enqueue}
    namespace.update({f"advance{j}": kernel.advance for j, kernel in enumerate(kernels)})
    return generated.load(_source(layout), namespace, [kernel.digest for kernel in kernels]).chunk


def run_network_chunk(sim, state, start, stop):
    """Steps start..stop-1 of ``sim`` (a prepared Simulation that passed ``_can_run_whole_chunks``).

    Updates ``state`` (name → tensor) to the state after the chunk and returns, per population,
    (spikes, crossing fractions, voltage after every step or None), each (steps, B, cells)."""
    dtype, B, steps = sim.dtype, sim.batch, stop - start
    np_dtype = np.float32 if dtype == torch.float32 else np.float64
    names = list(sim._blocks)
    index = {name: j for j, name in enumerate(names)}
    probed = {probe.population for probe, _, _, _ in sim._probe_sites}
    populations, arrays, kernels, outputs = [], [], [], {}
    for j, name in enumerate(names):
        block, kernel = sim._blocks[name], sim._blocks[name].kernel
        n = block.population.n
        injected, rows = sim._chunk_injections(block, start, stop)
        values = [state[f"{name}/{key}"].detach().reshape(-1).numpy().copy() for key in block.state_names()]
        spikes = np.empty((steps, B * n), dtype=np_dtype)  # the kernel writes every element
        fraction = np.empty_like(spikes)
        trace = np.empty((steps if name in probed else 1, B * n), dtype=np_dtype)
        arrays += values + [np.ascontiguousarray(injected.reshape(len(injected), -1).numpy()), rows.numpy(), np.empty(B * n, np_dtype),
                            np.empty(B * n, np_dtype), kernel.parameters(np_dtype),
                            np_dtype(block.population.threshold), n * block.size, spikes, fraction, trace, name in probed]
        populations.append(len(values))
        kernels.append(kernel)
        outputs[name] = (values, spikes, fraction, trace)
    inputs = {}
    for name, source in sim._sources.items():
        counts = source.spike_counts(start, stop, sim.dt, B, dtype, sim.device)
        inputs[name] = len(inputs)
        arrays.append(np.ascontiguousarray(counts.reshape(steps, -1).numpy()))
    entries, rings = [], []
    for k, entry in enumerate(sim._projections):
        synapse, depth = entry["synapse"], entry["max_delay"]
        exp2 = isinstance(synapse, Exp2Synapse)
        taus = [synapse.tau_rise, synapse.tau_decay] if exp2 else [synapse.tau]
        gain = [synapse.factor, synapse.factor] if exp2 else [1.0]
        states = np.stack([state[f"syn{k}/{s}"].detach().numpy() for s in range(synapse.n_states)])
        ring = np.stack([state[f"syn{k}/queue{d}"].detach().numpy() for d in range(depth)])
        arrays += [states, ring, np.array([math.exp(-sim.dt / tau) for tau in taus], dtype=np_dtype),
                   np.array(gain, dtype=np_dtype), np.array([synapse.e_rev], dtype=np_dtype),
                   entry["post_flat"].numpy().astype(np.int64), np.zeros_like(states[0]), np.empty(states[0].size, np.int64)]
        groups = []
        for pre, delay_groups in entry["arrivals"]:
            n_pre = (sim._blocks[pre].population if pre in sim._blocks else sim._sources[pre]).n
            for delay, connections in delay_groups:
                groups.append((("population", index[pre]) if pre in index else ("input", inputs[pre]), delay))
                arrays += [n_pre, connections.row_pointer, connections.post_np,
                           np.ascontiguousarray(connections.weights_np, dtype=np_dtype)]
        entries.append((depth, index[entry["post"]], exp2, tuple(groups)))
        rings.append((k, synapse.n_states, depth, states, ring))
    chunk = _compiled((tuple(populations), tuple(entries), len(inputs)), kernels)
    chunk(steps, *arrays)
    for k, n_states, depth, states, ring in rings:
        state.update({f"syn{k}/{s}": torch.from_numpy(states[s]) for s in range(n_states)})
        state.update({f"syn{k}/queue{d}": torch.from_numpy(ring[(steps + d) % depth].copy()) for d in range(depth)})
    records = {}
    for name, (values, spikes, fraction, trace) in outputs.items():
        shape = state[f"{name}/v"].shape
        block = sim._blocks[name]
        state.update({f"{name}/{key}": torch.from_numpy(value).reshape(shape)
                      for key, value in zip(block.state_names(), values)})
        as_tensor = lambda array: torch.from_numpy(array).reshape(steps, B, block.population.n)
        records[name] = (as_tensor(spikes), as_tensor(fraction), as_tensor(trace) if name in probed else None)
    return records
