"""The CPU fast path: steps of a block of one-compartment cells, generated from the channel
definitions and compiled with numba.

Without gradients the tensor path spends most of its time dispatching ~100 small operations
per step; here the whole step (currents, implicit voltage update, calcium pools, gates) is one
loop over the cells, written by ``step_source.point_step`` (the one generator of a point cell's
step) from the same curve templates and expressions that the tensor path evaluates, with the
same formulas in the same order. Every number of the model (densities,
reversal potentials, curve parameters, tabulated curves, Q10 factors, pool constants, factors of dt) is passed
in at run time, so the compiled code depends only on the model's structure: an editor dragging
a curve reuses the kernel, and only a new form, gate or channel compiles a new one (cached by
its source text).

The loops over cells vectorise (16 float32 or 8 float64 lanes with AVX-512): exp and expm1 are
``fastmath``'s branch-free versions instead of libm calls, a cell's step has no branch (spike
detection is a select), and everything is computed in the state's precision (numbers are passed
in as an array of that dtype; a float64 literal would promote a float32 step to float64).
error_model="numpy" everywhere: a division by zero gives inf/NaN (which the simulation's
finiteness check reports) instead of a checked branch around every division.
"""

import ast
import math
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import torch

from ..channels.curves import NotCompilable, scalar
from . import fastmath, generated
from .step_source import point_step

_sigmoid, _explinear = fastmath.sigmoid, fastmath.explinear


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
def _heaviside(x):
    return 1.0 if x >= 0.0 else 0.0


@numba.njit(inline="always", error_model="numpy")
def _pchip(x, points, values, slopes):
    """The tabulated curve's monotone cubic at x, flat outside the points (as ``Tabulated.__call__``)."""
    last = points.shape[0] - 1
    if x <= points[0]:
        return values[0]
    if x >= points[last]:
        return values[last]
    lo = _pchip_interval(x, points)
    h = points[lo + 1] - points[lo]
    t = (x - points[lo]) / h
    t2 = t * t
    t3 = t2 * t
    return ((_TWO * t3 - _THREE * t2 + _ONE) * values[lo] + (t3 - _TWO * t2 + t) * h * slopes[lo]
            + (-_TWO * t3 + _THREE * t2) * values[lo + 1] + (t3 - t2) * h * slopes[lo + 1])


# float32 constants, exact in either precision: an int or float64 literal would make a float32 curve float64.
_ONE, _TWO, _THREE = np.float32(1.0), np.float32(2.0), np.float32(3.0)


FUNCTIONS = {"exp": "_exp", "expm1": "_expm1", "sigmoid": "_sigmoid", "explinear": "_explinear", "log": "math.log",
             "sqrt": "math.sqrt", "tanh": "math.tanh", "abs": "abs", "cosh": "math.cosh", "pchip": "_pchip",
             "heaviside": "_heaviside"}
_NAMESPACE = {"math": math, "numba": numba, "_exp": fastmath.exp, "_expm1": fastmath.expm1, "_sigmoid": _sigmoid,
              "_explinear": _explinear, "_pchip": _pchip, "_heaviside": _heaviside,
              "_wide_vectors": fastmath.wide_vectors}
BLOCK_CELLS = 512
"""Cells a thread advances through a whole chunk of steps at a time in ``PointKernel.run``: their
state (a few arrays of 512 numbers) stays in the L1 cache across the steps."""


class _Parameters:
    """Collects the model's numbers while the body is written, so the source is the same whatever the
    values: a number becomes ``p{k}``, read once from ``params[k]`` before the loop (``prologue``), a
    table ``params[a:b]``."""

    def __init__(self):
        self.values = []
        self.scalars = []

    def __call__(self, value):
        if isinstance(value, (list, tuple)):
            start = len(self.values)
            self.values.extend(float(v) for v in value)
            return f"params[{start}:{len(self.values)}]"
        self.values.append(scalar(value))
        self.scalars.append(len(self.values) - 1)
        return f"p{len(self.values) - 1}"

    def prologue(self):
        """The kernel's first lines: 512-bit vectors (``fastmath.wide_vectors``), then the numbers."""
        return ["    _wide_vectors()"] + [f"    p{k} = params[{k}]" for k in self.scalars]


class _Literals(ast.NodeTransformer):
    """Makes every number literal of a statement a parameter too, so that the step computes in the
    state's precision; a whole-number power keeps an integer literal, which numba multiplies out."""

    def __init__(self, constant):
        self.constant = constant

    def visit_BinOp(self, node):
        exponent = node.right
        if isinstance(node.op, ast.Pow) and isinstance(exponent, ast.Constant) and float(exponent.value).is_integer():
            return ast.BinOp(self.visit(node.left), node.op, ast.Constant(int(exponent.value)))
        return self.generic_visit(node)

    def visit_Subscript(self, node):  # a table, params[a:b]: already parameters
        return node

    def visit_Constant(self, node):
        return ast.parse(self.constant(float(node.value)), mode="eval").body


def _statements(block, celsius, method, dt, parameters, synaptic):
    lines = point_step(block, celsius, method, dt, parameters, FUNCTIONS, synaptic=synaptic)
    literals = _Literals(parameters)
    return "\n".join(ast.unparse(literals.visit(ast.parse(line))) for line in lines)


def point_kernel(block, celsius, method, dt):
    """Compiled steps for ``block`` (a CompiledCell of one node) at time step ``dt`` ms, or None when
    something in it cannot be compiled (batched parameters)."""
    parameters, plain_parameters = _Parameters(), _Parameters()
    try:
        body = _statements(block, celsius, method, dt, parameters, synaptic=True)
        plain = _statements(block, celsius, method, dt, plain_parameters, synaptic=False)
    except NotCompilable:
        return None
    n_states = len(block.state_names())
    synaptic, alone = parameters.prologue(), plain_parameters.prologue()
    source = _one_step(n_states, body, synaptic) + _many_steps(n_states, plain, alone) + _advance(n_states, body, synaptic)
    module = generated.load(source, dict(_NAMESPACE))
    return PointKernel(module, block, dt, parameters.values, plain_parameters.values)


def split_cells(kernel, cells, threads):
    """``kernel(lo, hi)`` over the cells in ``threads`` contiguous ranges, in parallel (the kernels
    release the GIL)."""
    bounds = np.linspace(0, cells, min(threads, cells) + 1).astype(int)
    if len(bounds) <= 2:
        kernel(0, cells)
        return
    with ThreadPoolExecutor(len(bounds) - 1) as pool:
        list(pool.map(kernel, bounds[:-1], bounds[1:]))


class PointKernel:
    """``one_step``: one step (``__call__``); ``many_steps``: a chunk without synaptic input (``run``);
    ``advance``: one step in place with spike detection, called from compiled network code
    (``solvers/network_kernel.py``). ``parameters(dtype)`` holds every number of the model for the
    kernels' ``params`` argument; ``digest`` names their generated module (``generated.load``)."""

    def __init__(self, module, block, dt, parameters, plain_parameters):
        self.one_step, self.many_steps, self.advance = module.step, module.steps, module.advance
        self.digest = module.digest
        self.state_names = block.state_names()
        self.dt = dt
        self._numbers = {True: np.array(parameters, dtype=np.float64), False: np.array(plain_parameters, dtype=np.float64)}

    def parameters(self, dtype, synaptic=True):
        """The numbers in the state's precision: a float32 step computes in float32, as the tensor path."""
        return self._numbers[synaptic].astype(dtype)

    def _check_dt(self, dt):
        if dt != self.dt:
            raise ValueError(f"this kernel was generated for dt = {self.dt} ms, not {dt} ms; call use_compiled again")

    def __call__(self, state, dt, injected, linear_g, linear_ge):
        """One step of every cell; same contract as CompiledCell.step."""
        self._check_dt(dt)
        shape = state["v"].shape
        flat = [state[name].detach().reshape(-1).numpy() for name in self.state_names]
        dtype = flat[0].dtype
        outputs = [np.empty_like(flat[0]) for _ in flat]
        inputs = [np.broadcast_to(np.asarray(value.detach().numpy() if torch.is_tensor(value) else value, dtype=dtype),
                                  shape).reshape(-1) for value in (injected, linear_g, linear_ge)]
        self.one_step(*flat, *inputs, self.parameters(dtype), *outputs)
        return {name: torch.from_numpy(out).reshape(shape) for name, out in zip(self.state_names, outputs)}

    def run(self, state, dt, injected, rows, threshold, record_v, threads=None):
        """Many steps of cells without synaptic input: in step k the current ``injected[rows[k]]`` (nA;
        ``injected`` (U, B, C), ``rows`` (K,), as ``Simulation._chunk_injections`` gives them).

        Returns the new state, spikes (K, B, C) 0/1, where in each step the threshold was crossed
        (0..1; meaningless where there is no spike), and the voltage after every step (K, B, C) when
        ``record_v``. One call per chunk: the cells are split over ``threads`` threads (as many as numba
        has by default), each advancing blocks of ``BLOCK_CELLS`` cells through all K steps while a
        block's state is in cache."""
        self._check_dt(dt)
        shape = state["v"].shape
        steps = rows.shape[0]
        flat = [state[name].detach().reshape(-1).numpy() for name in self.state_names]
        dtype = flat[0].dtype
        spikes = np.empty((steps, flat[0].size), dtype=dtype)
        fraction = np.empty_like(spikes)
        trace = np.empty((steps if record_v else 1, flat[0].size), dtype=dtype)
        injected = np.ascontiguousarray(injected.detach().reshape(len(injected), -1).numpy(), dtype=dtype)
        new = [value.copy() for value in flat]
        rows = np.ascontiguousarray(rows.numpy(), dtype=np.int64)
        arguments = (*new, injected, rows, self.parameters(dtype, synaptic=False), dtype.type(threshold), spikes, fraction,
                     trace, record_v)
        n = new[0].size
        threads = min(threads or numba.config.NUMBA_NUM_THREADS, numba.config.NUMBA_NUM_THREADS)
        block = min(BLOCK_CELLS, -(-n // threads // 16) * 16)  # small populations: a block per thread
        blocks = -(-n // block)
        threads = min(threads, blocks)
        bounds = [min(n, blocks * t // threads * block) for t in range(threads + 1)]
        work = [(bounds[t], bounds[t + 1]) for t in range(threads)]
        run_block = lambda span: self.many_steps(*arguments, *span, block)
        if threads == 1:
            run_block(work[0])
        else:
            list(_pool().map(run_block, work))
        as_tensor = lambda array: torch.from_numpy(array).reshape(steps, *shape[:2])
        return ({name: torch.from_numpy(value).reshape(shape) for name, value in zip(self.state_names, new)},
                as_tensor(spikes), as_tensor(fraction), as_tensor(trace) if record_v else None)


_POOL = []


def _pool():
    """Threads for ``PointKernel.run`` (the kernels release the GIL), made once."""
    if not _POOL:
        _POOL.append(ThreadPoolExecutor(max_workers=numba.config.NUMBA_NUM_THREADS, thread_name_prefix="brainfuse-cells"))
    return _POOL[0]


def _cell_update(n_states, body, indent, state="a", outputs=False):
    """The statements advancing cell i: load its state (arrays a0, a1, ... or b0, b1, ... by ``state``,
    into s0, s1, ...), the body, then with ``outputs`` spike detection and the voltage into this
    step's rows ``spike_row``, ``fraction_row`` and ``trace_row``, as selects and plain stores so
    that the loop over cells has no branch and vectorises; the caller stores new_s0, new_s1, ...
    Indices start at 0 (numba checks a signed index for wraparound unless LLVM sees it is ≥ 0)."""
    pad = " " * indent
    lines = [f"{pad}s{k} = {state}{k}[i]" for k in range(n_states)]
    lines += [f"{pad}{line}" for line in body.splitlines()]
    if outputs:
        lines += [
            f"{pad}crossed = (s0 < threshold) & (new_s0 >= threshold)",
            f"{pad}spike_row[i] = crossed",
            f"{pad}fraction_row[i] = (threshold - s0) / (new_s0 - s0)",
            f"{pad}if record_v:",
            f"{pad}    trace_row[i] = new_s0",
        ]
    return lines


def _rows(indent, columns=""):
    """This step's rows of the outputs (the trace has one row, unused, when no voltage is recorded)."""
    pad = " " * indent
    return [f"{pad}spike_row = spikes[step{columns}]", f"{pad}fraction_row = fraction[step{columns}]",
            f"{pad}trace_row = trace[step if record_v else 0{columns}]"]


def _one_step(n_states, body, prologue):
    args = ", ".join(f"a{k}" for k in range(n_states))
    outs = ", ".join(f"out{k}" for k in range(n_states))
    lines = [
        "@numba.njit(nogil=True, error_model=\"numpy\", cache=True)",
        f"def step({args}, injected, linear_g, linear_ge, params, {outs}):",
        *prologue,
        "    for i in range(a0.shape[0]):",
        "        inj, lin_g, lin_ge = injected[i], linear_g[i], linear_ge[i]",
        *_cell_update(n_states, body, 8),
        *[f"        out{k}[i] = new_s{k}" for k in range(n_states)],
    ]
    return "\n".join(lines) + "\n"


def _many_steps(n_states, body, prologue):
    """Cells first..last-1 through every step of the chunk, a block of ``block`` cells at a time."""
    args = ", ".join(f"a{k}" for k in range(n_states))
    lines = [
        "@numba.njit(nogil=True, error_model=\"numpy\", cache=True)",
        f"def steps({args}, injected, rows, params, threshold, spikes, fraction, trace, record_v, first, last, block):",
        *prologue,
        "    for start in range(first, last, block):",
        "        stop = min(last, start + block)",
        *[f"        b{k} = a{k}[start:stop]" for k in range(n_states)],
        "        for step in range(rows.shape[0]):",
        "            injected_row = injected[rows[step], start:stop]",
        *_rows(12, ", start:stop"),
        "            for i in range(stop - start):",
        "                inj = injected_row[i]",
        *_cell_update(n_states, body, 16, state="b", outputs=True),
        *[f"                b{k}[i] = new_s{k}" for k in range(n_states)],
    ]
    return "\n".join(lines) + "\n"


def _advance(n_states, body, prologue):
    """One step of every cell in place, from the chunk's step ``step``: the synaptic input of a
    network changes every step, so the network kernel calls this once per step."""
    args = ", ".join(f"a{k}" for k in range(n_states))
    lines = [
        "@numba.njit(nogil=True, error_model=\"numpy\", cache=True)",
        f"def advance({args}, injected, rows, linear_g, linear_ge, params, threshold, step, spikes, fraction, trace, record_v):",
        *prologue,
        *_rows(4),
        "    injected_row = injected[rows[step]]",
        "    for i in range(a0.shape[0]):",
        "        inj, lin_g, lin_ge = injected_row[i], linear_g[i], linear_ge[i]",
        *_cell_update(n_states, body, 8, outputs=True),
        *[f"        a{k}[i] = new_s{k}" for k in range(n_states)],
    ]
    return "\n".join(lines) + "\n"
