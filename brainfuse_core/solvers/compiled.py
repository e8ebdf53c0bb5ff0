"""The CPU fast path: a step of a block of one-compartment cells, generated from the channel
definitions and compiled with numba.

Without gradients the tensor path spends most of its time dispatching ~100 small operations
per step; here the whole step (currents, implicit voltage update, calcium pools, gates) is one
loop over the cells, written out from the same curve templates and expressions that the tensor
path evaluates, with the same formulas in the same order. Conductance densities and reversal
potentials are arguments, so editing them reuses the compiled kernel; kinetics are written in
as literals, so editing a curve compiles a new one (cached by its source text).
"""

import math

import numba
import numpy as np
import torch

from ..channels.curves import NotCompilable
from ..units import DENSITY_TO_ABSOLUTE, FARADAY


@numba.njit(inline="always")
def _sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


@numba.njit(inline="always")
def _explinear(x):
    if abs(x) < 1e-6:
        return 1.0 + 0.5 * x
    return x / -math.expm1(-x)


FUNCTIONS = {"exp": "math.exp", "log": "math.log", "sqrt": "math.sqrt", "tanh": "math.tanh", "abs": "abs",
             "cosh": "math.cosh", "sigmoid": "_sigmoid", "explinear": "_explinear"}
_KERNELS = {}


def point_kernel(block, celsius, method):
    """A compiled step for ``block`` (a CompiledCell of one node), or None when something in it
    cannot be compiled (tabulated curves, batched parameters, tensors needing gradients)."""
    if block.size != 1:
        return None
    try:
        source = _source(block, celsius, method)
    except NotCompilable:
        return None
    if source not in _KERNELS:
        namespace = {"math": math, "numba": numba, "_sigmoid": _sigmoid, "_explinear": _explinear}
        exec(compile(source, "<brainfuse generated step>", "exec"), namespace)  # our generated code, never user text
        _KERNELS[source] = namespace["step"]
    return PointKernel(_KERNELS[source], block)


class PointKernel:
    def __init__(self, function, block):
        self.function = function
        self.block = block
        self.state_names = block.state_names()
        self.densities = np.array([float(d.detach()[0]) for _, d, _ in block.channels])
        self.reversals = np.array([float(e) for _, _, e in block.channels])
        self.area = float(block.area[0])
        self.capacitance = float(block.capacitance[0])

    def __call__(self, state, dt, injected, linear_g, linear_ge):
        shape = state["v"].shape
        dtype = state["v"].dtype
        flat = [state[name].detach().reshape(-1).numpy() for name in self.state_names]
        outputs = [np.empty_like(flat[0]) for _ in flat]
        self.function(*flat, injected.reshape(-1).numpy(), linear_g.reshape(-1).numpy(), linear_ge.reshape(-1).numpy(),
                      self.densities.astype(flat[0].dtype), self.reversals.astype(flat[0].dtype),
                      self.area, self.capacitance, dt, *outputs)
        return {name: torch.from_numpy(out).reshape(shape).to(dtype) for name, out in zip(self.state_names, outputs)}


def _source(block, celsius, method):
    names = block.state_names()
    local = {name: f"s{k}" for k, name in enumerate(names)}
    state_args = ", ".join(local[name] for name in names)
    out_args = ", ".join(f"out_{local[name]}" for name in names)
    lines = [
        "@numba.njit(nogil=True)",
        f"def step({state_args}, injected, linear_g, linear_ge, densities, reversals, area, capacitance, dt, {out_args}):",
        "    for i in range(s0.shape[0]):",
        "        x = s0[i]",
    ]
    for name in names[1:]:
        lines.append(f"        {local[name]}_i = {local[name]}[i]")
    current_terms, conductance_terms, calcium_terms = [], [], []
    for c, (channel, _, _) in enumerate(block.channels):
        fraction = " * ".join(" * ".join([f"{local[f'{channel.name}.{g.name}']}_i"] * g.power) for g in channel.gates)
        lines.append(f"        g{c} = densities[{c}]" + (f" * {fraction}" if fraction else ""))
        lines.append(f"        i{c} = g{c} * (x - reversals[{c}])")
        current_terms.append(f"i{c}")
        conductance_terms.append(f"g{c}")
        if channel.ion == "ca":
            calcium_terms.append(f"i{c}")
    step_dt = "dt" if method == "backward_euler" else "(dt / 2)"
    lines += [
        f"        membrane_g = ({' + '.join(conductance_terms) or '0.0'}) * area * {DENSITY_TO_ABSOLUTE!r} + linear_g[i]",
        f"        membrane_i = ({' + '.join(current_terms) or '0.0'}) * area * {DENSITY_TO_ABSOLUTE!r} + linear_g[i] * x - linear_ge[i]",
        f"        dv = (injected[i] - membrane_i) / (capacitance / {step_dt} + membrane_g)",
        "        xn = x + dv" if method == "backward_euler" else "        xn = x + 2 * dv",
        "        out_s0[i] = xn",
    ]
    variables = {"v": "xn"}
    if "cai" in local:
        ca = local["cai"]
        lines.append(f"        ca = {ca}_i")
        for pool, mask in block.pools:
            if bool(mask[0]):
                influx = f"(-{_float(pool.gamma)} * 1e4 * ({' + '.join(calcium_terms) or '0.0'}) / (2 * {FARADAY!r} * {_float(pool.depth)}))"
                lines.append(f"        target = {_float(pool.rest)} + {influx} * {_float(pool.decay)}")
                lines.append(f"        ca = target + (ca - target) * math.exp(-dt / {_float(pool.decay)})")
        lines.append(f"        out_{ca}[i] = ca")
        variables["cai"] = "ca"
    for channel, _, _ in block.channels:
        factor = _float(channel.rate_factor(celsius))
        for gate in channel.gates:
            s = f"{local[f'{channel.name}.{gate.name}']}_i"
            out = f"out_{local[f'{channel.name}.{gate.name}']}[i]"
            if gate.alpha is not None:
                lines.append(f"        a = {gate.alpha.source(variables, FUNCTIONS)}")
                lines.append(f"        b = {gate.beta.source(variables, FUNCTIONS)}")
                lines.append("        total = a + b")
                lines.append(f"        {out} = {s} + ({s} - a / total) * math.expm1(-dt * {factor} * total)")
            else:
                lines.append(f"        inf = {gate.inf.source(variables, FUNCTIONS)}")
                lines.append(f"        tau = {gate.tau.source(variables, FUNCTIONS)}")
                lines.append(f"        {out} = {s} + ({s} - inf) * math.expm1(-dt * {factor} / tau)")
    return "\n".join(lines) + "\n"


def _float(value):
    if torch.is_tensor(value):
        if value.numel() != 1:
            raise NotCompilable("a batched parameter")
        value = float(value.detach())
    return repr(float(value))
