"""The numbers the channel editor draws, computed from a core Channel: each gate's x∞, τ, α and β,
the steady-state I–V curve and a voltage-clamp family.

The clamp family is exact for a clamped membrane: at a fixed voltage each gate relaxes as
x(t) = x∞(V) + (x₀ − x∞(V))·exp(−t/τ(V)) from x₀ = x∞(V_hold), so no time stepping is needed.
Gates that depend on [Ca]i are drawn against [Ca]i (mM, at −65 mV); everywhere else [Ca]i is
held at its resting 5·10⁻⁵ mM.
"""

import numpy as np
import torch

from brainfuse_core.channels import Constant

V_RANGE = (-100.0, 50.0)
CAI_RANGE = (1e-5, 1e-1)
CAI_V = -65.0
N_SAMPLES = 151
HOLD = -80.0
LEVELS = tuple(float(v) for v in range(-60, 41, 10))
CLAMP_DURATION = 20.0
CLAMP_PRE = 2.0
CLAMP_SAMPLES = 221
TABULATION_POINTS = tuple(float(v) for v in np.linspace(V_RANGE[0], V_RANGE[1], 16))


def gate_axis(gate):
    """"cai" when the gate's kinetics read only [Ca]i (constants read nothing), else "v"."""
    names = set()
    for curve in gate.kinetics().values():
        if isinstance(curve, Constant):
            continue
        names |= curve.expression.names if hasattr(curve, "expression") else {curve.variable}
    return "cai" if names == {"cai"} else "v"


def axis_samples(axis, n=N_SAMPLES):
    if axis == "cai":
        return np.geomspace(*CAI_RANGE, n)
    return np.linspace(*V_RANGE, n)


def gate_curves(channel, celsius):
    """{gate: {"axis", "x", "inf", "tau", and for α/β gates "alpha", "beta"}} as numpy arrays;
    τ in ms and rates in 1/ms at ``celsius`` (°C)."""
    result = {}
    cache = {}
    for gate in channel.gates:
        axis = gate_axis(gate)
        if axis not in cache:
            x = axis_samples(axis)
            xt = torch.as_tensor(x, dtype=torch.float64)
            if axis == "cai":
                curves = channel.curves(torch.full_like(xt, CAI_V), celsius, cai=xt)
            else:
                curves = channel.curves(xt, celsius)
            cache[axis] = (x, curves)
        x, curves = cache[axis]
        entry = {"axis": axis, "x": x}
        entry.update({key: values.detach().numpy() for key, values in curves[gate.name].items()})
        result[gate.name] = entry
    return result


def steady_state_iv(channel, reversal, celsius):
    """(v mV, i∞ mA/cm²) over V_RANGE."""
    v = axis_samples("v")
    current = channel.steady_state_current(torch.as_tensor(v, dtype=torch.float64), reversal, celsius)
    return v, np.broadcast_to(torch.as_tensor(current).detach().numpy(), v.shape).copy()


def clamp_family(channel, reversal, celsius, hold=HOLD, levels=LEVELS, duration=CLAMP_DURATION):
    """(t ms, {level mV: i mA/cm²}) for steps from ``hold`` to each level at t = 0, with
    CLAMP_PRE ms of holding before."""
    t = np.linspace(-CLAMP_PRE, duration, CLAMP_SAMPLES)
    after = np.clip(t, 0.0, None)[None, :]
    v = torch.as_tensor([hold, *levels], dtype=torch.float64)
    curves = channel.curves(v, celsius)
    fraction = np.ones((len(levels), len(t)))
    for gate in channel.gates:
        inf = curves[gate.name]["inf"].detach().numpy()
        tau = curves[gate.name]["tau"].detach().numpy()
        start, inf, tau = inf[0], inf[1:, None], tau[1:, None]
        x = inf + (start - inf) * np.exp(-after / tau)
        fraction = fraction * x ** gate.power
    gbar = float(channel.gbar)
    command = np.where(t[None, :] < 0, hold, np.asarray(levels)[:, None])
    current = gbar * fraction * (command - reversal)
    return t, {level: current[k] for k, level in enumerate(levels)}


def peak_currents(t, family):
    """{level: the current of largest magnitude after the step}: the peak I–V of a clamp family."""
    after = t >= 0
    return {level: float(i[after][np.argmax(np.abs(i[after]))]) for level, i in family.items()}
