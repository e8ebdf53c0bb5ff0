"""Running a model: the time loop, recording, spike exchange, and memory-lean backpropagation.

``Simulation(model, ...)`` takes a Cell or a Network, stimuli and probes; ``run(duration)``
returns a Result. Everything is a (B, ...) batch: B stimuli or parameter sets at once
(stimulus amplitudes given as (B,) tensors; channel parameters as tensors broadcasting
against the (B, cells, nodes) state, e.g. shape (B, 1, 1)).

Gradients: populations without synapses or voltage clamps (point cells or cells of many
compartments driven by current clamps) run through compiled gradient kernels generated from
their channel definitions (``solvers/gradient_kernel.py``, ``solvers/cable_gradient.py``):
a forward keeping checkpoints every √T steps and a backward that replays each segment and walks
it back through the step's adjoint. Everything else runs the tensor path in chunks of
``checkpoint_every`` steps (default √T) inside ``_Recompute``: only the state at chunk
boundaries is kept, and each chunk is recomputed during the backward pass. ``checkpoint=False``
keeps everything (plain autograd) there, for comparison.

Without gradients, populations run through code generated from their channel definitions and
compiled (``solvers/compiled.py``, ``cable_kernel.py``, ``network_kernel.py``); the results are
the same. ``compiled=False`` takes the tensor path everywhere (the reference).
"""

import copy
import importlib.util
import math
import time

import numpy as np
import torch

from .errors import ModelError, SimulationUnstableError
from .networks import Network
from .networks.propagation import Connections
from .recording import Probe, Result
from .solvers import cable_gradient, gradient_kernel
from .solvers.membrane import METHODS, CompiledCell
from .solvers.network_kernel import run_network_chunk
from .solvers.network_kernel import supports as supports_entry
from .spikes import SpikeRecord, crossing_fraction, threshold_crossing
from .stimuli import CURRENT_CLAMPS, VClamp


class Simulation:
    def __init__(self, model, stimuli=(), probes=None, dt=0.025, celsius=6.3, method="backward_euler",
                 dtype=torch.float64, device="cpu", batch=1, checkpoint_every=None, surrogate_beta=1.0,
                 record_spike_trains=False, threads=None, checkpoint=True, compiled=True):
        if not (isinstance(dt, (int, float)) and dt > 0 and math.isfinite(dt)):
            raise ModelError(f"dt must be a positive number of ms, got {dt!r}")
        if method not in METHODS:
            raise ModelError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
        if dtype not in (torch.float32, torch.float64):
            raise ModelError(f"dtype must be torch.float32 or torch.float64, got {dtype!r}")
        self.network = Network.of(model)
        self.stimuli = list(stimuli)
        names = [stim.name for stim in self.stimuli]
        repeated = {name for name in names if names.count(name) > 1}
        if repeated:
            raise ModelError(f"two stimuli are named {sorted(repeated)[0]!r}; give each a distinct name=")
        if probes is None:
            cells = [name for name, pop in self.network.populations.items() if not pop.is_source]
            probes = [Probe(cells[0], "v", cells=[0])] if cells else []
        self.probes = list(probes)
        self.dt, self.celsius, self.method = float(dt), celsius, method
        self.dtype, self.device, self.batch = dtype, torch.device(device), int(batch)
        self.checkpoint_every = checkpoint_every
        self.surrogate_beta = surrogate_beta
        self.record_spike_trains = record_spike_trains
        self.threads = threads
        self.checkpoint = checkpoint
        self.compiled = compiled

    _gradient_kernels = False
    _whole_chunks = False

    # ----------------------------------------------------------------------------- set-up
    def _prepare(self, n_steps):
        net = self.network.build()
        dtype, device, B = self.dtype, self.device, self.batch
        t_mid = (torch.arange(n_steps, dtype=torch.float64, device=device) + 0.5) * self.dt
        self._blocks = {}
        for name, pop in net.populations.items():
            if pop.is_source:
                continue
            block = CompiledCell(pop.cell, dtype, device)
            block.population = pop
            block.spike_node = pop.cell.location(*pop.spike_site)
            block.injections = []
            block.clamps = []
            block.synapse_inputs = []
            self._blocks[name] = block
        self._sources = {name: pop for name, pop in net.populations.items() if pop.is_source}
        for stim in self.stimuli:
            block = self._block(stim.population, f"stimulus {stim.name}")
            cells, node = stim.sites(block.population)
            flat = torch.as_tensor(cells, device=device) * block.size + node
            if isinstance(stim, VClamp):
                command, on = stim.command(t_mid)
                block.clamps.append((stim, flat, command.to(dtype), on.to(dtype) / stim.rs))
            elif isinstance(stim, CURRENT_CLAMPS):
                table, index = stim.table(t_mid.to(dtype), B, len(cells))
                block.injections.append((flat, table * stim.scale(block.population, node), index.to(device)))
            else:
                raise ModelError(f"unknown stimulus type {type(stim).__name__}")
        self._projections = []
        merged = {}
        for proj in net.projections:
            post = self._blocks[proj.post]
            key = _merge_key(proj)
            entry = merged.get(key) if key is not None else None
            if entry is None:
                sites = torch.as_tensor(proj.site_nodes, device=device)
                cells = torch.arange(post.population.n, device=device)
                entry = {"synapse": proj.synapse, "post": proj.post, "arrivals": [], "initial": [], "max_delay": 1,
                         "n_targets": post.population.n * len(sites),
                         "post_flat": (cells[:, None] * post.size + sites[None, :]).flatten()}
                self._projections.append(entry)
                post.synapse_inputs.append(entry)
                if key is not None:
                    merged[key] = entry
            entry["arrivals"].append((proj.pre, self._delay_groups(proj, net.populations[proj.pre].n)))
            entry["max_delay"] = max([entry["max_delay"]] + [d for d, _ in entry["arrivals"][-1][1]])
            entry["initial"].append(proj.initial_conductance)
        self._probe_sites = []
        for probe in self.probes:
            block = self._block(probe.population, f"probe {probe.name}")
            if probe.variable not in block.state_names():
                raise ModelError(f"probe {probe.name}: population {probe.population!r} has no state {probe.variable!r}; "
                                 f"it has {', '.join(block.state_names())}")
            cells = list(range(block.population.n)) if probe.cells is None else list(probe.cells)
            if any(not 0 <= c < block.population.n for c in cells):
                raise ModelError(f"probe {probe.name}: cell indices must lie in 0..{block.population.n - 1}")
            node = slice(None) if probe.nodes == "all" else block.cell.location(probe.section, probe.x)
            self._probe_sites.append((probe, block, torch.as_tensor(cells, device=device), node))

    def _delay_groups(self, proj, n_pre):
        """The projection's connections as (delay steps, Connections) groups, one per distinct delay,
        each connection aimed at its synaptic site (post cell × site of the projection's target)."""
        delays = proj.delay_steps(self.dt)
        weights = proj.weights.to(device=self.device, dtype=self.dtype)
        pre_index = proj.pre_index.to(self.device)
        targets = (proj.post_index * len(proj.site_nodes) + proj.site_of).to(self.device)
        if delays.numel() == 0 or bool((delays == delays[0]).all()):
            return [(int(delays[0]) if delays.numel() else 1, Connections(pre_index, targets, weights, n_pre))]
        groups = []
        for d in torch.unique(delays).tolist():
            edges = torch.nonzero(delays == d).flatten().to(self.device)
            groups.append((d, Connections(pre_index[edges], targets[edges], weights[edges], n_pre)))
        return groups

    def _block(self, name, what):
        if name not in self._blocks:
            raise ModelError(f"{what}: no simulated population {name!r}; populations are {', '.join(self._blocks) or 'none'}")
        return self._blocks[name]

    def _initial_state(self):
        state = {}
        for name, block in self._blocks.items():
            v0 = block.population.initial_voltage(self.batch, self.dtype, self.device)
            for key, value in block.initial_state(v0, self.celsius).items():
                state[f"{name}/{key}"] = value
        for k, entry in enumerate(self._projections):
            zero = torch.zeros(self.batch, entry["n_targets"], dtype=self.dtype, device=self.device)
            initial = None
            for value in entry["initial"]:
                if value is not None:
                    initial = (zero if initial is None else initial) + torch.as_tensor(value, dtype=self.dtype, device=self.device)
            for s, value in enumerate(entry["synapse"].initial_states(zero, initial)):
                state[f"syn{k}/{s}"] = value
            for d in range(entry["max_delay"]):
                state[f"syn{k}/queue{d}"] = zero.clone()
        return state

    # ----------------------------------------------------------------------------- one step
    def _step(self, state, n):
        dt, B = self.dt, self.batch
        new = {}
        for k, entry in enumerate(self._projections):
            syn = entry["synapse"]
            queue = [state[f"syn{k}/queue{d}"] for d in range(entry["max_delay"])]
            states = syn.receive([state[f"syn{k}/{s}"] for s in range(syn.n_states)], queue[0])
            entry["current"] = states
            for s, value in enumerate(states):
                new[f"syn{k}/{s}"] = value
            for d in range(entry["max_delay"] - 1):
                new[f"syn{k}/queue{d}"] = queue[d + 1]
            new[f"syn{k}/queue{entry['max_delay'] - 1}"] = torch.zeros_like(queue[0])
        spikes = {name: counts[n - self._chunk_start] for name, counts in self._source_counts.items()}
        records = {}
        for name, block in self._blocks.items():
            local = {key: state[f"{name}/{key}"] for key in block.state_names()}
            shape = local["v"].shape
            flat_shape = (shape[0], shape[1] * shape[2])
            injected = linear_g = linear_ge = 0.0
            if block.injections:
                injected = torch.zeros(flat_shape, dtype=self.dtype, device=self.device)
                for flat, table, index in block.injections:
                    injected = injected.index_add(1, flat, table[index[n]].expand(B, len(flat)))
                injected = injected.reshape(shape)
            if block.clamps or block.synapse_inputs:
                linear_g = torch.zeros(flat_shape, dtype=self.dtype, device=self.device)
                linear_ge = torch.zeros(flat_shape, dtype=self.dtype, device=self.device)
                for stim, flat, command, conductance in block.clamps:
                    linear_g = linear_g.index_add(1, flat, conductance[n].expand(B, len(flat)))
                    linear_ge = linear_ge.index_add(1, flat, (conductance[n] * command[n]).expand(B, len(flat)))
                for entry in block.synapse_inputs:
                    syn = entry["synapse"]
                    g = syn.conductance(entry["current"])
                    linear_g = linear_g.index_add(1, entry["post_flat"], g)
                    linear_ge = linear_ge.index_add(1, entry["post_flat"], g * syn.e_rev)
                linear_g, linear_ge = linear_g.reshape(shape), linear_ge.reshape(shape)
            updated = block.step(local, dt, self.celsius, self.method, injected, linear_g, linear_ge)
            for key, value in updated.items():
                new[f"{name}/{key}"] = value
            v_old, v_new = local["v"][..., block.spike_node], updated["v"][..., block.spike_node]
            threshold = block.population.threshold
            spikes[name] = threshold_crossing(v_old, v_new, threshold, self.surrogate_beta)
            records[f"{name}:fraction"] = crossing_fraction(v_old.detach(), v_new.detach(), threshold)
            for stim, flat, command, conductance in block.clamps:
                v_site = updated["v"].reshape(flat_shape)[:, flat]
                records[f"clamp:{stim.name}"] = conductance[n] * (command[n] - v_site)
        for k, entry in enumerate(self._projections):
            syn = entry["synapse"]
            decayed = syn.decay([new[f"syn{k}/{s}"] for s in range(syn.n_states)], dt)
            for s, value in enumerate(decayed):
                new[f"syn{k}/{s}"] = value
            for pre, groups in entry["arrivals"]:
                for delay, connections in groups:
                    key = f"syn{k}/queue{delay - 1}"
                    new[key] = new[key] + connections.propagate(spikes[pre], entry["n_targets"])
        records["spikes"] = spikes
        return new, records

    # ----------------------------------------------------------------------------- the loop
    def _record_dims(self):
        """Along which dimension each kept record is concatenated: probes, spike trains (if asked for), clamps."""
        dims = [-1 for _ in self._probe_sites]
        dims += [0] * len(self._blocks) if self.record_spike_trains else []
        dims += [-1 for stim in self.stimuli if isinstance(stim, VClamp)]
        return dims

    def _kept(self, records):
        """Of a chunk's records (probes, then spikes and crossing fractions per population, then clamps),
        those that outlive the chunk as outputs. Spikes otherwise leave as sparse events only: dense
        trains would grow as steps × cells."""
        n_probes, n_blocks = len(self._probe_sites), len(self._blocks)
        trains = list(records[n_probes: n_probes + 2 * n_blocks: 2]) if self.record_spike_trains else []
        return list(records[:n_probes]) + trains + list(records[n_probes + 2 * n_blocks:])

    def _chunk(self, keys, start, stop):
        """Steps start..stop-1 as a pure function of the state tensors, returning (state..., records...)."""
        if self._gradient_kernels:
            return self._gradient_chunk(keys, start, stop)
        if self._whole_chunks:
            return self._compiled_chunk(keys, start, stop)

        def run(*values):
            state = dict(zip(keys, values))
            self._chunk_start = start
            self._source_counts = {name: source.spike_counts(start, stop, self.dt, self.batch, self.dtype, self.device)
                                   for name, source in self._sources.items()}
            samples = {probe.name: [] for probe, _, _, _ in self._probe_sites}
            spikes = {name: [] for name in self._blocks}
            fractions = {name: [] for name in self._blocks}
            clamps = {stim.name: [] for stim in self.stimuli if isinstance(stim, VClamp)}
            for n in range(start, stop):
                state, records = self._step(state, n)
                for probe, block, cells, node in self._probe_sites:
                    if (n + 1) % probe.every == 0:
                        samples[probe.name].append(state[f"{probe.population}/{probe.variable}"][:, cells, node])
                for name in self._blocks:
                    spikes[name].append(records["spikes"][name])
                    fractions[name].append(records[f"{name}:fraction"])
                for name in clamps:
                    clamps[name].append(records[f"clamp:{name}"])
            out = [state[key] for key in keys]
            for probe, _, cells, node in self._probe_sites:
                parts = samples[probe.name]
                if parts:
                    out.append(torch.stack(parts, -1))
                else:
                    out.append(state[f"{probe.population}/{probe.variable}"][:, cells, node].unsqueeze(-1)[..., :0])
            for name in self._blocks:
                out.append(torch.stack(spikes[name]))
                out.append(torch.stack(fractions[name]))
            for name in clamps:
                out.append(torch.stack(clamps[name], -1))
            return tuple(out)

        return run

    def _compiled_chunk(self, keys, start, stop):
        """A chunk in compiled calls: one per population when they are unconnected (point cells:
        ``solvers/compiled.py``; cells of several compartments: ``solvers/cable_kernel.py``), one for
        the whole network of one-compartment populations otherwise (``solvers/network_kernel.py``).
        On a CUDA device, the Triton kernels (``gpu/network.py``)."""

        def run(*values):
            state = dict(zip(keys, values))
            if self.device.type == "cuda":
                from .gpu.network import run_network_chunk as run_with_triton

                return self._chunk_outputs(keys, state, run_with_triton(self, state, start, stop), start, stop)
            if self._projections:
                return self._chunk_outputs(keys, state, run_network_chunk(self, state, start, stop), start, stop)
            records = {}
            for name, block in self._blocks.items():
                injected, rows = self._chunk_injections(block, start, stop)
                local = {key: state[f"{name}/{key}"] for key in block.state_names()}
                record_v = any(probe.population == name for probe, _, _, _ in self._probe_sites)
                where = () if block.size == 1 else (block.spike_node,)
                updated, spikes, fraction, trace = block.kernel.run(local, self.dt, injected, rows, *where,
                                                                    block.population.threshold, record_v, self.threads)
                state.update({f"{name}/{key}": value for key, value in updated.items()})
                records[name] = (spikes, fraction, trace)
            return self._chunk_outputs(keys, state, records, start, stop)

        return run

    def _gradient_chunk(self, keys, start, stop):
        """A differentiable chunk through the generated gradient kernels, one call per population
        (``solvers/gradient_kernel.py`` for point cells, ``gpu/point_backward.py`` for them on a CUDA
        device, ``solvers/cable_gradient.py`` for cells of several compartments): states are recomputed from checkpoints in the backward pass instead of
        stored. Spike trains, when recorded, keep their surrogate gradient, as on the tensor path."""

        def run(*values):
            state = dict(zip(keys, values))
            records = {}
            for name, block in self._blocks.items():
                injected, rows = self._chunk_injections(block, start, stop)
                local = {key: state[f"{name}/{key}"] for key in block.state_names()}
                if block.size == 1 and self.device.type == "cuda":
                    from .gpu import point_backward

                    trace, final = point_backward.run_with_gradients(block, local, self.dt, injected[rows], self.celsius,
                                                                     self.method)
                elif block.size == 1:
                    trace, final = gradient_kernel.run_with_gradients(block, local, self.dt, injected[rows], self.celsius,
                                                                      self.method, threads=self.threads)
                    at_spike_node = torch.cat([local["v"][..., 0].unsqueeze(0), trace])
                else:
                    every_node, final = cable_gradient.run_with_gradients(
                        block, local, self.dt, injected.reshape(len(injected), *local["v"].shape), self.celsius,
                        self.method, rows, threads=self.threads)
                    at_spike_node = every_node[:, :, block.spike_node].permute(2, 0, 1)
                    trace = every_node[..., 1:].permute(3, 0, 1, 2)
                state.update({f"{name}/{key}": value for key, value in final.items()})
                if not self.record_spike_trains:  # spikes then leave as events only, which carry no gradient
                    at_spike_node = at_spike_node.detach()
                before, after, threshold = at_spike_node[:-1], at_spike_node[1:], block.population.threshold
                records[name] = (threshold_crossing(before, after, threshold, self.surrogate_beta),
                                 crossing_fraction(before.detach(), after.detach(), threshold), trace)
            return self._chunk_outputs(keys, state, records, start, stop)

        return run

    def _chunk_outputs(self, keys, state, records, start, stop):
        """A compiled chunk's outputs in ``_chunk``'s order, from ``records``: per population (spikes,
        crossing fractions, v after every step: (steps, B, cells) for point cells, (steps, B, cells,
        nodes) otherwise, or None when nothing probes it)."""
        out = [state[key] for key in keys]
        for probe, block, cells, node in self._probe_sites:
            taken = [k for k in range(stop - start) if (start + k + 1) % probe.every == 0]
            trace = records[probe.population][2][taken][:, :, cells]
            if block.size == 1:
                trace = trace.permute(1, 2, 0)
                out.append(trace.unsqueeze(2) if probe.nodes == "all" else trace)
            else:
                out.append(trace[..., node].movedim(0, -1))
        for name in self._blocks:
            out += list(records[name][:2])
        return tuple(out)

    def _can_run_gradient_kernels(self):
        """Whether a differentiable run can go through the generated gradient kernels: populations
        without synapses, spike sources or voltage clamps, every cell one the kernels support (scalar
        parameters), voltage probes only; on the CPU (numba) any cell, on a CUDA device (Triton) point
        cells."""
        if self._projections or self._sources:
            return False
        if self.device.type == "cuda":
            if importlib.util.find_spec("triton") is None or any(block.size != 1 for block in self._blocks.values()):
                return False
            from .gpu import point_backward as point_kernels
        elif self.device.type == "cpu":
            point_kernels = gradient_kernel
        else:
            return False
        for block in self._blocks.values():
            kernels = point_kernels if block.size == 1 else cable_gradient
            if block.clamps or not kernels.supports(block, self.celsius, self.method, self.dt):
                return False
        return all(probe.variable == "v" for probe, _, _, _ in self._probe_sites)

    def _chunk_injections(self, block, start, stop):
        """The current injected (nA) into a block's nodes over steps start..stop-1 as the values it
        holds and which one each step takes: (values (U, B, nodes), rows (steps,) int64). Stimuli hold
        still for many steps, so a chunk usually needs a few rows instead of one per step."""
        nodes = block.population.n * block.size
        if not block.injections:
            return (torch.zeros((1, self.batch, nodes), dtype=self.dtype, device=self.device),
                    torch.zeros(stop - start, dtype=torch.int64, device=self.device))
        indices = torch.stack([index[start:stop] for _, _, index in block.injections], 1)
        changes = (indices[1:] != indices[:-1]).any(1)
        rows = torch.cat([changes.new_zeros(1), changes]).cumsum(0)
        keys = indices[torch.cat([changes.new_ones(1), changes])]
        values = torch.zeros((len(keys), self.batch, nodes), dtype=self.dtype, device=self.device)
        for k, (flat, table, _) in enumerate(block.injections):
            values = values.index_add(2, flat, table[keys[:, k]].expand(len(keys), self.batch, len(flat)))
        return values, rows

    def _can_run_whole_chunks(self, grad):
        """Whether every population can be advanced a whole chunk per compiled call: no gradients,
        no clamps, synapses the network kernel supports (between one-compartment populations),
        compiled kernels everywhere, voltage probes only. On a CUDA device: what the Triton kernels run."""
        if self.device.type == "cuda":
            if grad or not self.compiled or importlib.util.find_spec("triton") is None:
                return False
            from .gpu.network import supports as triton_supports

            return triton_supports(self)
        point_cells_only = all(block.size == 1 for block in self._blocks.values())
        return (not grad and self.compiled and all(supports_entry(entry) for entry in self._projections)
                and (point_cells_only or not self._projections)
                and all(block.kernel is not None and not block.clamps for block in self._blocks.values())
                and all(probe.variable == "v" for probe, _, _, _ in self._probe_sites))

    def _forward(self, keys, values, n_steps, chunk, progress, boundaries=None):
        """Run every chunk; returns (final state + concatenated records, per-chunk record sizes)."""
        monitor = getattr(self, "_monitor", None)
        dims = self._record_dims()
        records, sizes = [[] for _ in dims], []
        self._event_parts = {name: [] for name in self._blocks}
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=n_steps, unit="step", desc="simulating", leave=False)
        try:
            for start in range(0, n_steps, chunk):
                stop = min(n_steps, start + chunk)
                if boundaries is not None:
                    boundaries.append(values)
                out = self._chunk(keys, start, stop)(*values)
                values = list(out[: len(keys)])
                chunk_records = out[len(keys):]
                first_spikes = len(self._probe_sites)
                for k, name in enumerate(self._blocks):
                    train, fraction = chunk_records[first_spikes + 2 * k], chunk_records[first_spikes + 2 * k + 1]
                    self._event_parts[name].append(self._events(train.detach(), fraction.detach(), start))
                kept = self._kept(chunk_records)
                sizes.append([part.shape[dim] for part, dim in zip(kept, dims)])
                for sink, part in zip(records, kept):
                    sink.append(part)
                self._check_finite(dict(zip(keys, values)), start, stop)
                if bar is not None:
                    bar.update(stop - start)
                if monitor is not None:
                    self._report(monitor, start, stop, n_steps, chunk_records)
        finally:
            if bar is not None:
                bar.close()
        return tuple(values) + tuple(torch.cat(parts, dim) for parts, dim in zip(records, dims)), sizes

    def run(self, duration, progress=False, monitor=None, chunk_steps=None):
        """Simulate ``duration`` ms and return a Result.

        ``monitor``, if given, is called after every chunk of ``chunk_steps`` steps with a
        ``ChunkReport`` (what the chunk recorded, its spikes, how far the run is); it may block
        (to pause) or raise ``RunCancelled`` (to stop). Live views use it; gradients are unaffected.
        """
        # Each run works on its own copy of the set-up, so a graph from an earlier run that is
        # backpropagated later still recomputes with the set-up it was run with.
        run = copy.copy(self)
        run._monitor = monitor
        if chunk_steps is not None:
            if int(chunk_steps) != chunk_steps or chunk_steps < 1:
                raise ModelError(f"chunk_steps must be a positive integer number of steps, got {chunk_steps!r}")
            run.checkpoint_every = int(chunk_steps)
        result = run._run(duration, progress)
        self.final_state = run.final_state
        return result

    def _run(self, duration, progress):
        if not (duration > 0 and math.isfinite(duration)):
            raise ModelError(f"duration must be a positive number of ms, got {duration!r}")
        n_steps = int(round(duration / self.dt))
        if n_steps < 1:
            raise ModelError(f"duration {duration} ms is shorter than one step (dt = {self.dt} ms)")
        started = time.perf_counter()
        self._prepare(n_steps)
        state = self._initial_state()
        keys = list(state)
        values = [state[k] for k in keys]
        parameters = self._parameters()
        grad = torch.is_grad_enabled() and any(t.requires_grad for t in values + parameters)
        self._gradient_kernels = grad and self.compiled and self._can_run_gradient_kernels()
        # The gradient kernels checkpoint inside one call; the tensor path recomputes chunk by chunk.
        chunk = self.checkpoint_every or (n_steps if self._gradient_kernels else
                                          max(1, int(math.sqrt(n_steps))) if grad else 500)
        for block in self._blocks.values():
            block.kernel = None
            if not grad and self.compiled:
                block.use_compiled(self.celsius, self.method, self.dt)
        self._whole_chunks = self._can_run_whole_chunks(grad)
        threads_before = torch.get_num_threads()
        torch.set_num_threads(self.threads or _threads_for(state))
        try:
            if grad and self.checkpoint and not self._gradient_kernels:
                flat = _Recompute.apply(self, keys, n_steps, chunk, progress, *values, *parameters)
            else:
                with torch.enable_grad() if grad else torch.no_grad():
                    flat, _ = self._forward(keys, values, n_steps, chunk, progress)
        finally:
            torch.set_num_threads(threads_before)
        self.final_state = dict(zip(keys, flat[: len(keys)]))
        records = list(flat[len(keys):])
        traces, times = {}, {}
        for probe, _, cells, node in self._probe_sites:
            first = state[f"{probe.population}/{probe.variable}"][:, cells, node].unsqueeze(-1)
            traces[probe.name] = torch.cat([first, records.pop(0)], -1)
            times[probe.name] = torch.arange(traces[probe.name].shape[-1], dtype=torch.float64) * self.dt * probe.every
        spikes, trains = {}, {}
        for name, block in self._blocks.items():
            parts = self._event_parts[name]
            events = [np.concatenate([part[k] for part in parts]) for k in range(3)]
            spikes[name] = SpikeRecord(*events, block.population.n, n_steps * self.dt)
            if self.record_spike_trains:
                trains[name] = records.pop(0)
        clamps = {stim.name: records.pop(0) for stim in self.stimuli if isinstance(stim, VClamp)}
        variables = {probe.name: probe.variable for probe in self.probes}
        return Result(self.dt, n_steps * self.dt, self.batch, times, traces, variables, spikes, trains, clamps,
                      time.perf_counter() - started)

    def _report(self, monitor, start, stop, n_steps, chunk_records):
        traces = {probe.name: records.detach() for (probe, _, _, _), records in zip(self._probe_sites, chunk_records)}
        spikes = {name: self._event_parts[name][-1] for name in self._blocks}
        every = {probe.name: probe.every for probe in self.probes}
        monitor(ChunkReport(start, stop, n_steps, self.dt, traces, every, spikes))

    def _events(self, train, fraction, start):
        """Spike times (ms), cells and batch indices of a chunk's (steps, B, cells) spike train."""
        step, batch, cell = torch.nonzero(train, as_tuple=True)
        offset = fraction[step, batch, cell].double()
        return ((start + step.double() + offset) * self.dt).cpu().numpy(), cell.cpu().numpy(), batch.cpu().numpy()

    def _parameters(self):
        """Every tensor the step reads that may carry a gradient (besides the state), so that the
        recomputing backward pass can return their gradients."""
        tensors = []
        for block in self._blocks.values():
            tensors += [block.capacitance, block.axial, block.axial_sum]
            for channel, density, reversal in block.channels:
                tensors += [density, reversal, channel.q10, channel.temperature]
                for gate in channel.gates:
                    for curve in gate.kinetics().values():
                        tensors += list(curve.parameters().values())
            tensors += [table for _, table, _ in block.injections]
            tensors += [t for _, _, command, conductance in block.clamps for t in (command, conductance)]
        for entry in self._projections:
            # The per-delay weights, not the projection's: inputs must not lie upstream of one
            # another, or the first chunk's backward would free the graph the next one needs.
            tensors += [connections.weights for _, groups in entry["arrivals"] for _, connections in groups]
            tensors += list(vars(entry["synapse"]).values())
        unique = {id(t): t for t in tensors if torch.is_tensor(t) and t.requires_grad}
        return list(unique.values())

    def _check_finite(self, state, start, stop):
        for name, block in self._blocks.items():
            v = state[f"{name}/v"].detach()
            bad = ~torch.isfinite(v) | (v.abs() > 1e4)
            if bad.any():
                raise SimulationUnstableError(
                    f"population {name!r}: membrane voltage became {'NaN/inf' if not torch.isfinite(v).all() else 'larger than 10 V'} "
                    f"between t = {start * self.dt:g} and {stop * self.dt:g} ms (dt = {self.dt} ms). "
                    f"Fix: use a smaller dt (e.g. {self.dt / 4:g} ms) or check conductances, weights and stimulus amplitudes."
                )


class RunCancelled(Exception):
    """Raised by a monitor to end a run early; ``Simulation.run`` lets it propagate to the caller."""


class ChunkReport:
    """What one chunk of a monitored run produced.

    Steps ``start``..``stop``-1 of ``n_steps`` at ``dt`` ms are done. ``traces[probe]``: the
    chunk's samples (B, cells, samples) of each probe, taken every ``every[probe]`` steps;
    ``spikes[population]``: (times ms, cells, batch indices) as NumPy arrays.
    """

    def __init__(self, start, stop, n_steps, dt, traces, every, spikes):
        self.start, self.stop, self.n_steps, self.dt = start, stop, n_steps, dt
        self.traces, self.every, self.spikes = traces, every, spikes

    @property
    def time(self):
        """Simulated time reached (ms)."""
        return self.stop * self.dt

    @property
    def fraction_done(self):
        return self.stop / self.n_steps


def _merge_key(projection):
    """Projections onto the same sites of the same post population with equal, fixed synapse kinetics
    can share one synaptic state, since the kinetics are linear: the summed conductance is the
    conductance of the summed inputs. None when the kinetics carry tensors (learnable time constants)."""
    synapse = projection.synapse
    if any(torch.is_tensor(value) for value in vars(synapse).values()):
        return None
    return (projection.post, type(synapse), tuple(sorted(synapse.to_dict().items())), tuple(projection.site_nodes))


def _threads_for(state):
    """Intra-op threads for this run's state size.

    The per-step tensors are small; below ~10⁵ elements per tensor, waking OpenMP threads for
    every elementwise op costs more than it saves (and on a loaded 2-core machine it costs
    milliseconds per op), so small models run on one thread.
    """
    largest = max(value.numel() for value in state.values())
    return 1 if largest < 100_000 else torch.get_num_threads()


def simulate(model, duration, **kwargs):
    """Shorthand: ``Simulation(model, **kwargs).run(duration)``."""
    progress = kwargs.pop("progress", False)
    return Simulation(model, **kwargs).run(duration, progress=progress)


class _Recompute(torch.autograd.Function):
    """Backpropagation through time with recomputation.

    Forward runs without a graph and keeps only the state at the start of every chunk.
    Backward walks the chunks in reverse: it re-runs one chunk from its saved state with a
    graph, backpropagates the incoming gradients through it, and hands the gradient of the
    chunk's initial state to the previous chunk. Peak memory is the saved states plus one
    chunk's graph. Parameter gradients are accumulated over the chunks.
    """

    @staticmethod
    def forward(ctx, sim, keys, n_steps, chunk, progress, *tensors):
        boundaries = []
        with torch.no_grad():
            flat, sizes = sim._forward(keys, list(tensors[: len(keys)]), n_steps, chunk, progress, boundaries)
        ctx.sim, ctx.keys, ctx.n_steps, ctx.chunk, ctx.sizes, ctx.boundaries = sim, keys, n_steps, chunk, sizes, boundaries
        ctx.save_for_backward(*tensors[len(keys):])
        ctx.set_materialize_grads(False)
        return flat

    @staticmethod
    def backward(ctx, *grads):
        sim, keys, chunk = ctx.sim, ctx.keys, ctx.chunk
        parameters = ctx.saved_tensors
        n_state = len(keys)
        dims = sim._record_dims()
        grad_state = list(grads[:n_state])
        record_grads = grads[n_state:]
        offsets = [0] * len(dims)
        bounds = []
        for sizes in ctx.sizes:
            bounds.append([(offset, offset + size) for offset, size in zip(offsets, sizes)])
            offsets = [offset + size for offset, size in zip(offsets, sizes)]
        parameter_grads = [None] * len(parameters)
        threads_before = torch.get_num_threads()
        torch.set_num_threads(sim.threads or _threads_for(dict(zip(keys, ctx.boundaries[0]))))
        try:
            for index in reversed(range(len(ctx.boundaries))):
                start = index * chunk
                stop = min(ctx.n_steps, start + chunk)
                inputs = [value.detach().requires_grad_(True) for value in ctx.boundaries[index]]
                with torch.enable_grad():
                    out = sim._chunk(keys, start, stop)(*inputs)
                outputs, output_grads = [], []
                for value, grad in zip(out[:n_state], grad_state):
                    if grad is not None and value.requires_grad:
                        outputs.append(value)
                        output_grads.append(grad)
                for value, grad, dim, (lo, hi) in zip(sim._kept(out[n_state:]), record_grads, dims, bounds[index]):
                    if grad is not None and value.requires_grad and hi > lo:
                        outputs.append(value)
                        output_grads.append(grad.narrow(dim if dim >= 0 else grad.dim() + dim, lo, hi - lo))
                if not outputs:
                    grad_state = [None] * n_state
                    continue
                result = torch.autograd.grad(outputs, inputs + list(parameters), output_grads, allow_unused=True)
                grad_state = list(result[:n_state])
                for k, grad in enumerate(result[n_state:]):
                    if grad is not None:
                        parameter_grads[k] = grad if parameter_grads[k] is None else parameter_grads[k] + grad
        finally:
            torch.set_num_threads(threads_before)
        return (None, None, None, None, None, *grad_state, *parameter_grads)
