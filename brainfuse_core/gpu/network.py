"""The GPU path for networks of one-compartment populations: a chunk of steps of the whole network
in Triton kernels, the counterpart of ``solvers/network_kernel.py`` with the same contract.

Per step, in the order of ``Simulation._step``: for each synaptic entry, one fused kernel receives
the arrivals due now, adds its conductance to the post population's linear input and decays its
states (``gpu/synapses.py``); each population with synaptic input advances one step (the generated
``step`` kernel of ``gpu/point.py``: ``step_source.point_step`` with ``lin_g``/``lin_ge``, spike
detection, v recorded if probed); then the step's spikes go through the CSR rows into the ring
buffer, event-driven. Populations without synaptic input do not depend on the rest of the network:
they run the whole chunk first, many steps per launch (``run_point_population``), and their spikes
then feed the network like a source's. Spike sources' counts come from ``spike_counts`` as on the CPU.

The simulation's state keeps its format (``syn{k}/queue{d}`` tensors): the ring buffer is stacked
from the queues at the start of a chunk and handed back as queues at its end. Kernels run compiled
on a CUDA device and under Triton's interpreter on the CPU (how the tests check them).
"""

import torch
import triton

from ..errors import ModelError
from ..solvers.network_kernel import supports as supports_entry
from .point import block_size_for, run_point_population, step_kernel
from .synapses import entry_on_device


def supports(sim):
    """Whether ``run_network_chunk`` can run ``sim`` (prepared, running without gradients): populations
    of one-compartment cells whose step can be generated, no clamps, exp/exp2 synapses of fixed numbers,
    voltage probes only."""
    for block in sim._blocks.values():
        if block.size != 1 or block.clamps:
            return False
        try:
            step_kernel(block, sim.celsius, sim.method, sim.dt, block.population.threshold)
        except ModelError:
            return False
    return (all(supports_entry(entry) and entry["n_targets"] == sim._blocks[entry["post"]].population.n
                for entry in sim._projections)
            and all(probe.variable == "v" for probe, _, _, _ in sim._probe_sites))


class _SteppedPopulation:
    """A population with synaptic input, advanced one step per launch; its state and its chunk's
    records (spikes, crossing fractions, v if probed; (steps, B·cells)) live on the device."""

    def __init__(self, sim, name, state, injected, steps, record_v):
        block = sim._blocks[name]
        self.kernel, self.names, parameters = step_kernel(block, sim.celsius, sim.method, sim.dt, block.population.threshold)
        dtype, device = sim.dtype, sim.device
        self.n_cells = sim.batch * block.population.n
        self.values = [state[f"{name}/{key}"].detach().reshape(-1).to(dtype).clone() for key in self.names]
        self.params = torch.tensor(parameters.values, dtype=dtype, device=device)
        self.injected = injected.reshape(steps, -1).contiguous() if injected is not None else self.values[0]
        self.lin_g = torch.empty(self.n_cells, dtype=dtype, device=device)
        self.lin_ge = torch.empty_like(self.lin_g)
        self.spikes = torch.empty(steps, sim.batch, block.population.n, dtype=dtype, device=device)
        self.fraction = torch.empty_like(self.spikes)
        self.trace = torch.empty_like(self.spikes) if record_v else None
        self.inject = injected is not None
        self.block_size = block_size_for(self.n_cells)

    def step(self, m):
        trace = self.trace if self.trace is not None else self.fraction
        self.kernel[(triton.cdiv(self.n_cells, self.block_size),)](
            *self.values, self.injected, self.lin_g, self.lin_ge, self.params, self.spikes, self.fraction, trace,
            self.n_cells, m * self.n_cells, INJECT=self.inject, RECORD=self.trace is not None, BLOCK=self.block_size)


def _injected(block, start, stop, batch, dtype, device):
    """(steps, B, cells) nA injected per step of start..stop-1, or None without current clamps."""
    if not block.injections:
        return None
    steps = stop - start
    injected = torch.zeros((steps, batch, block.population.n), dtype=dtype, device=device)
    for flat, table, where in block.injections:
        injected = injected.index_add(2, flat, table[where[start:stop]].expand(steps, batch, len(flat)))
    return injected


def run_network_chunk(sim, state, start, stop):
    """Steps start..stop-1 of ``sim`` (a prepared Simulation for which ``supports`` holds), on ``sim.device``.

    Updates ``state`` (name → tensor) to the state after the chunk and returns, per population,
    (spikes, crossing fractions, voltage after every step or None), each (steps, B, cells)."""
    dtype, device, batch, steps = sim.dtype, sim.device, sim.batch, stop - start
    probed = {probe.population for probe, _, _, _ in sim._probe_sites}
    spikes = {name: source.spike_counts(start, stop, sim.dt, batch, dtype, device).contiguous()
              for name, source in sim._sources.items()}
    records, stepped = {}, {}
    for name, block in sim._blocks.items():
        injected = _injected(block, start, stop, batch, dtype, device)
        if block.synapse_inputs:
            stepped[name] = _SteppedPopulation(sim, name, state, injected, steps, name in probed)
            spikes[name] = stepped[name].spikes
            continue
        if injected is None:
            injected = torch.zeros((steps, batch, block.population.n), dtype=dtype, device=device)
        local = {key: state[f"{name}/{key}"] for key in block.state_names()}
        updated, spikes[name], fraction, trace = run_point_population(
            block, local, sim.dt, injected, block.population.threshold, sim.celsius, sim.method, name in probed)
        state.update({f"{name}/{key}": value for key, value in updated.items()})
        records[name] = (spikes[name], fraction, trace)
    n_pre = {name: population.n for name, population in sim._sources.items()}
    n_pre.update({name: block.population.n for name, block in sim._blocks.items()})
    entries = []
    for k, entry in enumerate(sim._projections):
        n_states = entry["synapse"].n_states
        states = [state[f"syn{k}/{s}"].detach().to(dtype) for s in range(n_states)]
        queues = [state[f"syn{k}/queue{d}"].detach().to(dtype) for d in range(entry["max_delay"])]
        entries.append((entry["post"], entry_on_device(entry, states, queues, sim.dt, dtype, device, n_pre)))
    for m in range(steps):
        written = set()
        for post, entry in entries:
            population = stepped[post]
            entry.receive_conduct_decay(m, population.lin_g, population.lin_ge, accumulate=post in written)
            written.add(post)
        for population in stepped.values():
            population.step(m)
        for _, entry in entries:
            entry.enqueue(m, spikes)
    for k, (_, entry) in enumerate(entries):
        state.update({f"syn{k}/{s}": entry.states[s] for s in range(entry.states.shape[0])})
        state.update({f"syn{k}/queue{d}": entry.ring[(steps + d) % entry.depth] for d in range(entry.depth)})
    for name, population in stepped.items():
        shape = state[f"{name}/v"].shape
        state.update({f"{name}/{key}": value.reshape(shape) for key, value in zip(population.names, population.values)})
        records[name] = (population.spikes, population.fraction, population.trace)
    return records
