"""The CPU fast path: a step of a block of one-compartment cells, generated from the channel
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
"""

import math

import numba
import numpy as np
import torch

from ..channels.curves import NotCompilable, scalar
from .step_source import point_step


# error_model="numpy" everywhere: a division by zero gives inf/NaN (which the simulation's finiteness
# check reports) instead of a checked branch around every division, which costs ~10 % of a step.
@numba.njit(inline="always", error_model="numpy")
def _sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


@numba.njit(inline="always", error_model="numpy")
def _explinear(x):
    if abs(x) < 1e-6:
        return 1.0 + 0.5 * x
    return x / -math.expm1(-x)


@numba.njit(inline="always", error_model="numpy")
def _pchip(x, points, values, slopes):
    """The tabulated curve's monotone cubic at x, flat outside the points (as ``Tabulated.__call__``)."""
    last = points.shape[0] - 1
    if x <= points[0]:
        return values[0]
    if x >= points[last]:
        return values[last]
    lo, hi = 0, last
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if points[mid] <= x:
            lo = mid
        else:
            hi = mid
    h = points[lo + 1] - points[lo]
    t = (x - points[lo]) / h
    t2 = t * t
    t3 = t2 * t
    return ((2 * t3 - 3 * t2 + 1) * values[lo] + (t3 - 2 * t2 + t) * h * slopes[lo]
            + (-2 * t3 + 3 * t2) * values[lo + 1] + (t3 - t2) * h * slopes[lo + 1])


FUNCTIONS = {"exp": "math.exp", "log": "math.log", "sqrt": "math.sqrt", "tanh": "math.tanh", "abs": "abs",
             "cosh": "math.cosh", "sigmoid": "_sigmoid", "explinear": "_explinear", "pchip": "_pchip", "expm1": "math.expm1"}


class _Parameters:
    """Collects the model's numbers while the body is written; each becomes ``params[k]`` (a table,
    ``params[a:b]``) in the source, so the source is the same whatever the values."""

    def __init__(self):
        self.values = []

    def __call__(self, value):
        if isinstance(value, (list, tuple)):
            start = len(self.values)
            self.values.extend(float(v) for v in value)
            return f"params[{start}:{len(self.values)}]"
        self.values.append(scalar(value))
        return f"params[{len(self.values) - 1}]"


_KERNELS = {}


def point_kernel(block, celsius, method, dt):
    """Compiled steps for ``block`` (a CompiledCell of one node) at time step ``dt`` ms, or None when
    something in it cannot be compiled (batched parameters)."""
    parameters = _Parameters()
    try:
        body = "\n".join(point_step(block, celsius, method, dt, parameters, FUNCTIONS, synaptic=True))
        plain = "\n".join(point_step(block, celsius, method, dt, _Parameters(), FUNCTIONS))
    except NotCompilable:
        return None
    n_states = len(block.state_names())
    if body not in _KERNELS:
        namespace = {"math": math, "numba": numba, "_sigmoid": _sigmoid, "_explinear": _explinear, "_pchip": _pchip}
        source = _one_step(n_states, body) + _many_steps(n_states, plain) + _advance(n_states, body, False) + _advance(n_states, body, True)
        exec(compile(source, "<brainfuse generated step>", "exec"), namespace)  # our generated code, never user text
        _KERNELS[body] = namespace["step"], namespace["steps"], namespace["advance"], namespace["advance_parallel"]
    return PointKernel(*_KERNELS[body], block, dt, parameters.values)


class PointKernel:
    """``one_step``: one step (``__call__``); ``many_steps``: a chunk without synaptic input (``run``);
    ``advance``: one step in place with spike detection, called from compiled network code
    (``solvers/network_kernel.py``); ``advance_parallel``: the same with the cells split over threads.
    ``parameters`` holds every number of the model for the kernels' ``params`` argument."""

    def __init__(self, one_step, many_steps, advance, advance_parallel, block, dt, parameters):
        self.one_step, self.many_steps = one_step, many_steps
        self.advance, self.advance_parallel = advance, advance_parallel
        self.state_names = block.state_names()
        self.dt = dt
        # float64 whatever the state's dtype: the literals they replace were double constants too.
        self.parameters = np.array(parameters, dtype=np.float64)

    def _check_dt(self, dt):
        if dt != self.dt:
            raise ValueError(f"this kernel was generated for dt = {self.dt} ms, not {dt} ms; call use_compiled again")

    def __call__(self, state, dt, injected, linear_g, linear_ge):
        """One step of every cell; same contract as CompiledCell.step."""
        self._check_dt(dt)
        shape = state["v"].shape
        flat = [state[name].detach().reshape(-1).numpy() for name in self.state_names]
        outputs = [np.empty_like(flat[0]) for _ in flat]
        inputs = [np.broadcast_to(np.asarray(value.detach().numpy() if torch.is_tensor(value) else value, dtype=flat[0].dtype),
                                  shape).reshape(-1) for value in (injected, linear_g, linear_ge)]
        self.one_step(*flat, *inputs, self.parameters, *outputs)
        return {name: torch.from_numpy(out).reshape(shape) for name, out in zip(self.state_names, outputs)}

    def run(self, state, dt, injected, threshold, record_v):
        """Many steps of cells without synaptic input: ``injected`` (K, B, C) nA for the K steps.

        Returns the new state, spikes (K, B, C) 0/1, where in each step the threshold was crossed
        (0..1), and the voltage after every step (K, B, C) when ``record_v``. One call per chunk
        instead of one per step; steps run outer so every array is walked contiguously."""
        self._check_dt(dt)
        shape = state["v"].shape
        steps = injected.shape[0]
        flat = [state[name].detach().reshape(-1).numpy() for name in self.state_names]
        dtype = flat[0].dtype
        spikes = np.zeros((steps, flat[0].size), dtype=dtype)
        fraction = np.zeros_like(spikes)
        trace = np.empty_like(spikes) if record_v else np.empty((0, flat[0].size), dtype=dtype)
        injected = np.ascontiguousarray(injected.detach().reshape(steps, -1).numpy(), dtype=dtype)
        new = [value.copy() for value in flat]
        self.many_steps(*new, injected, self.parameters, float(threshold), spikes, fraction, trace)
        as_tensor = lambda array: torch.from_numpy(array).reshape(steps, *shape[:2])
        return ({name: torch.from_numpy(value).reshape(shape) for name, value in zip(self.state_names, new)},
                as_tensor(spikes), as_tensor(fraction), as_tensor(trace) if record_v else None)


def _cell_update(n_states, body, indent, spike_step=None):
    """The statements advancing cell i: load its state (arrays a0, a1, ... into s0, s1, ...), the body,
    then (if ``spike_step`` names the row of the step) spike detection and the voltage trace; the
    caller stores new_s0, new_s1, ..."""
    pad = " " * indent
    lines = [f"{pad}s{k} = a{k}[i]" for k in range(n_states)]
    lines += [f"{pad}{line}" for line in body.splitlines()]
    if spike_step is not None:
        lines += [
            f"{pad}if s0 < threshold and new_s0 >= threshold:",
            f"{pad}    spikes[{spike_step}, i] = 1.0",
            f"{pad}    fraction[{spike_step}, i] = (threshold - s0) / (new_s0 - s0)",
            f"{pad}if trace.shape[0] > 0:",
            f"{pad}    trace[{spike_step}, i] = new_s0",
        ]
    return lines


def _one_step(n_states, body):
    args = ", ".join(f"a{k}" for k in range(n_states))
    outs = ", ".join(f"out{k}" for k in range(n_states))
    lines = [
        "@numba.njit(nogil=True, error_model=\"numpy\")",
        f"def step({args}, injected, linear_g, linear_ge, params, {outs}):",
        "    for i in range(a0.shape[0]):",
        "        inj, lin_g, lin_ge = injected[i], linear_g[i], linear_ge[i]",
        *_cell_update(n_states, body, 8),
        *[f"        out{k}[i] = new_s{k}" for k in range(n_states)],
    ]
    return "\n".join(lines) + "\n"


def _many_steps(n_states, body):
    args = ", ".join(f"a{k}" for k in range(n_states))
    lines = [
        "@numba.njit(nogil=True, error_model=\"numpy\")",
        f"def steps({args}, injected, params, threshold, spikes, fraction, trace):",
        "    for step in range(injected.shape[0]):",
        "        for i in range(a0.shape[0]):",
        "            inj = injected[step, i]",
        *_cell_update(n_states, body, 12, spike_step="step"),
        *[f"            a{k}[i] = new_s{k}" for k in range(n_states)],
    ]
    return "\n".join(lines) + "\n"


def _advance(n_states, body, parallel):
    """One step of every cell in place, from the chunk's step ``step``: the synaptic input of a
    network changes every step, so the network kernel calls this once per step. Cells are
    independent within a step, so ``parallel`` splits them over threads with the same results."""
    args = ", ".join(f"a{k}" for k in range(n_states))
    lines = [
        f"@numba.njit(nogil=True, error_model=\"numpy\", parallel={parallel})",
        f"def advance{'_parallel' if parallel else ''}({args}, injected, linear_g, linear_ge, params, threshold, step, spikes, fraction, trace):",
        f"    for i in {'numba.prange' if parallel else 'range'}(a0.shape[0]):",
        "        inj, lin_g, lin_ge = injected[step, i], linear_g[i], linear_ge[i]",
        *_cell_update(n_states, body, 8, spike_step="step"),
        *[f"        a{k}[i] = new_s{k}" for k in range(n_states)],
    ]
    return "\n".join(lines) + "\n"
