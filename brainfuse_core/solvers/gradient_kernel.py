"""Exact gradients through the generated CPU kernels: a population of one-compartment cells driven
by a known injected current, forward and backward in compiled numba code.

The forward advances every cell K steps in one call and keeps only checkpoints of the state every
``checkpoint_every`` steps (and the voltage trace it returns). The backward runs time in reverse:
per segment it re-runs the forward from the segment's checkpoint into a small buffer, then walks
the segment backwards through the adjoint of one step. Both steps come from the same statements,
``step_source.point_step`` (the forward) and ``adjoint.adjoint`` of them (the backward), so no
derivative is written by hand. Cells are independent, so both loops run cell by cell over threads
and a cell's buffer stays in cache; memory grows with the number of steps only through the trace
and its gradient (checkpoints: K / checkpoint_every states per cell).

The numbers of the model reach the kernels as one float64 parameter array built with torch from the
model's own tensors (``Parameters``), so the parameter gradient the kernel returns flows on through
autograd to every gbar, curve parameter, Q10 and tabulated-curve point (a table's slopes on to its
values through ``pchip_slopes``). The kernels compute, read and write float64 whatever the run's
dtype (one compiled version serves both): a float32 run differs from the float32 tensor path by
that path's rounding only.
"""

import math
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import torch

from ..channels.curves import NotCompilable, Tabulated, pchip_slopes
from ..errors import ModelError
from .adjoint import NEUTRAL, adjoint, render
from .compiled import _explinear, _pchip, _sigmoid
from .membrane import METHODS
from .step_source import point_step


@numba.njit(inline="always", error_model="numpy")
def _where(condition, a, b):
    return a if condition else b


@numba.njit(inline="always", error_model="numpy")
def _sign(x):
    return 1.0 if x > 0.0 else (-1.0 if x < 0.0 else 0.0)


@numba.njit(inline="always", error_model="numpy")
def _at(table, k):
    return table[k]


@numba.njit(inline="always", error_model="numpy")
def _accumulate(table, k, value):
    table[k] += value


@numba.njit(inline="always", error_model="numpy")
def _pchip_interval(x, points):
    """The interval of ``_pchip`` for x clamped into the table: 0 … n − 2."""
    last = points.shape[0] - 1
    if x <= points[0]:
        return 0
    if x >= points[last]:
        return last - 1
    lo, hi = 0, last
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if points[mid] <= x:
            lo = mid
        else:
            hi = mid
    return lo


@numba.njit(inline="always", error_model="numpy")
def _pchip_clamp(x, points):
    return min(max(x, points[0]), points[points.shape[0] - 1])


FUNCTIONS = {"exp": "math.exp", "log": "math.log", "sqrt": "math.sqrt", "abs": "abs", "tanh": "math.tanh",
             "cosh": "math.cosh", "sigmoid": "_sigmoid", "explinear": "_explinear", "pchip": "_pchip",
             "expm1": "math.expm1", "sinh": "math.sinh", "sign": "_sign", "where": "_where", "at": "_at",
             "accumulate": "_accumulate", "pchip_interval": "_pchip_interval", "pchip_clamp": "_pchip_clamp"}
_NAMESPACE = {"math": math, "np": np, "numba": numba, "_sigmoid": _sigmoid, "_explinear": _explinear, "_pchip": _pchip,
              "_where": _where, "_sign": _sign, "_at": _at, "_accumulate": _accumulate,
              "_pchip_interval": _pchip_interval, "_pchip_clamp": _pchip_clamp}


class Parameters:
    """The ``constant`` of ``point_step`` for these kernels: collects the model's numbers as torch
    tensors (keeping their autograd history) and names them in the statements: a scalar ``p<k>``, a
    table ``tab<k>`` (k: where it starts in ``array()``). Tables arrive in threes (a tabulated curve's
    points, values, slopes); values and slopes are differentiable (``tables``), points are not.

    ``point_step`` hands over detached copies of a block's densities and a tabulated curve's
    tables as floats; both are traced back to the block's tensors here (densities share their
    storage; a table is matched to its curve by content and order), so their gradients are kept."""

    def __init__(self, block):
        self.pieces = []
        self.size = 0
        self.scalars, self.tables, self.slices = [], [], {}  # tables: the differentiable ones
        self._originals = {density.data_ptr(): density for _, density, _ in block.channels if density.requires_grad}
        self._curves = [curve for channel, _, _ in block.channels for gate in channel.gates
                        for curve in gate.kinetics().values() if isinstance(curve, Tabulated)]
        self._table_calls = 0
        self._curve = None

    def __call__(self, value):
        start = self.size
        if isinstance(value, (list, tuple)):
            role = self._table_calls % 3
            self._table_calls += 1
            tensor = self._table(role, [float(v) for v in value])
            name = f"tab{start}"
            if role:
                self.tables.append(name)
        else:
            if torch.is_tensor(value):
                if value.numel() != 1:
                    raise NotCompilable("a batched (multi-element) parameter")
                value = self._originals.get(value.data_ptr(), value) if not value.requires_grad else value
            tensor = torch.as_tensor(value, dtype=torch.float64).reshape(1)
            name = f"p{start}"
            self.scalars.append(name)
        self.pieces.append(tensor)
        self.size += tensor.numel()
        self.slices[name] = (start, self.size)
        return name

    def _table(self, role, floats):
        if role == 0:
            self._curve = next((c for c in self._curves if [float(p) for p in c.points] == floats), None)
            if self._curve is None:
                raise ModelError("gradient kernel: a table of points matches no tabulated curve of the block")
            return torch.tensor(floats, dtype=torch.float64)
        points = torch.tensor(self._curve.points, dtype=torch.float64)
        values = self._curve.values
        values = values.to(torch.float64) if torch.is_tensor(values) else torch.tensor(values, dtype=torch.float64)
        table = values if role == 1 else pchip_slopes(points, values)
        if table.detach().tolist() != floats:
            raise ModelError("gradient kernel: a tabulated curve's table does not match the curve it was traced to")
        if role == 2:
            self._curves.remove(self._curve)
        return table

    def array(self):
        """(P,) float64: every number of the model, differentiable where the model's tensors are."""
        return torch.cat(self.pieces) if self.pieces else torch.zeros(0, dtype=torch.float64)


_KERNELS = {}


def gradient_kernels(block, celsius, method, dt):
    """(forward, reverse, parameters) for ``block``: the compiled kernels (cached by their source;
    see ``_source`` for their arguments) and the ``Parameters`` of this model. Raises ModelError for
    what they cannot run."""
    if method not in METHODS:
        raise ModelError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    parameters = Parameters(block)
    try:
        statements = point_step(block, celsius, method, float(dt), parameters, NEUTRAL)
    except NotCompilable as err:
        raise ModelError(f"the gradient kernel cannot run this population: {err}; "
                         "run it on the tensor path (Simulation(..., compiled=False))") from None
    n_states = len(block.state_names())
    states = [f"s{k}" for k in range(n_states)]
    reverse = adjoint(statements, [*states, "inj", *parameters.scalars], [f"new_{s}" for s in states], parameters.tables)
    source = _source(n_states, render(statements, FUNCTIONS), render(reverse, FUNCTIONS), parameters)
    if source not in _KERNELS:
        namespace = dict(_NAMESPACE)
        exec(compile(source, "<brainfuse generated gradient kernels>", "exec"), namespace)  # generated, never user text
        _KERNELS[source] = namespace["forward"], namespace["reverse"]
    return (*_KERNELS[source], parameters)


def _source(n_states, forward, reverse, parameters):
    """Source of two kernels over cells ``_lo`` … ``_hi`` − 1 and steps ``_first`` … ``_last`` − 1.

    ``forward(_state0.., _injected, _params, _every, _checkpoints, _trace, ...)`` advances the float64
    states (n,) in place, with ``_injected`` (K, n), storing the state before step k in
    ``_checkpoints[i, (k − _first) // _every]`` where (k − _first) % _every is 0 and v after step k in
    ``_trace[i, k − _first]``. ``reverse(_states, _injected, _params, _d_trace, _adjoint0.., _d_injected,
    _d_params, ...)`` walks the steps backwards from the states before each (``_states[i, k − _first]``),
    turning the adjoints of the state after ``_last`` − 1 (``_adjoint0..``, in place) into those before
    ``_first``, with v's trace adjoint ``_d_trace`` (K, n) added after each step; it writes
    ``_d_injected`` (n, K) and adds to ``_d_params`` (n, P). The kernels' own names start with an
    underscore, which neither point_step's names nor the adjoint's temporaries (an underscore and
    digits) take."""
    states = range(n_states)
    pad = lambda lines, depth: [" " * (4 * depth) + line for line in lines]
    scalars = parameters.scalars
    bind = [f"{name} = _params[{parameters.slices[name][0]}]" for name in scalars]
    bind += [f"{name} = _params[{start}:{stop}]" for name, (start, stop) in parameters.slices.items() if name not in scalars]
    text = [
        "@numba.njit(nogil=True, error_model='numpy')",
        f"def forward({', '.join(f'_state{k}' for k in states)}, _injected, _params, _every, _checkpoints, _trace, "
        "_first, _last, _lo, _hi):",
        *pad(bind, 1),
        "    for _i in range(_lo, _hi):",
        *pad([f"s{k} = _state{k}[_i]" for k in states], 2),
        "        for _step in range(_first, _last):",
        "            if (_step - _first) % _every == 0:",
        *pad([f"_checkpoints[_i, (_step - _first) // _every, {k}] = s{k}" for k in states], 4),
        "            inj = _injected[_step, _i]",
        *pad(forward, 3),
        *pad([f"s{k} = new_s{k}" for k in states], 3),
        "            _trace[_i, _step - _first] = s0",
        *pad([f"_state{k}[_i] = s{k}" for k in states], 2),
        "",
        "@numba.njit(nogil=True, error_model='numpy')",
        f"def reverse(_states, _injected, _params, _d_trace, {', '.join(f'_adjoint{k}' for k in states)}, _d_injected, "
        "_d_params, _first, _last, _lo, _hi):",
        *pad(bind, 1),
        "    for _i in range(_lo, _hi):",
        "        _row = _d_params[_i]",
        *pad([f"d_{name} = _row[{start}:{stop}]" for name in parameters.tables for start, stop in [parameters.slices[name]]], 2),
        *pad([f"_sum_{name} = _row[{parameters.slices[name][0]}]" for name in scalars], 2),
        *pad([f"d_s{k} = _adjoint{k}[_i]" for k in states], 2),
        "        for _step in range(_last - 1, _first - 1, -1):",
        *pad([f"s{k} = _states[_i, _step - _first, {k}]" for k in states], 3),
        "            inj = _injected[_step, _i]",
        "            d_new_s0 = d_s0 + _d_trace[_step, _i]",
        *pad([f"d_new_s{k} = d_s{k}" for k in states if k], 3),
        *pad(reverse, 3),
        "            _d_injected[_i, _step] = d_inj",
        *pad([f"_sum_{name} += d_{name}" for name in scalars], 3),
        *pad([f"_adjoint{k}[_i] = d_s{k}" for k in states], 2),
        *pad([f"_row[{parameters.slices[name][0]}] = _sum_{name}" for name in scalars], 2),
    ]
    return "\n".join(text) + "\n"


def run_with_gradients(block, state, dt, injected, celsius, method="backward_euler", checkpoint_every=None, threads=None):
    """Advance ``block`` (a CompiledCell of one compartment; B × C cells) K = ``injected.shape[0]``
    steps of ``dt`` ms, differentiably, in compiled code.

    ``state``: the block's state, a dict of (B, C, 1) tensors (v mV, gates, [Ca]i mM) as from
    ``CompiledCell.initial_state``; ``injected``: (K, B, C) nA per step; ``celsius`` °C; ``method``
    "backward_euler" or "crank_nicolson"; ``checkpoint_every``: steps between stored states (default
    √K; K stores every state of the run for the backward, the memory-hungry baseline); ``threads``:
    how many threads share the cells (default torch.get_num_threads()). Returns (v after every step
    (K, B, C) mV, the final state dict). Gradients of anything computed from them reach the initial
    state, ``injected`` and every parameter tensor of the model."""
    names = block.state_names()
    shape = state["v"].shape
    if block.size != 1 or len(shape) != 3 or shape[2] != 1:
        raise ModelError("run_with_gradients advances one-compartment cells: state tensors of shape (B, C, 1)")
    if injected.dim() != 3 or tuple(injected.shape[1:]) != tuple(shape[:2]):
        raise ModelError(f"injected current has shape {tuple(injected.shape)}; expected (steps, {shape[0]}, {shape[1]}) nA")
    steps = injected.shape[0]
    every = max(1, round(math.sqrt(steps))) if checkpoint_every is None else int(checkpoint_every)
    if every < 1:
        raise ModelError(f"checkpoint_every must be a positive number of steps, got {checkpoint_every!r}")
    forward, reverse, parameters = gradient_kernels(block, celsius, method, dt)
    settings = (forward, reverse, every, threads or torch.get_num_threads())
    # The kernels read and write float64 only (one compiled version per model); autograd casts back.
    as_double = lambda value: value.to(torch.float64)
    outputs = _Run.apply(settings, parameters.array(), as_double(injected), *[as_double(state[name]) for name in names])
    dtype = state["v"].dtype
    return outputs[0].to(dtype), {name: value.to(dtype) for name, value in zip(names, outputs[1:])}


def _split(kernel, cells, threads):
    """``kernel(lo, hi)`` over the cells in ``threads`` contiguous ranges, in parallel (the kernels
    release the GIL)."""
    bounds = np.linspace(0, cells, min(threads, cells) + 1).astype(int)
    if len(bounds) <= 2:
        kernel(0, cells)
        return
    with ThreadPoolExecutor(len(bounds) - 1) as pool:
        list(pool.map(kernel, bounds[:-1], bounds[1:]))


class _Run(torch.autograd.Function):
    """The forward keeps the states every ``every`` steps; the backward replays each segment from its
    checkpoint (the forward kernel with every = 1 into a buffer) and walks it back (``reverse``).
    Every tensor in and out is float64."""

    @staticmethod
    def forward(ctx, settings, params, injected, *initial):
        forward, _, every, threads = settings
        shape = initial[0].shape
        steps, n = injected.shape[0], initial[0].numel()
        current = injected.detach().reshape(steps, n).contiguous().numpy()
        state = [value.detach().reshape(n).numpy().copy() for value in initial]
        checkpoints = np.empty((n, (steps + every - 1) // every, len(state)))
        trace = np.empty((n, steps))
        values = params.detach().numpy()
        _split(lambda lo, hi: forward(*state, current, values, every, checkpoints, trace, 0, steps, lo, hi), n, threads)
        ctx.settings, ctx.shape, ctx.arrays = settings, shape, (current, values, checkpoints)
        # (n, K) in memory, so each cell's row is contiguous in the kernel; the caller sees (K, B, C).
        return (torch.from_numpy(trace).T.reshape(steps, *shape[:2]),
                *[torch.from_numpy(value).reshape(shape) for value in state])

    @staticmethod
    def backward(ctx, d_trace, *d_final):
        forward, reverse, every, threads = ctx.settings
        current, values, checkpoints = ctx.arrays
        steps, n = current.shape
        d_trace = np.zeros((steps, n)) if d_trace is None else d_trace.detach().reshape(steps, n).contiguous().numpy()
        adjoints = [np.zeros(n) if d is None else d.detach().reshape(n).numpy().copy() for d in d_final]
        d_injected = np.empty((n, steps))
        d_params = np.zeros((n, values.shape[0]))
        buffer = np.empty((n, min(every, steps), checkpoints.shape[2]))
        scratch = np.empty((n, buffer.shape[1]))
        for segment in range(checkpoints.shape[1] - 1, -1, -1):
            first, last = segment * every, min(segment * every + every, steps)
            state = [np.ascontiguousarray(checkpoints[:, segment, k]) for k in range(checkpoints.shape[2])]

            def segment_backward(lo, hi):
                forward(*state, current, values, 1, buffer, scratch, first, last, lo, hi)
                reverse(buffer, current, values, d_trace, *adjoints, d_injected, d_params, first, last, lo, hi)

            _split(segment_backward, n, threads)
        return (None, torch.from_numpy(d_params.sum(0)), torch.from_numpy(d_injected).T.reshape(steps, *ctx.shape[:2]),
                *[torch.from_numpy(d).reshape(ctx.shape) for d in adjoints])
