"""Draggable handles on a gate's curves, and what dragging one does to the curve's parameters.

Pure logic on the document's curve dicts (no Panel, no Bokeh), so it is unit-testable.
A curve has a *role* in its gate: "inf" (x∞, 0..1), "tau" (τ, ms), "alpha" or "beta" (1/ms).
Handles are given in plot units: the plot shows a raw curve value times ``yscale`` (the Q10
factor for rates, its inverse for τ), so drags are divided by ``yscale`` before being stored.

Per form:
* exp, sigmoid, exp_linear: a *midpoint* handle (horizontal → midpoint, vertical → rate) and a
  *scale* handle at midpoint + scale (horizontal → scale; it cannot cross the midpoint).
* boltzmann: *midpoint* (horizontal) and *slope* at midpoint + slope (horizontal).
* bell: *mid_rise* and *mid_fall* (horizontal → that midpoint, vertical → amplitude).
* hill: *kd* (horizontal). constant: *value* (vertical), drawn at ``anchor``.
* tabulated: every control point (vertical → its value; positions stay fixed).
* expression: none (its parameters are edited as numbers).
"""

import math
from dataclasses import dataclass

import torch

from brainfuse_core.channels import Tabulated, curve_from_dict

# Smallest τ (ms) and |scale| or |slope| (mV) a drag may produce: τ must stay positive and a
# scale that reaches 0 would divide by zero.
MIN_TAU = 1e-3
MIN_SCALE = 0.5
RATE_AT_MIDPOINT = {"exp": 1.0, "sigmoid": 0.5, "exp_linear": 1.0}
NONZERO = {"scale", "slope", "scale_rise", "scale_fall"}
POSITIVE = {"kd", "n"}
NON_NEGATIVE = {"rate", "amplitude", "base"}
FRACTION = {"low", "high"}


@dataclass(frozen=True)
class Handle:
    name: str
    x: float
    y: float


def curve_handles(data, role, yscale=1.0, anchor=0.0):
    """The handles of curve ``data`` (a document curve dict), in plot units."""
    kind = data["kind"]
    curve = curve_from_dict(data)

    def at(name, x):
        return Handle(name, float(x), float(_value(curve, x)) * yscale)

    if kind in RATE_AT_MIDPOINT:
        return [at("midpoint", data["midpoint"]), at("scale", data["midpoint"] + data["scale"])]
    if kind == "boltzmann":
        return [at("midpoint", data["midpoint"]), at("slope", data["midpoint"] + data["slope"])]
    if kind == "bell":
        return [at("mid_rise", data["mid_rise"]), at("mid_fall", data["mid_fall"])]
    if kind == "hill":
        return [at("kd", data["kd"])]
    if kind == "constant":
        return [Handle("value", float(anchor), float(data["value"]) * yscale)]
    if kind == "tabulated":
        return [Handle(f"point {i}", float(x), float(y) * yscale) for i, (x, y) in enumerate(zip(data["points"], data["values"]))]
    return []


def moved_handles(handles, xs, ys, tolerance=1e-9):
    """[(index, x, y)] of the handles whose position differs from ``xs``, ``ys`` (the dragged data).
    Returns None when the data no longer has one row per handle (a point was added or deleted)."""
    if len(xs) != len(handles) or len(ys) != len(handles):
        return None
    moves = []
    for index, (handle, x, y) in enumerate(zip(handles, xs, ys)):
        x, y = float(x), float(y)
        if not (math.isfinite(x) and math.isfinite(y)):
            return None
        if abs(x - handle.x) > tolerance * max(1.0, abs(handle.x)) or abs(y - handle.y) > tolerance * max(1.0, abs(handle.y)):
            moves.append((index, x, y))
    return moves


def drag_curve(data, role, moves, yscale=1.0):
    """A new curve dict after the handles in ``moves`` ([(index, x, y)] in plot units) were dragged."""
    data = dict(data)
    if data["kind"] == "tabulated":
        data["values"] = list(data["values"])
        data["points"] = list(data["points"])
    names = [h.name for h in curve_handles(data, role, yscale)]
    for index, x, y in moves:
        _drag(data, role, names[index], index, x, y / yscale)
    return data


def _drag(data, role, name, index, x, y):
    """Apply one handle moved to (x, raw y) to ``data`` in place."""
    kind = data["kind"]
    if kind in RATE_AT_MIDPOINT:
        if name == "midpoint":
            data["midpoint"] = x
            data["rate"] = max(y, 0.0) / RATE_AT_MIDPOINT[kind]
        else:
            data["scale"] = _same_sign(x - data["midpoint"], data["scale"])
    elif kind == "boltzmann":
        if name == "midpoint":
            data["midpoint"] = x
        else:
            data["slope"] = _same_sign(x - data["midpoint"], data["slope"])
    elif kind == "bell":
        data[name] = x
        shape = _value(curve_from_dict(dict(data, base=0.0, amplitude=1.0)), x)
        if shape > 0:
            data["amplitude"] = max((y - data["base"]) / float(shape), 0.0)
    elif kind == "hill":
        data["kd"] = max(x, 1e-9)
    elif kind == "constant":
        data["value"] = clamp(role, y)
    elif kind == "tabulated":
        data["values"][index] = clamp(role, y)


def _same_sign(value, reference):
    """``value`` with the sign of ``reference`` and a magnitude of at least MIN_SCALE: dragging a
    scale handle across its midpoint would reverse the curve, which is never what a drag means."""
    sign = 1.0 if reference > 0 else -1.0
    return sign * max(value * sign, MIN_SCALE)


def clamp(role, value):
    """A curve value kept inside what its role allows: x∞ in [0, 1], τ > 0, rates ≥ 0."""
    if role == "inf":
        return min(max(value, 0.0), 1.0)
    if role == "tau":
        return max(value, MIN_TAU)
    return max(value, 0.0)


def check_parameter(kind, role, name, value):
    """Why ``value`` is not allowed for parameter ``name`` of a ``kind`` curve in ``role``, or None."""
    if name in NONZERO and value == 0:
        return f"{name} must not be 0 (it divides the voltage)"
    if name in POSITIVE and value <= 0:
        return f"{name} must be positive"
    if name in NON_NEGATIVE and value < 0:
        return f"{name} must be ≥ 0"
    if name in FRACTION and not 0 <= value <= 1:
        return f"{name} is a fraction between 0 and 1"
    if kind == "constant" and clamp(role, value) != value:
        return {"inf": "x∞ lies between 0 and 1", "tau": "τ must be positive (ms)"}.get(role, "rates must be ≥ 0 (1/ms)")
    return None


def tabulate_gate(channel, gate_name, points):
    """A gate dict in x∞/τ form whose curves are ``Tabulated`` through the channel's current x∞ and τ
    at ``points`` (mV). τ is sampled at the channel's own temperature, so that the Q10 factor
    applied at run time gives back the same τ as before."""
    gate = next(g for g in channel.gates if g.name == gate_name)
    v = torch.as_tensor(points, dtype=torch.float64)
    curves = channel.curves(v, celsius=channel.temperature)[gate_name]
    return {
        "power": gate.power,
        "inf": Tabulated(points=list(map(float, points)), values=[clamp("inf", float(y)) for y in curves["inf"]]).to_dict(),
        "tau": Tabulated(points=list(map(float, points)), values=[clamp("tau", float(y)) for y in curves["tau"]]).to_dict(),
    }


def _value(curve, x):
    state = {"v": torch.tensor([float(x)], dtype=torch.float64), "cai": torch.tensor([float(x)], dtype=torch.float64)}
    return float(curve(state)[0])
