"""Exact gradients through the compiled cable kernel: cells of many compartments (one morphology,
B × C cells) driven by an injected current, forward and backward in compiled numba code.

The forward advances each cell through the whole run in one call, as ``cable_kernel.py`` does (every
node's currents from ``step_source.node_currents``, the axial currents, the tree solve, every node's
pools and gates from ``step_source.pools_and_gates``), keeping the voltage at every node after every
step and the state every ``checkpoint_every`` steps. The backward runs time in reverse, segment by
segment: it replays the segment from its checkpoint into a small per-cell buffer (states before each
step, the solve's dv and its unfactored diagonal), then walks it back one step at a time:

1. per node, the adjoint of the node's update (``adjoint.adjoint`` of the voltage update, pools and
   gates; with calcium, of the currents feeding the pools too) turns the adjoints of the state after
   the step into the adjoint of the solve's dv, and parts of those of the state before it;
2. λ = A⁻¹ d(dv) with the same elimination as the forward (A is symmetric), so the right-hand side's
   adjoint is λ and the diagonal's is −λ·dv; the injected current's adjoint is λ;
3. per node, the adjoint of the node's currents (membrane_g gets −λ·dv, membrane_i gets −λ), and
   the axial currents' adjoint into the neighbours' voltages.

Only the axial currents and the tree solve are written here by hand (linear algebra); every channel,
pool and gate derivative comes from the adjoint of step_source's statements. Parameters reach the
kernels as ``gradient_kernel.Parameters`` builds them (one float64 array with autograd history from
the model's tensors, shared by every node), and the per-node conductance densities (S/cm²) as a
(channels, nodes) array stacked from the block's density tensors, so torch chains both on to every
gbar, curve parameter and tabulated point. The kernels compute in float64 whatever the run's dtype;
the voltage trace is written in the run's dtype.

The loops over a cell's nodes vectorise (see ``_source``); for that the node count is part of the
generated text, so each morphology size compiles its own kernels (about 7 s for squid HH, kept on
disk by ``generated.load``). Cells are split over Python threads around the serial kernels.

Memory: the trace (K + 1 samples per node and cell), checkpoints (K / checkpoint_every states per
cell), and per thread a buffer of checkpoint_every states in the backward.
"""

import ast
import hashlib
import math
import re
from pathlib import Path

import numpy as np
import torch

from ..channels.curves import NotCompilable
from ..errors import ModelError
from . import generated
from .adjoint import NEUTRAL, adjoint, render
from .compiled import split_cells
from .gradient_kernel import _NAMESPACE, FUNCTIONS, Parameters
from .membrane import METHODS
from .step_source import node_currents, pools_and_gates, step_dt, voltage_update

# The generated modules call helpers defined in these files: a change there must not reuse machine
# code numba cached from the old text.
_DEPENDENCIES = (hashlib.sha256(b"".join((Path(__file__).parent / name).read_bytes()
                                         for name in ("gradient_kernel.py", "cable_gradient.py"))).hexdigest(),)
_MODULES = {}


def _names(lines):
    return {node.id for line in lines for node in ast.walk(ast.parse(line)) if isinstance(node, ast.Name)}


def _statements(block, celsius, method, dt):
    """(currents, update, implicit step name, parameters): the node statements for ``block`` with
    a fresh ``Parameters`` (the model's numbers with their autograd history)."""
    parameters = Parameters(block)

    def density(c, values):
        if values.dim() != 1 or values.numel() != block.size:
            raise NotCompilable("a batched conductance density")
        return f"dens{c}"

    try:
        currents = node_currents(block, parameters, density, lambda: "area_n")
        implicit = parameters(step_dt(method, dt))
        update = [voltage_update(method)] + pools_and_gates(block, celsius, dt, parameters, NEUTRAL)
    except NotCompilable as err:
        raise ModelError(f"the cable gradient kernel cannot run this cell: {err}; "
                         "run it on the tensor path (Simulation(..., compiled=False))") from None
    return currents, update, implicit, parameters


def supports(block, celsius, method, dt):
    """Whether ``run_with_gradients`` can run ``block``: several compartments, every number a scalar
    or a per-node density, calcium pools on every node or none. Compiles nothing."""
    if block.size < 2 or method not in METHODS:
        return False
    try:
        _statements(block, celsius, method, float(dt))
    except ModelError:
        return False
    return True


def _kernels(block, currents, update, implicit, parameters):
    """The compiled module (``forward``, ``backward``) for these statements, generated once per text."""
    n_states, n_channels = len(block.state_names()), len(block.channels)
    key = (block.size, n_states, n_channels, block.uses_calcium, implicit, tuple(currents), tuple(update),
           tuple(parameters.slices.items()))
    if key not in _MODULES:
        _MODULES[key] = generated.load(_source(block.size, n_states, n_channels, block.uses_calcium, currents, update,
                                               implicit, parameters), dict(_NAMESPACE), _DEPENDENCIES)
    return _MODULES[key]


def _piece_adjoint(statements, outputs, n_states, n_channels, parameters, rename):
    """Adjoint of ``statements`` w.r.t. the states, dv, densities and scalar parameters they read;
    temporaries renamed by ``rename`` so two pieces in one function never share a name (their types
    may differ). Returns (inputs, rendered adjoint lines)."""
    used = _names(statements)
    candidates = [f"s{k}" for k in range(n_states)] + ["dv"] + [f"dens{c}" for c in range(n_channels)] + parameters.scalars
    inputs = [name for name in candidates if name in used]
    tables = [name for name in parameters.tables if name in used]
    lines = adjoint(statements, inputs, outputs, tables)
    lines = [re.sub(r"\b_(\d+)\b", rf"{rename}\1", line) for line in lines]
    return inputs, render(lines, FUNCTIONS)


def _source(n_nodes, n_states, n_channels, uses_calcium, currents, update, implicit, parameters):
    """Two kernels over cells ``_lo`` … ``_hi`` − 1 of ``n_nodes`` nodes (arrays in float64 unless said):

    ``forward(_a, _values, _rows, _dens, _area, _cap, _axial, _axial_sum, _parent, _params, _every,
    _checkpoints, _trace, _lo, _hi)``: advances the state ``_a`` (cells, S, N) in place through
    K = len(``_rows``) steps, step k injecting ``_values[_rows[k]]`` (U, cells, N) nA; stores the
    state before step k in ``_checkpoints[k // _every]`` (segments, cells, S, N) where k % _every is
    0, and v after step k in ``_trace[:, :, k + 1]`` (cells, N, K + 1; the run's dtype).

    ``backward(..., _every, _checkpoints, _d_trace, _adjoint, _d_values, _d_params, _d_dens, _lo, _hi)``:
    turns the adjoint of the final state ``_adjoint`` (cells, S, N; in place) into that of the initial
    state, with the trace's adjoint ``_d_trace`` (cells, N, K + 1) added after each step; adds the
    injected current's adjoint into ``_d_values`` (U, cells, N; skipped when it has no rows) and writes
    each cell's parameter adjoint ``_d_params`` (cells, P) and density adjoint ``_d_dens`` (cells, C, N).

    The loops over nodes vectorise: everything they read and write per node lives in one array per
    kernel, ``_F``, in rows of N at offsets fixed in the text (N is part of the text, so LLVM needs no
    run-time overlap checks between them), the replay buffer ``_buf`` aside; the parameter adjoints
    are summed per node (a row per scalar) and over the nodes once per cell, as a sum across loop
    iterations would keep the loop scalar."""
    states = range(n_states)
    pad = lambda lines, depth: [" " * (4 * depth) + line for line in lines]
    scalars = parameters.scalars
    bind = ["_wide_vectors()"] + [f"{name} = _params[{parameters.slices[name][0]}]" for name in scalars]
    bind += [f"{name} = _params[{start}:{stop}]" for name, (start, stop) in parameters.slices.items() if name not in scalars]
    forward_currents = render(currents, FUNCTIONS)
    forward_update = render(update, FUNCTIONS)
    update_piece = (currents if uses_calcium else []) + update
    update_inputs, update_adjoint = _piece_adjoint(update_piece, [f"new_s{k}" for k in states], n_states, n_channels,
                                                   parameters, "_u")
    current_inputs, current_adjoint = _piece_adjoint(currents, ["membrane_g", "membrane_i"], n_states, n_channels,
                                                     parameters, "_c")
    summed = [name for name in scalars if name in update_inputs or name in current_inputs]

    rows = {}
    for name in [f"dens{c}" for c in range(n_channels)] + ["area", "cap", "axial_sum"] + [f"s{k}" for k in states] + \
            ["diag", "rhs", "lam", "d_trace", "dv"] + [f"adj{k}" for k in states] + [f"new{k}" for k in states] + \
            [f"before{k}" for k in states] + \
            [f"d_dens{c}" for c in range(n_channels)] + [f"d_{name}" for name in summed]:
        rows[name] = len(rows)
    frame = lambda name, node="_n": f"_F[{rows[name] * n_nodes} + {node}]"
    buffer_dv, buffer_diag = n_states, n_states + 1
    load_node = [f"dens{c} = {frame(f'dens{c}')}" for c in range(n_channels)] + [f"area_n = {frame('area')}"]
    nodes = f"for _n in range({n_nodes}):"
    load_before = [f"s{k} = {frame(f'before{k}')}" for k in states] + [f"dv = {frame('dv')}"] + load_node

    def step(replay):
        """One step of cell _m on the state rows of ``_F``; with ``replay`` the state before it, the
        unfactored diagonal and dv go to row ``_k`` of ``_buf``."""
        lines = []
        if replay:
            lines += [nodes, *[f"    _buf[_k, {k}, _n] = {frame(f's{k}')}" for k in states]]
        lines += [
            "_row = _rows[_step]",
            nodes,
            *pad([f"s{k} = {frame(f's{k}')}" for k in states], 1),
            "    inj = _values[_row, _m, _n]",
            *pad(load_node, 1),
            *pad(forward_currents, 1),
            f"    {frame('diag')} = {frame('cap')} / {implicit} + membrane_g + {frame('axial_sum')}",
            f"    {frame('rhs')} = inj - membrane_i",
        ]
        if replay:
            lines += [nodes, f"    _buf[_k, {buffer_diag}, _n] = {frame('diag')}"]
        lines += [
            f"for _n in range(1, {n_nodes}):",
            f"    _flow = _axial[_n] * ({frame('s0', '_parent[_n]')} - {frame('s0')})",
            f"    {frame('rhs')} += _flow",
            f"    {frame('rhs', '_parent[_n]')} -= _flow",
            *_solve(n_nodes, lambda node: frame("diag", node), lambda node: frame("rhs", node)),
        ]
        if replay:
            lines += [nodes, f"    _buf[_k, {buffer_dv}, _n] = {frame('rhs')}"]
        lines += [
            nodes,
            *pad([f"s{k} = {frame(f's{k}')}" for k in states], 1),
            f"    dv = {frame('rhs')}",
        ]
        if uses_calcium:
            lines += [*pad(load_node, 1), *pad(forward_currents, 1)]
        lines += [*pad(forward_update, 1), *pad([f"{frame(f's{k}')} = new_s{k}" for k in states], 1)]
        return lines

    def collect(inputs, first):
        """Adjoints of a piece's inputs into the step's state adjoint rows ``new``, the density and parameter rows."""
        lines = []
        for name in inputs:
            if name.startswith("s"):
                lines.append(f"{frame(f'new{name[1:]}')} {'=' if first else '+='} d_{name}")
            elif name.startswith("dens"):
                lines.append(f"{frame(f'd_{name}')} += d_{name}")
            elif name in summed:
                lines.append(f"{frame(f'd_{name}')} += d_{name}")
        if first:
            lines += [f"{frame(f'new{k}')} = 0.0" for k in states if f"s{k}" not in inputs]
        return lines

    constants = [
        nodes,
        *[f"    {frame(f'dens{c}')} = _dens[{c}, _n]" for c in range(n_channels)],
        f"    {frame('area')} = _area[_n]",
        f"    {frame('cap')} = _cap[_n]",
        f"    {frame('axial_sum')} = _axial_sum[_n]",
    ]
    text = [
        "import numba",
        "import numpy as np",
        "",
        "",
        "@numba.njit(nogil=True, error_model='numpy', cache=True)",
        "def forward(_a, _values, _rows, _dens, _area, _cap, _axial, _axial_sum, _parent, _params, _every, "
        "_checkpoints, _trace, _lo, _hi):",
        *pad(bind, 1),
        f"    _F = np.zeros({len(rows) * n_nodes})",
        *pad(constants, 1),
        "    for _m in range(_lo, _hi):",
        f"        {nodes}",
        *pad([f"{frame(f's{k}')} = _a[_m, {k}, _n]" for k in states], 3),
        "        for _step in range(_rows.shape[0]):",
        "            if _step % _every == 0:",
        f"                {nodes}",
        *pad([f"_checkpoints[_step // _every, _m, {k}, _n] = {frame(f's{k}')}" for k in states], 5),
        *pad(step(False), 3),
        f"            {nodes}",
        f"                _trace[_m, _n, _step + 1] = {frame('s0')}",
        f"        {nodes}",
        *pad([f"_a[_m, {k}, _n] = {frame(f's{k}')}" for k in states], 3),
        "",
        "",
        "@numba.njit(nogil=True, error_model='numpy', cache=True)",
        "def backward(_values, _rows, _dens, _area, _cap, _axial, _axial_sum, _parent, _params, _every, _checkpoints, "
        "_d_trace, _adjoint, _d_values, _d_params, _d_dens, _lo, _hi):",
        *pad(bind, 1),
        "    _K = _rows.shape[0]",
        f"    _F = np.zeros({len(rows) * n_nodes})",
        *pad(constants, 1),
        f"    _buf = np.empty((_every, {n_states + 2}, {n_nodes}))",
        "    _dpl = np.zeros(_params.shape[0])",
        *pad([f"d_{name} = _dpl[{start}:{stop}]" for name in parameters.tables
              for start, stop in [parameters.slices[name]]], 1),
        "    for _m in range(_lo, _hi):",
        "        _dpl[:] = 0.0",
        f"        {nodes}",
        *pad([f"{frame(f'adj{k}')} = _adjoint[_m, {k}, _n]" for k in states], 3),
        *pad([f"{frame(f'd_dens{c}')} = 0.0" for c in range(n_channels)], 3),
        *pad([f"{frame(f'd_{name}')} = 0.0" for name in summed], 3),
        "        for _seg in range((_K + _every - 1) // _every - 1, -1, -1):",
        "            _first = _seg * _every",
        "            _last = min(_first + _every, _K)",
        f"            {nodes}",
        *pad([f"{frame(f's{k}')} = _checkpoints[_seg, _m, {k}, _n]" for k in states], 4),
        "            for _step in range(_first, _last):",
        "                _k = _step - _first",
        *pad(step(True), 4),
        "            for _step in range(_last - 1, _first - 1, -1):",
        "                _k = _step - _first",
        f"                {nodes}",
        f"                    {frame('d_trace')} = _d_trace[_m, _n, _step + 1]",
        *pad([f"{frame(f'before{k}')} = _buf[_k, {k}, _n]" for k in states], 5),
        f"                    {frame('dv')} = _buf[_k, {buffer_dv}, _n]",
        f"                    {frame('diag')} = _buf[_k, {buffer_diag}, _n]",
        f"                {nodes}",
        *pad(load_before, 5),
        f"                    d_new_s0 = {frame('adj0')} + {frame('d_trace')}",
        *pad([f"d_new_s{k} = {frame(f'adj{k}')}" for k in states if k], 5),
        *pad(update_adjoint, 5),
        f"                    {frame('lam')} = d_dv",
        *pad(collect(update_inputs, True), 5),
        *pad(_solve(n_nodes, lambda node: frame("diag", node), lambda node: frame("lam", node)), 4),
        f"                {nodes}",
        *pad([line for line in load_before if not line.startswith("dv ")], 5),
        f"                    d_membrane_g = -({frame('lam')} * {frame('dv')})",
        f"                    d_membrane_i = -{frame('lam')}",
        *pad(current_adjoint, 5),
        *pad(collect(current_inputs, False), 5),
        "                if _d_values.shape[0] > 0:",
        f"                    {nodes}",
        f"                        _d_values[_rows[_step], _m, _n] += {frame('lam')}",
        f"                for _n in range(1, {n_nodes}):",
        f"                    _w = _axial[_n] * ({frame('lam')} - {frame('lam', '_parent[_n]')})",
        f"                    {frame('new0', '_parent[_n]')} += _w",
        f"                    {frame('new0')} -= _w",
        f"                {nodes}",
        *pad([f"{frame(f'adj{k}')} = {frame(f'new{k}')}" for k in states], 5),
        f"        {nodes}",
        *pad([f"_adjoint[_m, {k}, _n] = {frame(f'adj{k}')}" for k in states], 3),
        *pad([f"_d_dens[_m, {c}, _n] = {frame(f'd_dens{c}')}" for c in range(n_channels)], 3),
        *pad([f"_dpl[{parameters.slices[name][0]}] += {frame(f'd_{name}')}" for name in summed], 3),
        "        _d_params[_m] = _dpl",
    ]
    return "\n".join(text) + "\n"


def _solve(n_nodes, diag, rhs):
    """The tree (Hines) solve in place: ``rhs`` becomes A⁻¹ rhs and ``diag`` the reciprocals of the
    eliminated diagonal; A has ``diag`` on its diagonal and −axial[n] between node n and its parent
    (``hines._hines_solve``'s elimination). The back substitution multiplies by the reciprocal instead
    of dividing: for an unbranched cable each node waits on its parent, so a division's latency there
    is the solve's. ``diag(node)``, ``rhs(node)``: the text of the entries at a node index's text."""
    return [
        f"for _n in range({n_nodes} - 1, 0, -1):",
        f"    _inverse = 1.0 / {diag('_n')}",
        f"    {diag('_n')} = _inverse",
        "    _factor = _axial[_n] * _inverse",
        f"    {diag('_parent[_n]')} -= _factor * _axial[_n]",
        f"    {rhs('_parent[_n]')} += _factor * {rhs('_n')}",
        f"{rhs('0')} = {rhs('0')} / {diag('0')}",
        f"for _n in range(1, {n_nodes}):",
        f"    {rhs('_n')} = ({rhs('_n')} + _axial[_n] * {rhs('_parent[_n]')}) * {diag('_n')}",
    ]


def run_with_gradients(block, state, dt, injected, celsius, method="backward_euler", rows=None, checkpoint_every=None,
                       threads=None):
    """Advance ``block`` (a CompiledCell of several compartments; B × C cells of N nodes) K steps of
    ``dt`` ms, differentiably, in compiled code.

    ``state``: the block's state, a dict of (B, C, N) tensors (v mV, gates, [Ca]i mM) as from
    ``CompiledCell.initial_state``; ``injected``: (U, B, C, N) nA, the currents the run takes, step k
    taking ``injected[rows[k]]``; ``rows``: (K,) integer tensor (default: one row per step, K = U), so
    a current that holds still needs one row, not K; ``celsius`` °C; ``method`` "backward_euler" or
    "crank_nicolson"; ``checkpoint_every``: steps between stored states (default √K); ``threads``:
    how many threads share the cells (default torch.get_num_threads()).

    Returns (v (B, C, N, K + 1) mV at every node, t = 0 first then after every step, in the layout of
    ``Result.traces``; the final state dict). Gradients of anything computed from them reach the
    initial state, ``injected`` and every parameter tensor of the model (gbars through the per-node
    densities, curve parameters, Q10s, pool constants, tabulated points)."""
    if method not in METHODS:
        raise ModelError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    names = block.state_names()
    shape = tuple(state["v"].shape)
    if block.size < 2 or len(shape) != 3 or shape[2] != block.size:
        raise ModelError(f"the cable gradient kernel advances cells of several compartments: state tensors of shape "
                         f"(B, C, {block.size}), got {shape}; use gradient_kernel.run_with_gradients for point cells")
    if injected.dim() != 4 or tuple(injected.shape[1:]) != shape:
        raise ModelError(f"injected current has shape {tuple(injected.shape)}; expected (rows, {', '.join(map(str, shape))}) nA")
    rows = torch.arange(injected.shape[0]) if rows is None else torch.as_tensor(rows)
    if rows.dim() != 1 or len(rows) < 1 or int(rows.min()) < 0 or int(rows.max()) >= injected.shape[0]:
        raise ModelError(f"rows must be a non-empty (steps,) index into the {injected.shape[0]} rows of injected current")
    steps = len(rows)
    every = max(1, round(math.sqrt(steps))) if checkpoint_every is None else int(checkpoint_every)
    if every < 1:
        raise ModelError(f"checkpoint_every must be a positive number of steps, got {checkpoint_every!r}")
    currents, update, implicit, parameters = _statements(block, celsius, method, float(dt))
    module = _kernels(block, currents, update, implicit, parameters)
    as_array = lambda tensor: np.ascontiguousarray(tensor.detach().cpu().numpy(), dtype=np.float64)
    geometry = tuple(as_array(t) for t in (block.area_factor, block.capacitance, block.axial, block.axial_sum))
    parent = np.ascontiguousarray(np.maximum(block.parent, 0), dtype=np.int64)
    densities = torch.stack([values.to(torch.float64) for _, values, _ in block.channels]) if block.channels \
        else torch.zeros(0, block.size, dtype=torch.float64)
    dtype = state["v"].dtype
    settings = (module, geometry, parent, np.ascontiguousarray(rows.numpy(), dtype=np.int64), every,
                threads or torch.get_num_threads(), dtype)
    double = lambda value: value.to(torch.float64)
    outputs = _Run.apply(settings, parameters.array(), densities, double(injected), *[double(state[n]) for n in names])
    return outputs[0], {name: value.to(dtype) for name, value in zip(names, outputs[1:])}


class _Run(torch.autograd.Function):
    """Forward with checkpoints, backward replaying each segment (see the module docstring). Cells
    are flattened to (B·C) and come first in every array, so a cell's data is contiguous."""

    @staticmethod
    def forward(ctx, settings, params, densities, injected, *initial):
        module, geometry, parent, rows, every, threads, dtype = settings
        shape = initial[0].shape
        cells, nodes, steps = shape[0] * shape[1], shape[2], len(rows)
        values = injected.detach().reshape(injected.shape[0], cells, nodes).contiguous().numpy()
        state = np.ascontiguousarray(torch.stack([value.detach().reshape(cells, nodes) for value in initial], 1).numpy())
        checkpoints = np.empty(((steps + every - 1) // every, *state.shape))
        trace = torch.empty(cells, nodes, steps + 1, dtype=dtype)
        trace[:, :, 0] = initial[0].detach().reshape(cells, nodes)
        trace_array = trace.numpy()
        parameter_values, density_values = params.detach().numpy(), densities.detach().contiguous().numpy()
        constants = (density_values, *geometry, parent, parameter_values, every)
        split_cells(lambda lo, hi: module.forward(state, values, rows, *constants, checkpoints, trace_array, lo, hi),
               cells, threads)
        ctx.settings, ctx.shape, ctx.arrays = settings, shape, (values, constants, checkpoints)
        final = [torch.from_numpy(state[:, k].copy()).reshape(shape) for k in range(len(initial))]
        return trace.reshape(*shape, steps + 1), *final

    @staticmethod
    def backward(ctx, d_trace, *d_final):
        module, _, _, rows, _, threads, dtype = ctx.settings
        values, constants, checkpoints = ctx.arrays
        shape = ctx.shape
        cells, nodes, steps = shape[0] * shape[1], shape[2], len(rows)
        if d_trace is None:
            d_trace = torch.zeros(cells, nodes, steps + 1, dtype=dtype)
        d_trace = d_trace.detach().reshape(cells, nodes, steps + 1).contiguous()
        adjoint = np.ascontiguousarray(np.stack([np.zeros((cells, nodes)) if d is None else d.detach().reshape(cells, nodes).numpy()
                                                 for d in d_final], 1))
        d_values = np.zeros(values.shape if ctx.needs_input_grad[3] else (0, cells, nodes))
        d_params = np.zeros((cells, constants[6].shape[0]))
        d_dens = np.zeros((cells, *constants[0].shape))
        d_trace_array = d_trace.numpy()
        split_cells(lambda lo, hi: module.backward(values, rows, *constants, checkpoints, d_trace_array, adjoint, d_values,
                                              d_params, d_dens, lo, hi), cells, threads)
        d_initial = [torch.from_numpy(adjoint[:, k]).reshape(shape) for k in range(adjoint.shape[1])]
        d_initial[0] = d_initial[0] + d_trace[:, :, 0].to(torch.float64).reshape(shape)
        d_injected = torch.from_numpy(d_values).reshape(-1, *shape) if ctx.needs_input_grad[3] else None
        return (None, torch.from_numpy(d_params.sum(0)), torch.from_numpy(d_dens.sum(0)), d_injected, *d_initial)


def simulate(model, stimuli, probes, dt, steps, dtype=torch.float64, celsius=6.3, method="backward_euler",
             checkpoint_every=None, threads=None):
    """``Result.traces`` of ``steps`` steps of ``dt`` ms of one population of multi-compartment cells
    driven by current clamps, through this kernel: {probe name: (B, cells, samples) or (B, cells,
    nodes, samples) mV}, t = 0 first, differentiable w.r.t. the model's parameter tensors. The
    set-up (stimuli to per-node currents, initial state, probe sites) is ``Simulation``'s own.
    Voltage probes of every step only; no synapses, voltage clamps or spike output."""
    from ..simulation import Simulation

    sim = Simulation(model, stimuli=stimuli, probes=probes, dt=dt, celsius=celsius, method=method, dtype=dtype)
    sim._prepare(steps)
    if len(sim._blocks) != 1 or sim._projections or sim._sources:
        raise ModelError("the cable gradient kernel runs one population of cells without synapses or spike sources")
    (name, block), = sim._blocks.items()
    if block.clamps:
        raise ModelError("the cable gradient kernel takes current clamps only, not voltage clamps")
    for probe, _, _, _ in sim._probe_sites:
        if probe.variable != "v" or probe.every != 1:
            raise ModelError(f"probe {probe.name}: the cable gradient kernel records v at every step (every=1) only")
    prefix = f"{name}/"
    state = {key[len(prefix):]: value for key, value in sim._initial_state().items()}
    values, rows = _held_currents(sim, block, steps)
    v = state["v"]
    injected = values.reshape(len(values), *v.shape)
    trace, _ = run_with_gradients(block, state, dt, injected, celsius, method, rows, checkpoint_every, threads)
    traces = {}
    for probe, _, cells, node in sim._probe_sites:
        every_cell = torch.equal(cells, torch.arange(v.shape[1]))
        picked = trace if every_cell else trace[:, cells]
        traces[probe.name] = picked if probe.nodes == "all" else picked[:, :, node]
    return traces


def _held_currents(sim, block, steps):
    """(values (U, B, C·N) nA, rows (steps,)): the current into the block's nodes, one row per run of
    steps over which it holds still (a current clamp's table has a row per step even where it holds)."""
    nodes = block.population.n * block.size
    per_step = [table[index[:steps]] for _, table, index in block.injections]
    changes = torch.zeros(steps, dtype=torch.bool)
    changes[0] = True
    for current in per_step:
        flat = current.detach().reshape(steps, -1)
        changes[1:] |= (flat[1:] != flat[:-1]).any(1)
    values = torch.zeros((int(changes.sum()), sim.batch, nodes), dtype=sim.dtype)
    for (flat, _, _), current in zip(block.injections, per_step):
        values = values.index_add(2, flat, current[changes].expand(-1, sim.batch, len(flat)))
    return values, changes.cumsum(0) - 1
