"""Quantization: a BrainFuse model of one-compartment HH populations → a fixed-point deployment artifact.

``quantize(model, duration, stimuli, probes, ...)`` reads the float model the way the simulator
does (``solvers/membrane.CompiledCell``: channel densities, reversals, capacitance) and evaluates
the channels' own curves (``Channel.curves``, at the run's temperature) on the voltage grid of the
tables, so the channel definitions stay the one source of the kinetics. The arithmetic and its
Q-formats are those of ``fixed_point.py``; weights go through ``weights.quantize_weights``.

What maps to the chip: populations of one-compartment cells whose gates depend on voltage only;
exponential synapses (one receptor per distinct τ and reversal on a population, starting from the
projections' initial conductances); projections as
dense mantissa matrices delivered one chip step after the spike (Lava's Dense); current clamps,
evaluated per substep from the stimulus itself and stored as a piecewise-constant schedule.
Anything else is refused with a ModelError that says so.
"""

import math

import numpy as np
import torch

from ..errors import ModelError
from ..networks import ExpSynapse, Network
from ..recording import Probe
from ..solvers.membrane import CompiledCell
from ..stimuli import CURRENT_CLAMPS
from .artifact import Artifact
from .fixed_point import Formats, to_fixed
from .weights import quantize_weights

MAX_DENSE_BITS = 8


def quantize(model, duration, stimuli=(), probes=None, dt=0.025, substeps=4, celsius=6.3, formats=None, weight_bits=8):
    """The deployment artifact of ``model`` (a Cell or a Network) for a run of ``duration`` ms.

    ``dt`` (ms) is the substep, the float model's time step; a chip step is ``substeps`` substeps.
    ``probes`` are ``bf.Probe`` objects of "v" or a gate ("hh_na.m"); by default V of cell 0 of the
    first population. ``weight_bits`` (≤ 8, Loihi's synapse) sets the weight mantissas."""
    formats = formats or Formats()
    if not (isinstance(dt, (int, float)) and dt > 0):
        raise ModelError(f"dt must be a positive number of ms, got {dt!r}")
    if int(substeps) != substeps or substeps < 1:
        raise ModelError(f"substeps must be a positive integer, got {substeps!r}")
    if not 2 <= weight_bits <= MAX_DENSE_BITS:
        raise ModelError(f"weight_bits must lie in 2..{MAX_DENSE_BITS} (Loihi's synaptic weights), got {weight_bits!r}")
    chip_dt = dt * substeps
    steps = int(round(duration / chip_dt))
    if steps < 1:
        raise ModelError(f"duration {duration} ms is shorter than one chip step ({chip_dt} ms)")
    net = Network.of(model).build()
    names = list(net.populations)
    for name, pop in net.populations.items():
        _check_population(name, pop)
    for stim in stimuli:
        if stim.population not in net.populations:
            raise ModelError(f"stimulus {stim.name}: no population {stim.population!r}; populations are {', '.join(names)}")
    receptors = _receptors(net)
    manifest = {
        "dt": float(dt), "substeps": int(substeps), "chip_dt": float(chip_dt), "steps": steps, "celsius": float(celsius),
        "formats": formats.to_dict(), "format_notes": formats.describe(), "weight_bits": int(weight_bits), "populations": [], "projections": [], "probes": [],
    }
    arrays = {}
    blocks = {}
    for index, name in enumerate(names):
        pop = net.populations[name]
        block = CompiledCell(pop.cell, torch.float64, "cpu")
        blocks[name] = block
        entry, pop_arrays = _population(index, name, pop, block, receptors[name], formats, dt, celsius)
        current = _currents(name, pop, block, stimuli, steps * substeps, dt)
        entry["current_max_na"] = float(np.abs(current).max(initial=0.0))
        starts, drive = _schedule(current * dt / float(block.capacitance[0]))
        pop_arrays.update({"current_starts": starts, "current_values": to_fixed(drive, formats.v_frac), "current_values_float": drive})
        syn0 = _initial_conductances(net, name, receptors[name], block, dt)
        pop_arrays.update({"syn0": to_fixed(syn0, formats.g_frac, 32), "syn0_float": syn0})
        manifest["populations"].append(entry)
        arrays.update({f"{entry['key']}_{key}": value for key, value in pop_arrays.items()})
    for k, proj in enumerate(net.projections):
        entry, proj_arrays = _projection(k, proj, names, net, blocks, receptors, formats, dt, weight_bits)
        manifest["projections"].append(entry)
        arrays.update({f"{entry['key']}_{key}": value for key, value in proj_arrays.items()})
    for probe in (probes if probes is not None else [Probe(names[0], "v", cells=[0])]):
        manifest["probes"].append(_probe(probe, names, manifest["populations"]))
    return Artifact(manifest, arrays)


def _check_population(name, pop):
    if pop.is_source:
        raise ModelError(f"population {name!r}: spike sources are not deployed to the chip yet; "
                         "drive the network with current clamps instead")
    cell = pop.cell
    if cell.layout.size != 1:
        raise ModelError(f"population {name!r}: the chip runs one-compartment cells; this cell has {cell.layout.size} "
                         "compartments (build it with bf.Cell.point)")
    if cell.pools or any(ch.uses_calcium for ch in cell.channels.values()):
        raise ModelError(f"population {name!r}: calcium-dependent gates and calcium pools are not deployed to the chip yet")
    for channel in cell.channels.values():
        if torch.is_tensor(channel.gbar) and channel.gbar.numel() > 1:
            raise ModelError(f"population {name!r}, channel {channel.name}: batched gbar; deploy one parameter set")


def _receptors(net):
    """Per post population: the distinct (τ ms, reversal mV) of the synapses onto it, in order of appearance."""
    receptors = {name: [] for name in net.populations}
    for proj in net.projections:
        if not isinstance(proj.synapse, ExpSynapse):
            raise ModelError(f"projection {proj.name}: only exponential synapses (bf.ExpSynapse) are deployed to the chip yet, "
                             f"got {proj.synapse.kind}")
        key = (float(proj.synapse.tau), float(proj.synapse.e_rev))
        if key not in receptors[proj.post]:
            receptors[proj.post].append(key)
    return receptors


def _population(index, name, pop, block, receptors, fmt, dt, celsius):
    capacitance = float(block.capacitance[0])
    area_factor = float(block.area_factor[0])
    v_table = torch.as_tensor(fmt.table_voltages(), dtype=torch.float64)
    v0 = pop.initial_voltage(1, torch.float64, "cpu").reshape(-1)
    channels, gate_names, inf_rows, tau_rows, gates0 = [], [], [], [], []
    for channel, density, reversal in block.channels:
        g_us = float(torch.as_tensor(density, dtype=torch.float64).reshape(-1)[0]) * area_factor
        gate_ids = []
        table = channel.curves(v_table, celsius)
        start = channel.curves(v0, celsius)
        for gate in channel.gates:
            gate_ids.append(len(gate_names))
            gate_names.append(f"{channel.name}.{gate.name}")
            inf_rows.append(_finite(table[gate.name]["inf"].detach().numpy(), f"{channel.name}.{gate.name} x∞"))
            tau_rows.append(_finite(table[gate.name]["tau"].detach().numpy(), f"{channel.name}.{gate.name} τ"))
            gates0.append(start[gate.name]["inf"].detach().numpy())
        e_rev = float(torch.as_tensor(reversal, dtype=torch.float64))
        channels.append({
            "name": channel.name, "gates": gate_ids, "powers": [g.power for g in channel.gates],
            "gbar": int(to_fixed(g_us * dt / capacitance, fmt.g_frac)), "e_rev": int(to_fixed(e_rev, fmt.v_frac)),
            "g_us": g_us, "e_rev_mv": e_rev,
        })
    inf = np.clip(np.array(inf_rows, dtype=np.float64).reshape(len(gate_names), len(v_table)), 0.0, 1.0)
    tau = np.array(tau_rows, dtype=np.float64).reshape(len(gate_names), len(v_table))
    if np.any(tau <= 0):
        raise ModelError(f"population {name!r}: a gate's τ is not positive on the table's voltage range")
    decay = np.exp(-dt / tau)
    gates0 = np.clip(np.array(gates0, dtype=np.float64).reshape(len(gate_names), pop.n), 0.0, 1.0)
    entry = {
        "key": f"pop{index}", "name": name, "n": pop.n, "capacitance_nf": capacitance, "area_um2": float(block.area[0]),
        "threshold": int(to_fixed(pop.threshold, fmt.v_frac)), "threshold_mv": float(pop.threshold),
        "channels": channels, "gates": gate_names,
        "receptors": [{"tau_ms": tau_s, "e_rev_mv": e, "e_rev": int(to_fixed(e, fmt.v_frac)),
                       "decay": int(to_fixed(math.exp(-dt / tau_s), fmt.decay_frac))} for tau_s, e in receptors],
    }
    arrays = {
        "inf": to_fixed(inf, fmt.gate_frac), "decay": np.clip(to_fixed(decay, fmt.decay_frac), 0, 2 ** fmt.decay_frac),
        "inf_float": inf, "decay_float": decay,
        "v0": to_fixed(v0.numpy(), fmt.v_frac, fmt.v_bits), "v0_float": v0.numpy(),
        "gates0": to_fixed(gates0, fmt.gate_frac), "gates0_float": gates0,
    }
    return entry, arrays


def _finite(values, what):
    """Curves can overflow at the far ends of the table's voltage range; there the nearest finite value stands in."""
    good = np.isfinite(values)
    if not good.any():
        raise ModelError(f"{what} is not finite anywhere on the table's voltage range")
    if good.all():
        return values
    index = np.arange(len(values))
    return np.interp(index, index[good], values[good])


def _currents(name, pop, block, stimuli, n_substeps, dt):
    """(substeps, cells) injected current (nA) of every cell, from each clamp's own table at substep midpoints."""
    current = np.zeros((n_substeps, pop.n))
    t_mid = (torch.arange(n_substeps, dtype=torch.float64) + 0.5) * dt
    for stim in stimuli:
        if stim.population != name:
            continue
        if not isinstance(stim, CURRENT_CLAMPS):
            raise ModelError(f"stimulus {stim.name}: only current clamps are deployed to the chip, got {type(stim).__name__}")
        cells, node = stim.sites(pop)
        table, index = stim.table(t_mid, 1, len(cells))
        values = (table[index] * stim.scale(pop, node)).detach().numpy()
        if values.shape[1] != 1:
            raise ModelError(f"stimulus {stim.name}: batched amplitudes; deploy one stimulus per run")
        current[:, cells] += np.broadcast_to(values[:, 0, :], (n_substeps, len(cells)))
    return current


def _schedule(table):
    """Piecewise-constant form of a (substeps, cells) table: the substeps where any value changes, and the rows there."""
    changes = np.flatnonzero(np.any(table[1:] != table[:-1], axis=1)) + 1
    starts = np.concatenate([[0], changes]).astype(np.int64)
    return starts, table[starts]


def _initial_conductances(net, name, receptors, block, dt):
    """(receptors, cells) synaptic G = g·dt/C at t = 0: the projections' initial conductances (µS), summed per receptor."""
    n = net.populations[name].n
    syn0 = np.zeros((len(receptors), n))
    for proj in net.projections:
        if proj.post == name and proj.initial_conductance is not None:
            receptor = receptors.index((float(proj.synapse.tau), float(proj.synapse.e_rev)))
            g_us = np.broadcast_to(np.asarray(torch.as_tensor(proj.initial_conductance, dtype=torch.float64).detach()), (n,))
            syn0[receptor] += g_us * dt / float(block.capacitance[0])
    return syn0


def _projection(k, proj, names, net, blocks, receptors, fmt, dt, weight_bits):
    post = blocks[proj.post]
    n_pre, n_post = net.populations[proj.pre].n, net.populations[proj.post].n
    weights_us = np.zeros((n_post, n_pre))
    np.add.at(weights_us, (proj.post_index.numpy(), proj.pre_index.numpy()), proj.weights.detach().double().numpy())
    # The synaptic state holds G = g·dt/C of the post cell in Q.g_frac: one LSB is this many µS.
    lsb_us = float(post.capacitance[0]) / dt / 2 ** fmt.g_frac
    quantized = quantize_weights(weights_us, weight_bits, lsb_us)
    delays = proj.delay_steps(dt).numpy() * dt if proj.n_connections else np.zeros(0)
    entry = {
        "key": f"proj{k}", "name": proj.name, "pre": names.index(proj.pre), "post": names.index(proj.post),
        "receptor": receptors[proj.post].index((float(proj.synapse.tau), float(proj.synapse.e_rev))),
        "exponent": quantized.exponent, "bits": quantized.bits, "sign_mode": quantized.sign_mode,
        "lsb_us": lsb_us, "weight_error_us": quantized.report(),
        "float_delay_ms": sorted(set(np.round(delays, 9).tolist())),
    }
    return entry, {"mantissa": quantized.mantissa, "weights_us": weights_us}


def _probe(probe, names, populations):
    if probe.population not in names:
        raise ModelError(f"probe {probe.name}: no population {probe.population!r}; populations are {', '.join(names)}")
    index = names.index(probe.population)
    pop = populations[index]
    if probe.variable == "v":
        row = None
    elif probe.variable in pop["gates"]:
        row = pop["gates"].index(probe.variable)
    else:
        raise ModelError(f"probe {probe.name}: the chip records v or a gate ({', '.join(pop['gates']) or 'none'}), "
                         f"not {probe.variable!r}")
    cells = list(range(pop["n"])) if probe.cells is None else [int(c) for c in probe.cells]
    if any(not 0 <= c < pop["n"] for c in cells):
        raise ModelError(f"probe {probe.name}: cell indices must lie in 0..{pop['n'] - 1}")
    return {"name": probe.name, "population": index, "variable": probe.variable, "gate": row, "cells": cells}
