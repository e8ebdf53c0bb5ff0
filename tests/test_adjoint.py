"""The adjoint of straight-line statements (solvers/adjoint.py) against torch autograd of the same
statements evaluated with torch in float64, and against central finite differences.

Statement lists: random ones (every operator and function, reassigned names, constant and
variable exponents, both branches of explinear, pchip inside and outside its table) and one step
of cells covering every library channel, a tabulated channel and an expression channel, both
methods, as ``point_step`` writes them. The adjoint statements are evaluated with numpy scalars
(IEEE division: ``where`` evaluates both branches).
"""

import math
import random

import numpy as np
import pytest
import torch

import brainfuse_core as bf
from brainfuse_core.channels.channel import Channel, Gate
from brainfuse_core.channels.curves import Constant, ExpressionCurve, Hill, Tabulated
from brainfuse_core.channels.expressions import _explinear
from brainfuse_core.errors import ModelError
from brainfuse_core.solvers.adjoint import NEUTRAL, adjoint, render
from brainfuse_core.solvers.gradient_kernel import Parameters
from brainfuse_core.solvers.membrane import CompiledCell
from brainfuse_core.solvers.step_source import point_step

AREA = 31416.0  # µm²
POINTS = [-2.0, -1.0, -0.2, 0.5, 1.5]  # the random statements' table
FD_ABSOLUTE = 1e-9  # central differences with h = 1e-6 on losses of size ~1-100: rounding ~1e-10 · |loss|


def _pchip_torch(x, points, values, slopes):
    """The tabulated curve's cubic (as Tabulated.__call__) with its slopes given."""
    xc = x.clamp(points[0], points[-1])
    k = int((torch.searchsorted(points, xc.detach().reshape(1), right=True) - 1).clamp(0, len(points) - 2))
    h = points[k + 1] - points[k]
    t = (xc - points[k]) / h
    return ((2 * t**3 - 3 * t**2 + 1) * values[k] + (t**3 - 2 * t**2 + t) * h * slopes[k]
            + (-2 * t**3 + 3 * t**2) * values[k + 1] + (t**3 - t**2) * h * slopes[k + 1])


def _on_tensors(function):
    return lambda x, *tables: function(torch.as_tensor(x, dtype=torch.float64), *tables)


TORCH = {name: _on_tensors(f) for name, f in {
    "exp": torch.exp, "log": torch.log, "sqrt": torch.sqrt, "abs": torch.abs, "tanh": torch.tanh, "cosh": torch.cosh,
    "sigmoid": torch.sigmoid, "explinear": _explinear, "expm1": torch.expm1, "pchip": _pchip_torch,
    "heaviside": lambda x: (x >= 0).to(torch.float64)}.items()}


def _interval(x, points):
    return int(np.clip(np.searchsorted(points, np.clip(x, points[0], points[-1]), side="right") - 1, 0, len(points) - 2))


def _pchip_numpy(x, points, values, slopes):
    k = _interval(x, points)
    h = points[k + 1] - points[k]
    t = (np.clip(x, points[0], points[-1]) - points[k]) / h
    return ((2 * t**3 - 3 * t**2 + 1) * values[k] + (t**3 - 2 * t**2 + t) * h * slopes[k]
            + (-2 * t**3 + 3 * t**2) * values[k + 1] + (t**3 - t**2) * h * slopes[k + 1])


def _accumulate(table, k, value):
    table[k] += value


NUMPY = {"exp": np.exp, "log": np.log, "sqrt": np.sqrt, "abs": np.abs, "tanh": np.tanh, "cosh": np.cosh,
         "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
         "explinear": lambda x: 1.0 + 0.5 * x if abs(x) < 1e-6 else x / -np.expm1(-x), "expm1": np.expm1,
         "pchip": _pchip_numpy, "heaviside": lambda x: 1.0 if x >= 0 else 0.0, "sinh": np.sinh, "sign": np.sign, "where": lambda c, a, b: a if c else b,
         "at": lambda table, k: table[k], "accumulate": _accumulate, "pchip_interval": _interval,
         "pchip_clamp": lambda x, points: np.clip(x, points[0], points[-1])}


def _run(statements, values, functions):
    """Executes our own generated statements (test only) with ``values`` and returns the namespace."""
    namespace = {**functions, **values}
    exec("\n".join(statements), namespace)
    return namespace


class Problem:
    """Statements with their inputs: ``scalars`` name → float, ``tables`` name → list (differentiable),
    ``constants`` name → list (a pchip's points), ``outputs`` names, ``weights`` of the loss Σ w·output."""

    def __init__(self, statements, scalars, tables, constants, outputs, seed):
        self.statements, self.scalars, self.tables, self.constants, self.outputs = statements, scalars, tables, constants, outputs
        rng = np.random.default_rng(seed)
        self.weights = dict(zip(outputs, rng.uniform(0.5, 1.5, len(outputs)) * rng.choice([-1, 1], len(outputs))))

    def loss_torch(self, leaves):
        values = {name: torch.tensor(v, dtype=torch.float64) for name, v in self.constants.items()}
        namespace = _run(self.statements, {**values, **leaves}, TORCH)
        return sum(self.weights[name] * namespace[name] for name in self.outputs)

    def autograd(self):
        leaves = {name: torch.tensor(v, dtype=torch.float64, requires_grad=True) for name, v in {**self.scalars, **self.tables}.items()}
        self.loss_torch(leaves).backward()
        return {name: leaf.grad.numpy() if leaf.grad is not None else np.zeros(leaf.shape) for name, leaf in leaves.items()}

    def adjoint(self):
        statements = adjoint(self.statements, list(self.scalars), self.outputs, list(self.tables))
        values = {name: np.float64(v) for name, v in self.scalars.items()}
        values.update({name: np.array(v, dtype=np.float64) for name, v in {**self.tables, **self.constants}.items()})
        values.update({f"d_{name}": np.zeros(len(v)) for name, v in self.tables.items()})
        values.update({f"d_{name}": np.float64(self.weights[name]) for name in self.outputs})
        with np.errstate(all="ignore"):
            namespace = _run(statements, values, NUMPY)
        return {name: np.asarray(namespace[f"d_{name}"], dtype=np.float64) for name in [*self.scalars, *self.tables]}

    def finite_differences(self, names):
        """Central differences of the loss along each scalar input in ``names`` (h = 1e-6·max(1, |x|))."""
        result = {}
        for name in names:
            h = 1e-6 * max(1.0, abs(self.scalars[name]))
            losses = []
            for sign in (1, -1):
                leaves = {n: torch.tensor(v, dtype=torch.float64) for n, v in {**self.scalars, **self.tables}.items()}
                leaves[name] = leaves[name] + sign * h
                losses.append(float(self.loss_torch(leaves)))
            result[name] = (losses[0] - losses[1]) / (2 * h)
        return result


def _assert_close(found, expected, tolerance, what, absolute=0.0):
    """Each gradient within ``tolerance`` relative to itself or, for those that nearly vanish, to 1e-6 of
    the largest, plus ``absolute`` (finite differences resolve only ~1e-10 of the loss per unit h)."""
    scale = max(float(np.max(np.abs(v))) for v in expected.values())
    assert scale > 0, f"{what}: every gradient vanishes, so the check is empty"
    for name in expected:
        bound = tolerance * np.maximum(np.abs(expected[name]), 1e-6 * scale) + absolute
        error = np.max(np.abs(np.asarray(found[name]) - expected[name]) - bound)
        assert error <= 0, f"{what}: d/d{name} {found[name]!r} vs {expected[name]!r}"


def _random_expression(rng, names, depth):
    if depth == 0 or rng.random() < 0.2:
        return rng.choice(names) if rng.random() < 0.85 else repr(round(rng.uniform(-2, 2), 3))
    e = lambda: _random_expression(rng, names, depth - 1)
    square = lambda: (lambda x: f"{x} * {x}")(e())
    forms = [
        lambda: f"({e()} + {e()})", lambda: f"({e()} - {e()})", lambda: f"({e()} * {e()})",
        lambda: f"({e()} / (2.5 + tanh({e()})))", lambda: f"(1.0 / (1.2 + sigmoid({e()})))", lambda: f"(-{e()})",
        lambda: f"exp(tanh({e()}))", lambda: f"log(1.0 + {square()})", lambda: f"sqrt(0.5 + abs({e()}))",
        lambda: f"abs({e()})", lambda: f"tanh({e()})", lambda: f"cosh(tanh({e()}))", lambda: f"sigmoid({e()})",
        lambda: f"explinear(3.0 * tanh({e()}))", lambda: f"explinear(1e-07 * tanh({e()}))",
        lambda: f"explinear(0.0001 * {e()})", lambda: f"expm1(tanh({e()}))",
        lambda: f"(tanh({e()}) ** 2)", lambda: f"(tanh({e()}) ** 3)", lambda: f"((1.0 + {square()}) ** 1.5)",
        lambda: f"((1.5 + tanh({e()})) ** sigmoid({e()}))", lambda: f"(2.0 ** tanh({e()}))",
        lambda: f"pchip(3.0 * tanh({e()}), points, values, slopes)", lambda: f"({e()} * heaviside({e()}))",
    ]
    return rng.choice(forms)()


def _random_problem(seed):
    rng = random.Random(seed)
    scalars = {name: rng.uniform(-1.5, 1.5) for name in ("s0", "s1", "s2", "inj", "p0", "p1")}
    names = list(scalars)
    statements = []
    for k in range(12):
        target = rng.choice(["a", "b", "total", f"t{k}"])
        statements.append(f"{target} = {_random_expression(rng, names, 3)}")
        names.append(target)
    outputs = ["new_s0", "new_s1", "new_s2"]
    for name in outputs:
        statements.append(f"{name} = {_random_expression(rng, names, 3)}")
        names.append(name)
    tables = {"values": [rng.uniform(-1, 1) for _ in POINTS], "slopes": [rng.uniform(-1, 1) for _ in POINTS]}
    return Problem(statements, scalars, tables, {"points": POINTS}, outputs, seed)


@pytest.mark.parametrize("seed", range(12))
def test_random_statements_match_autograd_and_finite_differences(seed):
    problem = _random_problem(seed)
    expected = problem.autograd()
    found = problem.adjoint()
    _assert_close(found, expected, 1e-10, f"seed {seed}")
    _assert_close({n: found[n] for n in problem.scalars}, problem.finite_differences(problem.scalars), 1e-6, f"seed {seed} FD",
                  absolute=FD_ABSOLUTE)


def test_every_rule_is_exercised():
    """The random lists reach pchip inside and on both flat ends, and every function."""
    text = "\n".join("\n".join(_random_problem(seed).statements) for seed in range(12))
    for name in [*NEUTRAL, "**"]:
        assert name in text, name
    positions = []
    for seed in range(12):
        problem = _random_problem(seed)
        original = _pchip_torch
        seen = lambda x, *tables: positions.append(float(x)) or original(x, *tables)
        _run(problem.statements, {**{n: torch.tensor(v, dtype=torch.float64) for n, v in {**problem.scalars, **problem.tables, **problem.constants}.items()}},
             {**TORCH, "pchip": seen})
    assert min(positions) < POINTS[0] and max(positions) > POINTS[-1]
    assert any(POINTS[0] < x < POINTS[-1] for x in positions)


def _hh():
    return bf.Cell.point(area=AREA, channels=[bf.channel("hh_na"), bf.channel("hh_k"), bf.channel("leak")])


def _traub_slow():
    return bf.Cell.point(area=AREA, channels=[bf.channel("traub_na"), bf.channel("traub_kd"), bf.channel("leak", gbar=5e-5, reversal=-65.0),
                                              bf.channel("m_current", gbar=5e-4), bf.channel("ih", gbar=2e-4)])


def _calcium():
    hill_k = Channel("hill_k", [Gate("q", 1, inf=Hill(variable="cai", kd=2e-4, n=2.5), tau=Constant(value=5.0))], gbar=2e-3, ion="k")
    cell = bf.Cell.point(area=AREA, channels=[bf.channel("traub_na"), bf.channel("traub_kd"), bf.channel("ca_hva", gbar=2e-3),
                                              bf.channel("k_ahp", gbar=2e-3), hill_k])
    return cell.add_pool(bf.calcium_pool(decay=20.0))


def _custom():
    na = Channel("expr_na", [
        Gate("m", 3, alpha=ExpressionCurve("explinear((v + 40) / 10)"), beta=ExpressionCurve("4 * exp(-(v + 65) / 18)")),
        Gate("s", 1, inf=ExpressionCurve("(0.5 * (1 + tanh((v + 75) / 15))) ** 1.5"),
             tau=ExpressionCurve("1 + 4 / cosh((v + 50) / 30) + sqrt(abs(v)) / 100 + log(2 + abs(v + 65)) / 50")),
    ], gbar=0.12, ion="na", q10=3.0, temperature=6.3)
    points = [-100.0, -70.0, -50.0, -30.0, 0.0, 40.0]
    k = Channel("table_k", [Gate("n", 4, inf=Tabulated(points=points, values=[0.0, 0.25, 0.45, 0.75, 0.95, 1.0]),
                                 tau=Tabulated(points=points, values=[2.0, 5.0, 5.5, 3.0, 1.5, 1.0]))], gbar=0.036, ion="k")
    return bf.Cell.point(area=AREA, channels=[na, k, bf.channel("leak")])


CELLS = {"hh": (_hh, 6.3), "traub_slow": (_traub_slow, 36.0), "calcium": (_calcium, 36.0), "tabulated_expression": (_custom, 10.0)}


def test_cells_cover_every_library_channel():
    assert set(bf.channels.CHANNELS) <= {name for build, _ in CELLS.values() for name in build().channels}


def _step_problem(case, method, v, seed):
    build, celsius = CELLS[case]
    block = CompiledCell(build(), torch.float64, "cpu")
    parameters = Parameters(block)
    statements = point_step(block, celsius, method, 0.025, parameters, NEUTRAL)
    values = parameters.array().detach().numpy()
    rng = np.random.default_rng(seed)
    names = block.state_names()
    scalars = {"s0": v, "inj": 0.3}
    for k, name in enumerate(names[1:], 1):
        scalars[f"s{k}"] = rng.uniform(2e-4, 8e-4) if name == "cai" else rng.uniform(0.05, 0.9)
    scalars.update({name: float(values[parameters.slices[name][0]]) for name in parameters.scalars})
    tables, constants = {}, {}
    for name, (start, stop) in parameters.slices.items():
        if name not in parameters.scalars:
            (tables if name in parameters.tables else constants)[name] = values[start:stop].tolist()
    return Problem(statements, scalars, tables, constants, [f"new_s{k}" for k in range(len(names))], seed)


@pytest.mark.parametrize("method", ["backward_euler", "crank_nicolson"])
@pytest.mark.parametrize("case", sorted(CELLS))
def test_one_step_of_library_cells_matches_autograd(case, method):
    """At a voltage below, inside and above the tables' points, and at -40 mV (explinear at 0)."""
    for v in (-110.0, -64.0, -40.0, 20.0, 55.0):
        problem = _step_problem(case, method, v, seed=int(v + 200))
        expected = problem.autograd()
        _assert_close(problem.adjoint(), expected, 1e-10, f"{case} {method} v={v}")
        if case == "tabulated_expression":
            assert all(np.any(expected[name] != 0) for name in problem.tables), "a table gets no gradient"
    fd = problem.finite_differences(["s0", "s1", "inj"])
    _assert_close({n: problem.adjoint()[n] for n in fd}, fd, 1e-6, f"{case} {method} FD", absolute=FD_ABSOLUTE)


def test_outputs_that_do_not_depend_on_an_input_give_it_zero():
    statements = adjoint(["a = exp(x)", "y = a * a", "z = 3.0"], ["x", "w"], ["y", "z"])
    found = _run(statements, {"x": np.float64(0.5), "w": np.float64(2.0), "d_y": 1.0, "d_z": 1.0}, NUMPY)
    assert found["d_w"] == 0.0
    assert found["d_x"] == pytest.approx(2 * math.exp(1.0), rel=1e-15)


@pytest.mark.parametrize("statement, message", [
    ("y = x if x else 1.0", "cannot differentiate"), ("y += x", "is not a statement"), ("y = max(x, 1.0)", "cannot differentiate"),
    ("y = exp(x, 2)", "takes 1 arguments"), ("d_x = x", "reserves"),
])
def test_refuses_what_it_cannot_differentiate(statement, message):
    with pytest.raises(ModelError, match=message):
        adjoint([statement], ["x"], ["y"] if not statement.startswith("d_") else ["d_x"])


def test_render_maps_every_call_and_refuses_unknown_functions():
    assert render(["y = where(x < 1.0, exp(x), 0.0)"], {"where": "_where", "exp": "math.exp"}) == ["y = _where(x < 1.0, math.exp(x), 0.0)"]
    with pytest.raises(ModelError, match="no 'exp'"):
        render(["y = exp(x)"], {})
