"""Exact gradients through the generated CPU kernels: a population of one-compartment cells driven
by a known injected current, forward and backward in compiled numba code.

The forward advances every cell K steps in one call and keeps only checkpoints of the state every
``checkpoint_every`` steps (and the voltage trace it returns). The backward runs time in reverse:
per segment it re-runs the forward from the segment's checkpoint into a small buffer, then walks
the segment backwards through the adjoint of one step. Both steps come from the same statements,
``step_source.point_step`` (the forward) and ``adjoint.adjoint`` of them (the backward), so no
derivative is written by hand. Cells are independent: threads take ranges of cells, and each
advances blocks of BLOCK_CELLS cells through a segment with the loop over the block's cells
innermost, where it vectorises (fastmath's exp). Memory grows with the number of steps only
through the trace and its gradient (checkpoints: K / checkpoint_every states per cell; the replay
buffer: checkpoint_every states per cell).

The numbers of the model reach the kernels as one float64 parameter array built with torch from the
model's own tensors (``Parameters``), so the parameter gradient the kernel returns flows on through
autograd to every gbar, curve parameter, Q10 and tabulated-curve point (a table's slopes on to its
values through ``pchip_slopes``). The kernels compute, read and write float64 whatever the run's
dtype (one compiled version serves both): a float32 run differs from the float32 tensor path by
that path's rounding only.
"""

import hashlib
import math
from pathlib import Path

import numba
import numpy as np
import torch

from ..channels.curves import NotCompilable, Tabulated, pchip_slopes
from ..errors import ModelError
from . import fastmath, generated
from .adjoint import NEUTRAL, adjoint, render
from .compiled import _heaviside, _pchip, _pchip_interval, split_cells
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
def _pchip_clamp(x, points):
    return min(max(x, points[0]), points[points.shape[0] - 1])


# exp, expm1 and the rates on them are fastmath's branch-free versions, so the loops over cells vectorise.
FUNCTIONS = {"exp": "_exp", "log": "math.log", "sqrt": "math.sqrt", "abs": "abs", "tanh": "math.tanh",
             "cosh": "math.cosh", "sigmoid": "_sigmoid", "explinear": "_explinear", "pchip": "_pchip",
             "expm1": "_expm1", "sinh": "math.sinh", "sign": "_sign", "where": "_where", "at": "_at",
             "accumulate": "_accumulate", "pchip_interval": "_pchip_interval", "pchip_clamp": "_pchip_clamp",
             "heaviside": "_heaviside"}
_NAMESPACE = {"math": math, "np": np, "numba": numba, "_exp": fastmath.exp, "_expm1": fastmath.expm1,
              "_sigmoid": fastmath.sigmoid, "_explinear": fastmath.explinear, "_pchip": _pchip,
              "_wide_vectors": fastmath.wide_vectors,
              "_where": _where, "_sign": _sign, "_at": _at, "_accumulate": _accumulate,
              "_pchip_interval": _pchip_interval, "_pchip_clamp": _pchip_clamp, "_heaviside": _heaviside}


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
        self._points = self._curve = None

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
            self._points = floats
            return torch.tensor(floats, dtype=torch.float64)
        if role == 1:
            self._curve = next((c for c in self._curves if c.points == self._points and _values(c).tolist() == floats), None)
            if self._curve is None:
                raise ModelError("gradient kernel: a table of values matches no tabulated curve of the block")
            self._curves.remove(self._curve)
            return _values(self._curve)
        slopes = pchip_slopes(torch.tensor(self._curve.points, dtype=torch.float64), _values(self._curve))
        if slopes.detach().tolist() != floats:
            raise ModelError("gradient kernel: a tabulated curve's slopes differ from those of the curve traced")
        return slopes

    def array(self):
        """(P,) float64: every number of the model, differentiable where the model's tensors are."""
        return torch.cat(self.pieces) if self.pieces else torch.zeros(0, dtype=torch.float64)


def _values(curve):
    """A tabulated curve's values as float64, with their autograd history."""
    values = curve.values
    return values.to(torch.float64) if torch.is_tensor(values) else torch.tensor(values, dtype=torch.float64)


# The helpers above are part of what a generated kernel means (generated.py digests its own list).
_OWN_DIGEST = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()


def supports(block, celsius, method, dt, reset=None):
    """Whether the gradient kernels can run ``block``: one compartment, every number a scalar (a
    batched parameter, one value per batch entry, runs on the tensor path). Compiles nothing."""
    try:
        point_step(block, celsius, method, float(dt), Parameters(block), NEUTRAL, reset=reset)
    except NotCompilable:
        return False
    return block.size == 1


def gradient_kernels(block, celsius, method, dt, reset=None):
    """(forward, reverse, parameters) for ``block``: the compiled kernels (kept on disk by their
    source, ``generated.load``; see ``_source`` for their arguments) and the ``Parameters`` of this
    model. With ``reset`` (threshold, v_reset) mV the cells integrate and fire (``point_step``) and
    the trace is the voltage before the reset. Raises ModelError for what they cannot run."""
    statements, reverse, parameters, traced = step_and_adjoint(block, celsius, method, dt, reset)
    key = (statements, reverse, tuple(parameters.slices.items()))
    if key not in _MODULES:
        n_states = len(block.state_names())
        source = _source(n_states, render(statements, FUNCTIONS), render(reverse, FUNCTIONS), parameters, traced)
        _MODULES[key] = generated.load(source, _NAMESPACE, dependencies=(_OWN_DIGEST,))
    return _MODULES[key].forward, _MODULES[key].reverse, parameters


# Generating and rendering a step's adjoint costs tens of ms, more than a short run: both are kept by
# the statements' text and where each named number lies in the parameter array (the values
# themselves arrive at run time).
_ADJOINTS = {}
_MODULES = {}


def step_and_adjoint(block, celsius, method, dt, reset=None):
    """(statements, reverse, parameters, traced): one step of ``block`` in neutral form
    (``point_step``, numbers named by ``Parameters``), its adjoint (inputs: the states, inj and the
    scalar parameters; outputs: the new states, and with ``reset`` the traced ``v_free``), and the name
    of the voltage a trace records. What every backend's gradient kernels render. Raises ModelError
    for what they cannot run."""
    if method not in METHODS:
        raise ModelError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    parameters = Parameters(block)
    try:
        statements = point_step(block, celsius, method, float(dt), parameters, NEUTRAL, reset=reset)
    except NotCompilable as err:
        raise ModelError(f"the gradient kernels cannot run this population: {err}; "
                         "run it on the tensor path (Simulation(..., compiled=False))") from None
    statements = tuple(statements)
    states = [f"s{k}" for k in range(len(block.state_names()))]
    traced = "new_s0" if reset is None else "v_free"
    outputs = [f"new_{s}" for s in states] + ([traced] if reset is not None else [])
    key = (statements, traced, tuple(parameters.slices.items()))
    if key not in _ADJOINTS:
        _ADJOINTS[key] = tuple(adjoint(statements, [*states, "inj", *parameters.scalars], outputs, parameters.tables))
    return statements, _ADJOINTS[key], parameters, traced


BLOCK_CELLS = 256
"""Cells that step together through a segment: the inner loop runs over them (and vectorises where
the step's functions do), and their state, adjoints and parameter adjoints stay in cache."""


def _source(n_states, forward, reverse, parameters, traced):
    """Source of two kernels over cells ``_lo`` … ``_hi`` − 1 and steps ``_first`` … ``_last`` − 1.

    ``forward(_state, _injected, _params, _every, _checkpoints, _trace, ...)`` advances the float64
    state (S, n) in place, with ``_injected`` (K, n), storing the state before step k in
    ``_checkpoints[(k − _first) // _every]`` (segments, S, n) where (k − _first) % _every is 0 and v
    after step k (the statements' ``traced``) in ``_trace[k − _first]``. ``reverse(_states, _injected, _params, _d_trace, _adjoint,
    _d_injected, _d_params, ...)`` walks the steps backwards from the states before each
    (``_states[k − _first]``), turning the adjoints of the state after step ``_last`` − 1
    (``_adjoint`` (S, n), in place) into those before ``_first``, with v's trace adjoint ``_d_trace``
    (K, n) added after each step; it writes ``_d_injected`` (K, n; nothing if it is (0, n)) and adds to
    the per-cell parameter adjoints ``_d_params`` (P, n).

    As in compiled.py, the loops over a block's cells index from 0 (so that numba's wraparound check
    on a negative index folds away) and have no branch, so they vectorise.
    The kernels' own names start with an underscore, which neither point_step's names nor the
    adjoint's temporaries (an underscore and digits) take."""
    states = range(n_states)
    pad = lambda lines, depth: [" " * (4 * depth) + line for line in lines]
    scalars = parameters.scalars
    bind = ["_wide_vectors()", *[f"{name} = _params[{parameters.slices[name][0]}]" for name in scalars]]
    bind += [f"{name} = _params[{start}:{stop}]" for name, (start, stop) in parameters.slices.items() if name not in scalars]
    # The reverse step's loop reads and writes one array, ``_frame``, of rows of BLOCK_CELLS at fixed
    # offsets: the states before the step, the state adjoints, inj, v's trace adjoint, inj's adjoint,
    # then one row per scalar parameter summing its adjoint over the steps (in step order whatever the
    # segments, so every checkpoint spacing gives the same bits). With the rows of separate
    # arrays LLVM needs more run-time overlap checks than it allows and leaves the loop scalar. Rows
    # are copied in and out by plain loops: a slice assignment brings its own copy routine each time,
    # and dozens of them multiplied the compile time by ten.
    inj, dv, d_inj, sums = 2 * n_states, 2 * n_states + 1, 2 * n_states + 2, 2 * n_states + 3
    frame_rows = sums + len(scalars)
    row = lambda r: f"_frame[{r * BLOCK_CELLS} + _i]"
    blocks = [
        f"    for _start in range(_lo, _hi, {BLOCK_CELLS}):",
        f"        _end = min(_start + {BLOCK_CELLS}, _hi)",
    ]
    text = [
        "@numba.njit(cache=True, nogil=True, error_model='numpy')",
        "def forward(_state, _injected, _params, _every, _checkpoints, _trace, _first, _last, _lo, _hi):",
        *pad(bind, 1),
        *blocks,
        *pad([f"_s{k} = _state[{k}, _start:_end]" for k in states], 2),
        "        for _step in range(_first, _last):",
        "            if (_step - _first) % _every == 0:",
        "                for _i in range(_end - _start):",
        *pad([f"_checkpoints[(_step - _first) // _every, {k}, _start + _i] = _s{k}[_i]" for k in states], 5),
        "            _inj = _injected[_step, _start:_end]",
        "            _v = _trace[_step - _first, _start:_end]",
        "            for _i in range(_end - _start):",
        *pad([f"s{k} = _s{k}[_i]" for k in states], 4),
        "                inj = _inj[_i]",
        *pad(forward, 4),
        *pad([f"_s{k}[_i] = new_s{k}" for k in states], 4),
        f"                _v[_i] = {traced}",
        "",
        "@numba.njit(cache=True, nogil=True, error_model='numpy')",
        "def reverse(_states, _injected, _params, _d_trace, _adjoint, _d_injected, _d_params, _first, _last, _lo, _hi):",
        *pad(bind, 1),
        f"    _frame = np.empty({frame_rows * BLOCK_CELLS})",
        *blocks,
        "        _n = _end - _start",
        "        for _i in range(_n):",
        *pad([f"{row(n_states + k)} = _adjoint[{k}, _start + _i]" for k in states], 3),
        *pad([f"{row(sums + j)} = _d_params[{parameters.slices[name][0]}, _start + _i]" for j, name in enumerate(scalars)], 3),
        "        for _step in range(_last - 1, _first - 1, -1):",
        "            for _i in range(_n):",
        *pad([f"{row(k)} = _states[_step - _first, {k}, _start + _i]" for k in states], 4),
        f"                {row(inj)} = _injected[_step, _start + _i]",
        f"                {row(dv)} = _d_trace[_step, _start + _i]",
        "            for _i in range(_n):",
        *pad([f"s{k} = {row(k)}" for k in states], 4),
        f"                inj = {row(inj)}",
        *([f"                d_new_s0 = {row(n_states)} + {row(dv)}"] if traced == "new_s0" else
          [f"                d_new_s0 = {row(n_states)}", f"                d_{traced} = {row(dv)}"]),
        *pad([f"d_new_s{k} = {row(n_states + k)}" for k in states if k], 4),
        *pad([f"d_{name} = _d_params[{start}:{stop}, _start + _i]" for name in parameters.tables
              for start, stop in [parameters.slices[name]]], 4),
        *pad(reverse, 4),
        *pad([f"{row(n_states + k)} = d_s{k}" for k in states], 4),
        f"                {row(d_inj)} = d_inj",
        *pad([f"{row(sums + j)} += d_{name}" for j, name in enumerate(scalars)], 4),
        "            if _d_injected.shape[0] > 0:",
        "                for _i in range(_n):",
        f"                    _d_injected[_step, _start + _i] = {row(d_inj)}",
        "        for _i in range(_n):",
        *pad([f"_adjoint[{k}, _start + _i] = {row(n_states + k)}" for k in states], 3),
        *pad([f"_d_params[{parameters.slices[name][0]}, _start + _i] = {row(sums + j)}" for j, name in enumerate(scalars)], 3),
    ]
    return "\n".join(text) + "\n"


def run_with_gradients(block, state, dt, injected, celsius, method="backward_euler", checkpoint_every=None, threads=None,
                       reset=None):
    """Advance ``block`` (a CompiledCell of one compartment; B × C cells) K = ``injected.shape[0]``
    steps of ``dt`` ms, differentiably, in compiled code.

    ``state``: the block's state, a dict of (B, C, 1) tensors (v mV, gates, [Ca]i mM) as from
    ``CompiledCell.initial_state``; ``injected``: (K, B, C) nA per step; ``celsius`` °C; ``method``
    "backward_euler" or "crank_nicolson"; ``checkpoint_every``: steps between stored states (default
    √K; K stores every state of the run for the backward, the memory-hungry baseline); ``threads``:
    how many threads share the cells (default torch.get_num_threads()); ``reset`` (threshold, v_reset)
    mV: integrate-and-fire cells, v after every step then being the voltage before the reset (which
    passes no gradient). Returns (v after every step
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
    forward, reverse, parameters = gradient_kernels(block, celsius, method, dt, reset)
    settings = (forward, reverse, every, threads or torch.get_num_threads())
    # The kernels read and write float64 only (one compiled version per model); autograd casts back.
    as_double = lambda value: value.to(torch.float64)
    outputs = _Run.apply(settings, parameters.array(), as_double(injected), *[as_double(state[name]) for name in names])
    dtype = state["v"].dtype
    return outputs[0].to(dtype), {name: value.to(dtype) for name, value in zip(names, outputs[1:])}


class _Run(torch.autograd.Function):
    """The forward keeps the states every ``every`` steps; the backward replays each segment from its
    checkpoint (the forward kernel with every = 1 into a buffer) and walks it back (``reverse``).
    Every tensor in and out is float64; cells are laid out last, as in the (K, B, C) trace."""

    @staticmethod
    def forward(ctx, settings, params, injected, *initial):
        forward, _, every, threads = settings
        shape = initial[0].shape
        steps, n = injected.shape[0], initial[0].numel()
        current = injected.detach().reshape(steps, n).contiguous().numpy()
        state = torch.stack([value.detach().reshape(n) for value in initial]).numpy()
        checkpoints = np.empty(((steps + every - 1) // every, len(initial), n))
        trace = np.empty((steps, n))
        values = params.detach().numpy()
        split_cells(lambda lo, hi: forward(state, current, values, every, checkpoints, trace, 0, steps, lo, hi), n, threads)
        ctx.settings, ctx.shape, ctx.arrays = settings, shape, (current, values, checkpoints)
        return torch.from_numpy(trace).reshape(steps, *shape[:2]), *[torch.from_numpy(row).reshape(shape) for row in state]

    @staticmethod
    def backward(ctx, d_trace, *d_final):
        forward, reverse, every, threads = ctx.settings
        current, values, checkpoints = ctx.arrays
        steps, n = current.shape
        d_trace = np.zeros((steps, n)) if d_trace is None else d_trace.detach().reshape(steps, n).contiguous().numpy()
        adjoint = np.stack([np.zeros(n) if d is None else d.detach().reshape(n).numpy() for d in d_final])
        d_injected = np.empty((steps if ctx.needs_input_grad[2] else 0, n))
        d_params = np.zeros((values.shape[0], n))
        buffer = np.empty((min(every, steps), *checkpoints.shape[1:]))
        scratch = np.empty((buffer.shape[0], n))
        for segment in range(checkpoints.shape[0] - 1, -1, -1):
            first, last = segment * every, min(segment * every + every, steps)
            state = checkpoints[segment].copy()

            def segment_backward(lo, hi):
                forward(state, current, values, 1, buffer, scratch, first, last, lo, hi)
                reverse(buffer, current, values, d_trace, adjoint, d_injected, d_params, first, last, lo, hi)

            split_cells(segment_backward, n, threads)
        d_injected = torch.from_numpy(d_injected).reshape(steps, *ctx.shape[:2]) if ctx.needs_input_grad[2] else None
        return (None, torch.from_numpy(d_params.sum(1)), d_injected, *[torch.from_numpy(row).reshape(ctx.shape) for row in adjoint])
