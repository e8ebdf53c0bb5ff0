"""Curves of a gate: rate functions α(V), β(V), steady states x∞(V) and time constants τ(V).

Each curve is declarative data (a ``kind`` plus named numeric parameters) and callable on a
dict of state variables (``{"v": tensor}`` in mV, plus ``"cai"`` in mM for calcium-dependent
gates). Parameters are floats or tensors; a tensor with ``requires_grad`` makes that parameter
learnable, and a tensor of shape (B, 1, 1) gives B parameter sets in one batched run.

Forms (rates in 1/ms, time constants in ms, voltages in mV):

* ``exp``           rate · exp((x − midpoint)/scale)                       (NeuroML HHExpRate)
* ``sigmoid``       rate / (1 + exp(−(x − midpoint)/scale))                (NeuroML HHSigmoidRate)
* ``exp_linear``    rate · u / (1 − exp(−u)),  u = (x − midpoint)/scale    (NeuroML HHExpLinearRate)
* ``boltzmann``     low + (high − low) / (1 + exp(−(x − midpoint)/slope))  (steady states)
* ``bell``          base + amplitude / (exp((x − mid_rise)/scale_rise) + exp(−(x − mid_fall)/scale_fall))
* ``hill``          x^n / (x^n + kd^n)                                      (ligand gating, x = [Ca]i)
* ``constant``      value
* ``tabulated``     monotone cubic (PCHIP) through control points, flat outside them
* ``expression``    a whitelisted user expression (see ``expressions.py``)
"""

import functools

import torch

from ..errors import ModelError
from .expressions import CONSTANTS, Expression


def as_tensor(value, like):
    """A parameter as a tensor on ``like``'s device and dtype (keeps autograd history)."""
    if torch.is_tensor(value):
        return value.to(device=like.device, dtype=like.dtype)
    return torch.as_tensor(value, device=like.device, dtype=like.dtype)


class Curve:
    """Base class. A parametric form is one whitelisted ``template`` in ``x`` and its parameters:
    the same parsed template gives the tensor evaluation and the generated kernels' source."""

    kind = None
    parameter_names = ()
    template = None

    def __init__(self, variable="v", **parameters):
        self.variable = variable
        for name in self.parameter_names:
            if name not in parameters:
                raise ModelError(f"{self.kind} curve needs parameter {name!r}")
            setattr(self, name, parameters.pop(name))
        if parameters:
            raise ModelError(
                f"{self.kind} curve has no parameter {next(iter(parameters))!r}; "
                f"its parameters are {', '.join(self.parameter_names)}"
            )

    def _parsed(self):
        return _template(type(self))

    def __call__(self, state):
        x = state[self.variable]
        value = self._parsed().evaluate({"x": x, **self.parameters()})
        return value if torch.is_tensor(value) else as_tensor(value, x).expand_as(x)

    def source(self, variables, functions, constant=None):
        """Source text of this curve for a code generator: ``variables`` maps state names ("v", "cai")
        to their text; ``constant(value)`` gives the text that stands for a parameter value (by default
        the value written in as a literal; a generator may instead pass values in at run time)."""
        constant = constant or literal
        names = {"x": variables[self.variable]}
        names.update({name: constant(value) for name, value in self.parameters().items()})
        return self._parsed().source(names, functions)

    def parameters(self):
        return {name: getattr(self, name) for name in self.parameter_names}

    def to_dict(self):
        data = {"kind": self.kind}
        if self.variable != "v":
            data["variable"] = self.variable
        for name, value in self.parameters().items():
            data[name] = plain_value(value)
        return data

    def __repr__(self):
        args = ", ".join(f"{k}={plain_value(v)}" for k, v in self.parameters().items())
        return f"{type(self).__name__}({args})"


@functools.cache
def _template(cls):
    return Expression(cls.template, {"x", *cls.parameter_names})


def literal(value):
    """A parameter as source text; only plain numbers (or one-element tensors) can be compiled in."""
    return repr(scalar(value))


def scalar(value):
    """A parameter as a float for generated code; batched tensors and tables cannot be."""
    if isinstance(value, (list, tuple)):
        raise NotCompilable("a table of values (the generator must pass tables in)")
    if torch.is_tensor(value):
        if value.numel() != 1:
            raise NotCompilable("a batched (multi-element) parameter")
        value = float(value.detach())
    return float(value)


class NotCompilable(Exception):
    """This curve cannot be written into generated code; the tensor path runs it instead."""


def plain_value(value):
    """A parameter as saved in a project: tensors become floats (scalars only), lists stay lists."""
    if torch.is_tensor(value):
        if value.numel() != 1:
            raise ModelError("only scalar parameters can be saved; a batched tensor parameter is a run-time setting")
        return float(value.detach())
    if isinstance(value, (list, tuple)):
        return [plain_value(v) for v in value]
    return value


class ExpRate(Curve):
    kind = "exp"
    parameter_names = ("rate", "midpoint", "scale")
    template = "rate * exp((x - midpoint) / scale)"


class SigmoidRate(Curve):
    kind = "sigmoid"
    parameter_names = ("rate", "midpoint", "scale")
    template = "rate * sigmoid((x - midpoint) / scale)"


class ExpLinearRate(Curve):
    kind = "exp_linear"
    parameter_names = ("rate", "midpoint", "scale")
    template = "rate * explinear((x - midpoint) / scale)"


class Boltzmann(Curve):
    kind = "boltzmann"
    parameter_names = ("midpoint", "slope", "low", "high")
    template = "low + (high - low) * sigmoid((x - midpoint) / slope)"

    def __init__(self, variable="v", low=0.0, high=1.0, **parameters):
        super().__init__(variable, low=low, high=high, **parameters)


class BellTau(Curve):
    kind = "bell"
    parameter_names = ("base", "amplitude", "mid_rise", "scale_rise", "mid_fall", "scale_fall")
    template = "base + amplitude / (exp((x - mid_rise) / scale_rise) + exp(-(x - mid_fall) / scale_fall))"


class Hill(Curve):
    kind = "hill"
    parameter_names = ("kd", "n")
    template = "(abs(x) / kd) ** n / (1 + (abs(x) / kd) ** n)"


class Constant(Curve):
    kind = "constant"
    parameter_names = ("value",)
    template = "value"


class Tabulated(Curve):
    """Monotone piecewise-cubic (PCHIP, Fritsch–Carlson) interpolant through control points.

    ``points`` (the x positions, fixed) and ``values`` (a list of floats or a 1-D tensor that
    may require grad). PCHIP keeps x∞ inside [0, 1] and τ positive between points that
    are, which a cubic spline would not when a user drags a point.
    """

    kind = "tabulated"
    parameter_names = ("points", "values")

    def __init__(self, variable="v", **parameters):
        super().__init__(variable, **parameters)
        points = [float(p) for p in self.points]
        if len(points) < 2:
            raise ModelError("tabulated curve needs at least two control points")
        if any(b <= a for a, b in zip(points, points[1:])):
            raise ModelError("tabulated curve: control point positions must be strictly increasing")
        n_values = self.values.numel() if torch.is_tensor(self.values) else len(self.values)
        if n_values != len(points):
            raise ModelError(f"tabulated curve: {len(points)} points but {n_values} values")
        self.points = points

    def source(self, variables, functions, constant=None):
        """``functions["pchip"](x, points, values, slopes)`` with the three tables passed through
        ``constant`` as lists (which the default, literals, refuses: tables are run-time data)."""
        if "pchip" not in functions:
            raise NotCompilable("a tabulated curve (this generator has no PCHIP function)")
        constant = constant or literal
        values = self.values.detach().double() if torch.is_tensor(self.values) else torch.tensor(self.values, dtype=torch.float64)
        if values.dim() != 1:
            raise NotCompilable("a batched tabulated curve")
        slopes = pchip_slopes(torch.tensor(self.points, dtype=torch.float64), values)
        tables = [constant(list(map(float, table))) for table in (self.points, values.tolist(), slopes.tolist())]
        return f"{functions['pchip']}({variables[self.variable]}, {', '.join(tables)})"

    def __call__(self, state):
        x = state[self.variable]
        xk = torch.as_tensor(self.points, dtype=x.dtype, device=x.device)
        yk = as_tensor(self.values, x)
        slopes = pchip_slopes(xk, yk)
        xc = x.clamp(xk[0], xk[-1])
        index = (torch.searchsorted(xk, xc.detach().contiguous(), right=True) - 1).clamp(0, len(self.points) - 2)
        x0, h = xk[index], (xk[1:] - xk[:-1])[index]
        t = (xc - x0) / h
        t2, t3 = t * t, t * t * t
        return (
            (2 * t3 - 3 * t2 + 1) * yk[index]
            + (t3 - 2 * t2 + t) * h * slopes[index]
            + (-2 * t3 + 3 * t2) * yk[index + 1]
            + (t3 - t2) * h * slopes[index + 1]
        )


def pchip_slopes(xk, yk):
    """Derivatives at the control points, as in Fritsch & Carlson (1980) and scipy's PchipInterpolator."""
    h = xk[1:] - xk[:-1]
    delta = (yk[1:] - yk[:-1]) / h
    if len(xk) == 2:
        return torch.stack([delta[0], delta[0]])
    w1 = 2 * h[1:] + h[:-1]
    w2 = h[1:] + 2 * h[:-1]
    same_sign = (delta[:-1] * delta[1:]) > 0
    safe_left = torch.where(same_sign, delta[:-1], torch.ones_like(delta[:-1]))
    safe_right = torch.where(same_sign, delta[1:], torch.ones_like(delta[1:]))
    interior = torch.where(same_sign, (w1 + w2) / (w1 / safe_left + w2 / safe_right), torch.zeros_like(w1))
    return torch.cat([_end_slope(h[0], h[1], delta[0], delta[1]), interior, _end_slope(h[-1], h[-2], delta[-1], delta[-2])])


def _end_slope(h0, h1, d0, d1):
    slope = ((2 * h0 + h1) * d0 - h0 * d1) / (h0 + h1)
    slope = torch.where(torch.sign(slope) != torch.sign(d0), torch.zeros_like(slope), slope)
    overshoot = (torch.sign(d0) != torch.sign(d1)) & (slope.abs() > 3 * d0.abs())
    return torch.where(overshoot, 3 * d0, slope).reshape(1)


class ExpressionCurve(Curve):
    """A curve given as whitelisted text, e.g. ``"0.07 * exp(-(v + 65) / 20)"``.

    ``parameters`` maps extra names used in the text to numbers (or learnable tensors).
    """

    kind = "expression"

    def __init__(self, expression, parameters=None, variable="v"):
        self.variable = variable
        self.expression_parameters = dict(parameters or {})
        reserved = {"v", "cai", *CONSTANTS} & set(self.expression_parameters)
        if reserved:
            raise ModelError(f"expression parameter {sorted(reserved)[0]!r} shadows a built-in name; rename it")
        self.expression = Expression(expression, {"v", "cai"} | set(self.expression_parameters))

    def __call__(self, state):
        env = dict(self.expression_parameters)
        env.update({name: state[name] for name in self.expression.names if name in state})
        value = self.expression.evaluate(env)
        return value if torch.is_tensor(value) else as_tensor(value, state["v"])

    def _parsed(self):
        return self.expression

    def source(self, variables, functions, constant=None):
        constant = constant or literal
        names = {name: variables[name] for name in ("v", "cai") if name in self.expression.names}
        names.update({name: constant(value) for name, value in self.expression_parameters.items()})
        return self.expression.source(names, functions)

    def parameters(self):
        return dict(self.expression_parameters)

    def to_dict(self):
        data = {"kind": self.kind, "expression": self.expression.text}
        if self.expression_parameters:
            data["parameters"] = {k: plain_value(v) for k, v in self.expression_parameters.items()}
        if self.variable != "v":
            data["variable"] = self.variable
        return data

    def __repr__(self):
        return f"ExpressionCurve({self.expression.text!r})"


CURVE_KINDS = {cls.kind: cls for cls in (ExpRate, SigmoidRate, ExpLinearRate, Boltzmann, BellTau, Hill, Constant, Tabulated)}


def curve_from_dict(data, where="curve"):
    """Build a curve from its ``to_dict`` form; errors name ``where`` (a path in the project file)."""
    if not isinstance(data, dict) or "kind" not in data:
        raise ModelError(f"{where}: a curve is an object with a 'kind' field")
    data = dict(data)
    kind = data.pop("kind")
    if kind == "expression":
        try:
            return ExpressionCurve(data["expression"], data.get("parameters"), data.get("variable", "v"))
        except KeyError:
            raise ModelError(f"{where}.expression: missing; an expression curve needs its text") from None
        except ModelError as err:
            raise ModelError(f"{where}.expression: {err}") from None
    if kind not in CURVE_KINDS:
        raise ModelError(f"{where}.kind: unknown curve kind {kind!r}; use one of {', '.join(sorted(CURVE_KINDS) + ['expression'])}")
    try:
        return CURVE_KINDS[kind](**data)
    except ModelError as err:
        raise ModelError(f"{where}: {err}") from None
    except TypeError as err:
        raise ModelError(f"{where}: {err}") from None
