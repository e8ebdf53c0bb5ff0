"""The CPU fast path for cells of many compartments: whole chunks of steps of a block of cells of
one morphology in one compiled call, generated from the channel definitions.

Per step and cell, as ``CompiledCell.step`` does it: every node's ionic conductance and current
(``step_source.node_currents``, the statements of the point kernels with the node's density and
area), the axial currents, the tree (Hines) solve for the voltage change, then every node's
pools and gates from the new voltage (``step_source.pools_and_gates``). Cells are independent,
so they are split over threads. Numbers of the channels' curves are run-time parameters as in
``compiled.py``; per-node densities, areas and capacitances are arrays.
"""

import math
import os

import numpy as np
import torch

from ..channels.curves import NotCompilable
import ast

from . import generated
from .compiled import _NAMESPACE, FUNCTIONS, _Literals, _Parameters, split_cells
from .step_source import node_currents, pools_and_gates, step_dt, voltage_update

def cable_kernel(block, celsius, method, dt):
    """Compiled steps for ``block`` (a CompiledCell of several nodes) at ``dt`` ms, or None when
    something in it cannot be compiled (batched parameters, a calcium pool on part of the cell)."""
    if block.size == 1:
        return None
    parameters = _Parameters()
    density = lambda c, values: _per_node(values, block.size, c)
    try:
        currents = _in_precision(node_currents(block, parameters, density, lambda: "area_factor[n]", synaptic=True), parameters)
        implicit_step = parameters(step_dt(method, dt))
        update_v = _in_precision([voltage_update(method)], parameters)
        updates = _in_precision(pools_and_gates(block, celsius, dt, parameters, FUNCTIONS), parameters)
    except NotCompilable:
        return None
    source = _source(len(block.state_names()), parameters.prologue(), currents, implicit_step, update_v, updates,
                     block.uses_calcium)
    steps = generated.load(source, dict(_NAMESPACE, np=np)).cable_steps
    return CableKernel(steps, block, dt, parameters.values)


def _in_precision(lines, parameters):
    """Number literals become parameters too, so a float32 cell computes in float32 (as ``compiled.py``)."""
    literals = _Literals(parameters)
    return [ast.unparse(literals.visit(ast.parse(line))) for line in lines]


def _per_node(values, size, c):
    if values.dim() != 1 or values.numel() != size:
        raise NotCompilable("a batched conductance density")
    return f"densities[{c}, n]"


class CableKernel:
    """``__call__``: one step (the contract of ``CompiledCell.step``); ``run``: a chunk of steps of
    cells without synaptic input, spikes detected at ``spike_node``."""

    def __init__(self, steps, block, dt, parameters):
        self.steps = steps
        self.state_names = block.state_names()
        self.dt = dt
        as_array = lambda tensor: np.ascontiguousarray(tensor.detach().cpu().numpy(), dtype=np.float64)
        self.parameters = np.array(parameters, dtype=np.float64)
        self.densities = np.stack([as_array(values) for _, values, _ in block.channels]) if block.channels \
            else np.zeros((0, block.size))
        self.area_factor = as_array(block.area_factor)
        self.capacitance = as_array(block.capacitance)
        self.axial = as_array(block.axial)
        self.axial_sum = as_array(block.axial_sum)
        self.parent = np.ascontiguousarray(np.maximum(block.parent, 0), dtype=np.int64)

    def _check_dt(self, dt):
        if dt != self.dt:
            raise ValueError(f"this kernel was generated for dt = {self.dt} ms, not {dt} ms; call use_compiled again")

    def _call(self, flat, injected, rows, linear_g, linear_ge, spike_node, threshold, spikes, fraction, trace, threads=None):
        """Cells are independent: ``threads`` threads (default: one per core) each take a range of them.
        Python threads around a serial kernel (it releases the GIL) instead of numba's parallel loops,
        whose compilation costs more than the kernel's own for these large bodies."""
        dtype = flat[0].dtype
        constants = [array.astype(dtype) for array in (self.densities, self.area_factor, self.capacitance, self.axial,
                                                       self.axial_sum)]
        arguments = (*flat, injected, rows, linear_g, linear_ge, *constants, self.parent, self.parameters.astype(dtype),
                     spike_node, dtype.type(threshold), spikes, fraction, trace)
        split_cells(lambda first, last: self.steps(*arguments, first, last), flat[0].shape[0], threads or os.cpu_count() or 1)

    def __call__(self, state, dt, injected, linear_g, linear_ge):
        """One step of every cell; ``injected``, ``linear_g`` (µS), ``linear_ge`` (nA) broadcast to (B, C, N)."""
        self._check_dt(dt)
        shape = state["v"].shape
        cells = shape[0] * shape[1]
        new = [state[name].detach().reshape(cells, shape[2]).numpy().copy() for name in self.state_names]
        dtype = new[0].dtype
        inputs = [np.ascontiguousarray(np.broadcast_to(
            np.asarray(value.detach().numpy() if torch.is_tensor(value) else value, dtype=dtype), shape).reshape(cells, shape[2]))
            for value in (injected, linear_g, linear_ge)]
        empty = np.zeros((1, cells), dtype=dtype)
        self._call(new, inputs[0][None], np.zeros(1, dtype=np.int64), inputs[1], inputs[2], 0, math.inf, empty,
                   empty.copy(), np.empty((0, cells, shape[2]), dtype=dtype))
        return {name: torch.from_numpy(value).reshape(shape) for name, value in zip(self.state_names, new)}

    def run(self, state, dt, injected, rows, spike_node, threshold, record_v, threads=None):
        """K = len(rows) steps; step k takes the injected currents ``injected[rows[k]]`` ((U, B, C·N) nA:
        currents hold still for many steps, so a chunk needs a few rows, not one per step). Returns the
        new state, spikes (K, B, C) 0/1 at ``spike_node``, crossing fractions (K, B, C), and v at every
        node after every step (K, B, C, N) mV when ``record_v``."""
        self._check_dt(dt)
        shape = state["v"].shape
        cells, steps = shape[0] * shape[1], len(rows)
        new = [state[name].detach().reshape(cells, shape[2]).numpy().copy() for name in self.state_names]
        dtype = new[0].dtype
        spikes = np.zeros((steps, cells), dtype=dtype)
        fraction = np.zeros_like(spikes)
        trace = np.empty((steps if record_v else 0, cells, shape[2]), dtype=dtype)
        current = np.ascontiguousarray(injected.detach().reshape(len(injected), cells, shape[2]).numpy(), dtype=dtype)
        no_synapses = np.zeros((cells, shape[2]), dtype=dtype)
        self._call(new, current, np.ascontiguousarray(torch.as_tensor(rows).numpy(), dtype=np.int64), no_synapses,
                   no_synapses, spike_node, threshold, spikes, fraction, trace, threads)
        as_steps = lambda array: torch.from_numpy(array).reshape(steps, *shape[:2], *array.shape[2:])
        return ({name: torch.from_numpy(value).reshape(shape) for name, value in zip(self.state_names, new)},
                as_steps(spikes), as_steps(fraction), as_steps(trace) if record_v else None)


def _source(n_states, prologue, currents, implicit_step, update_v, updates, uses_calcium):
    """The chunk function: per cell of first..last-1, per step: node currents, axial currents, tree solve,
    node updates. With calcium, the second pass recomputes the node currents the pools need."""
    states = range(n_states)
    load = [f"s{k} = a{k}[m, n]" for k in states]
    indent = lambda lines, pad: [" " * pad + line for line in lines]
    second_pass = [*load, *(currents if uses_calcium else []), "dv = rhs[n]", *update_v, *updates,
                   *[f"a{k}[m, n] = new_s{k}" for k in states]]
    lines = [
        '@numba.njit(nogil=True, error_model="numpy", cache=True)',
        f"def cable_steps({', '.join(f'a{k}' for k in states)}, injected, rows, linear_g, linear_ge, densities, area_factor, "
        "capacitance, axial, axial_sum, parent, params, spike_node, threshold, spikes, fraction, trace, first, last):",
        *prologue,
        "    n_nodes = a0.shape[1]",
        "    for m in range(first, last):",
        "        diag = np.empty(n_nodes, dtype=a0.dtype)",
        "        rhs = np.empty(n_nodes, dtype=a0.dtype)",
        "        for step in range(rows.shape[0]):",
        "            for n in range(n_nodes):",
        *indent(load, 16),
        "                inj, lin_g, lin_ge = injected[rows[step], m, n], linear_g[m, n], linear_ge[m, n]",
        *indent(currents, 16),
        f"                diag[n] = capacitance[n] / {implicit_step} + membrane_g + axial_sum[n]",
        "                rhs[n] = inj - membrane_i",
        "            for n in range(1, n_nodes):",
        "                flow = axial[n] * (a0[m, parent[n]] - a0[m, n])",
        "                rhs[n] += flow",
        "                rhs[parent[n]] -= flow",
        "            for n in range(n_nodes - 1, 0, -1):",
        "                factor = axial[n] / diag[n]",
        "                diag[parent[n]] -= factor * axial[n]",
        "                rhs[parent[n]] += factor * rhs[n]",
        "            rhs[0] = rhs[0] / diag[0]",
        "            for n in range(1, n_nodes):",
        "                rhs[n] = (rhs[n] + axial[n] * rhs[parent[n]]) / diag[n]",
        "            v_before = a0[m, spike_node]",
        "            for n in range(n_nodes):",
        "                inj, lin_g, lin_ge = injected[rows[step], m, n], linear_g[m, n], linear_ge[m, n]",
        *indent(second_pass, 16),
        "            v_after = a0[m, spike_node]",
        "            if v_before < threshold and v_after >= threshold:",
        "                spikes[step, m] = 1.0",
        "                fraction[step, m] = (threshold - v_before) / (v_after - v_before)",
        "            if trace.shape[0] > 0:",
        "                for n in range(n_nodes):",
        "                    trace[step, m, n] = a0[m, n]",
    ]
    return "\n".join(lines) + "\n"
