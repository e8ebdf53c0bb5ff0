"""The statements of one time step of a one-compartment cell, written from its channel definitions.

This is the one generator behind every kernel of a point cell: the compiled CPU kernels
(``solvers/compiled.py``), the Triton kernels (``gpu/point_source.py``) and the adjoint code
derived from these statements. Each backend renders the same statements through its own
function table; each gate's curves come from their ``source`` (the same templates and
expressions the tensor path evaluates), and the membrane, pool and gate updates follow
``CompiledCell.step`` formula by formula, in its order, so the kernels agree with the tensor
path within float rounding.

Every number of the model (densities, reversals, areas, curve parameters, tables, and the
factors the tensor path computes in Python from dt) goes through ``constant``, so the text
depends only on the model's structure and a backend decides how numbers reach the kernel.
"""

import math

import torch

from ..channels.curves import NotCompilable
from ..units import FARADAY


def point_step(block, celsius, method, dt, constant, functions, rewrite=None, synaptic=False, reset=None):
    """Statements advancing one cell of ``block`` (a CompiledCell of one compartment) by ``dt`` ms.

    They read ``s0`` (v, mV), ``s1``, ... (the block's other states in ``state_names()`` order:
    gates, then [Ca]i in mM), ``inj`` (injected current, nA) and, with ``synaptic``, ``lin_g`` (µS)
    and ``lin_ge`` (nA), whose current is lin_g·v − lin_ge; they assign ``new_s0``, ``new_s1``, ...
    ``constant(value)`` gives the text standing for a number (a list for a tabulated curve's tables),
    ``functions`` maps exp, log, sqrt, abs, tanh, cosh, sigmoid, explinear, pchip and expm1 to the
    backend's names, and ``rewrite(text)``, if given, rewrites each curve's text (e.g. removes ``**``).
    ``reset`` (threshold, v_reset), both mV, makes an integrate-and-fire cell: where the solved
    voltage ``v_free`` reaches the threshold, v is set to v_reset (``functions`` then needs heaviside)
    before the gates see it. Raises NotCompilable for what cannot be generated."""
    if block.size != 1:
        raise NotCompilable("a cell of several compartments (this kernel advances point neurons)")
    lines = node_currents(block, constant, lambda c, values: constant(_single(values)),
                          lambda: constant(block.area_factor.detach()), synaptic)
    lines += [
        f"dv = (inj - membrane_i) / ({constant(block.capacitance.detach())} / {constant(step_dt(method, dt))} + membrane_g)",
        voltage_update(method),
    ]
    if reset is not None:
        threshold, v_reset = reset
        lines += ["v_free = new_s0",
                  f"new_s0 = v_free + {functions['heaviside']}(v_free - {constant(threshold)}) * ({constant(v_reset)} - v_free)"]
    return lines + pools_and_gates(block, celsius, dt, constant, functions, rewrite)


def step_dt(method, dt):
    """The implicit step of the voltage solve (ms): dt for backward Euler, dt/2 for Crank–Nicolson's half step."""
    return dt if method == "backward_euler" else dt / 2


def voltage_update(method):
    """new_s0 from the solve's ``dv`` (Crank–Nicolson extrapolates its half step)."""
    return "new_s0 = s0 + dv" if method == "backward_euler" else "new_s0 = s0 + 2.0 * dv"


def node_currents(block, constant, density, area_factor, synaptic=False):
    """Statements giving one node's ionic conductance ``membrane_g`` (µS) and current ``membrane_i``
    (nA) at v = ``s0`` with the gates ``s1``, ...: ``density(c, values)`` is the text of channel c's
    density (S/cm²; ``values`` its per-node tensor) and ``area_factor()`` the text of the node's
    area × 10⁻² (µm² · S/cm² → µS), asked for after the channels' numbers. Channel c's conductance and current densities are ``g<c>``, ``i<c>``."""
    local = _locals(block)
    lines, currents, conductances = [], [], []
    for c, (channel, values, reversal) in enumerate(block.channels):
        powers = [" * ".join([local[f"{channel.name}.{gate.name}"]] * gate.power) for gate in channel.gates]
        fraction = " * ".join(f"({p})" for p in powers)
        lines.append(f"g{c} = {density(c, values.detach())}" + (f" * ({fraction})" if fraction else ""))
        lines.append(f"i{c} = g{c} * (s0 - {constant(reversal)})")
        currents.append(f"i{c}")
        conductances.append(f"g{c}")
    area = area_factor()
    lines += [
        f"membrane_g = ({' + '.join(conductances) or '0.0'}) * {area}",
        f"membrane_i = ({' + '.join(currents) or '0.0'}) * {area}",
    ]
    if synaptic:
        lines += ["membrane_g = membrane_g + lin_g", "membrane_i = membrane_i + lin_g * s0 - lin_ge"]
    return lines


def pools_and_gates(block, celsius, dt, constant, functions, rewrite=None):
    """Statements advancing one node's calcium pools and gates over ``dt`` ms from the new voltage
    ``new_s0`` (after ``node_currents``, whose ``i<c>`` feed the pools): assign the gates' and
    [Ca]i's ``new_s<k>``. A pool must cover every node or none (NotCompilable otherwise)."""
    rewrite = rewrite or (lambda text: text)
    curve = lambda c, variables: rewrite(c.source(variables, functions, constant))
    expm1 = functions["expm1"]
    local = _locals(block)
    lines = []
    variables = {"v": "new_s0"}
    if "cai" in local:
        ca = local["cai"]
        lines.append(f"ca = {ca}")
        calcium = [f"i{c}" for c, (channel, _, _) in enumerate(block.channels) if channel.ion == "ca"]
        i_calcium = " + ".join(calcium) or "0.0"
        for pool, mask in block.pools:
            if bool(mask.all()):
                influx = f"{constant(-pool.gamma * 1e4)} * ({i_calcium}) / {constant(2 * FARADAY * pool.depth)}"
                decay_factor = torch.exp(-dt / pool.decay) if torch.is_tensor(pool.decay) else math.exp(-dt / pool.decay)
                lines.append(f"target = {constant(pool.rest)} + {influx} * {constant(pool.decay)}")
                lines.append(f"ca = target + (ca - target) * {constant(decay_factor)}")
            elif bool(mask.any()):
                raise NotCompilable("a calcium pool on some sections only")
        lines.append(f"new_{ca} = ca")
        variables["cai"] = "ca"
    for channel, _, _ in block.channels:
        rate = constant(-dt * channel.rate_factor(celsius))
        for gate in channel.gates:
            s = local[f"{channel.name}.{gate.name}"]
            if gate.alpha is not None:
                lines.append(f"a = {curve(gate.alpha, variables)}")
                lines.append(f"b = {curve(gate.beta, variables)}")
                lines.append("total = a + b")
                lines.append(f"new_{s} = {s} + ({s} - a / total) * {expm1}({rate} * total)")
            else:
                lines.append(f"inf = {curve(gate.inf, variables)}")
                lines.append(f"tau = {curve(gate.tau, variables)}")
                lines.append(f"new_{s} = {s} + ({s} - inf) * {expm1}({rate} / tau)")
    return lines


def _locals(block):
    return {name: f"s{k}" for k, name in enumerate(block.state_names())}


def _single(values):
    if values.numel() != 1:
        raise NotCompilable("a batched conductance density")
    return values
