"""Reverse-mode differentiation of straight-line statements: the adjoint of one time step.

The input is what ``step_source.point_step`` writes with the neutral function table ``NEUTRAL``:
``name = expression`` lines of Python syntax (+ - * / **, unary −, calls of the functions in
``FORWARD_FUNCTIONS``), which may reassign names. ``adjoint`` parses them (``ast``), rewrites them in
three-address form with every operation's result given a fresh name (so a reassigned ``a`` or ``ca``
is two values), and writes, again as neutral statements:

1. the three-address forward (it recomputes every intermediate value from the step's inputs, in the
   same order of operations as the original statements, so with the same rounding);
2. the reverse sweep, one derivative rule per operator or function, from the output adjoints
   ``d_<output>`` (read, never assigned) back to ``d_<input>`` for every scalar input (assigned,
   0.0 where the outputs do not depend on it);
3. for each differentiable table ``T`` (a tabulated curve's values or slopes), statements
   ``accumulate(d_T, index, value)`` that add into the array ``d_T``.

Only what the outputs depend on is differentiated, and an intermediate's adjoint is summed once,
when the sweep reaches its definition (all its uses come later in the statements).

The adjoint calls a few functions beyond the forward's (``ADJOINT_FUNCTIONS``); a backend renders
the statements through its own table (``render``), so the numba kernels and the Triton kernels
share these statements.
"""

import ast

from ..errors import ModelError

# name → number of arguments. pchip(x, points, values, slopes): the tabulated curve's monotone cubic;
# heaviside(x): 1.0 where x ≥ 0, else 0.0 (an integrate-and-fire cell's reset).
FORWARD_FUNCTIONS = {"exp": 1, "log": 1, "sqrt": 1, "abs": 1, "tanh": 1, "cosh": 1, "sigmoid": 1, "explinear": 1,
                     "expm1": 1, "pchip": 4, "heaviside": 1}
# where(c, a, b): a where c holds, else b (both evaluated); sign(x): −1, 0 or 1; at(T, k): T[k];
# accumulate(T, k, value): T[k] += value (a statement); pchip_interval(x, points): the index k of the
# interval [points[k], points[k+1]] holding x clamped into the table (0 ≤ k ≤ n − 2, as the forward's);
# pchip_clamp(x, points): x clamped into [points[0], points[n − 1]].
ADJOINT_FUNCTIONS = {"sinh": 1, "sign": 1, "where": 3, "at": 2, "accumulate": 3, "pchip_interval": 2, "pchip_clamp": 2}
NEUTRAL = {name: name for name in FORWARD_FUNCTIONS}
# |x| below which explinear(x) is 1 + x/2: the threshold of every forward implementation.
EXPLINEAR_SMALL = 1e-6

_OPERATORS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}


def adjoint(statements, inputs, outputs, tables=()):
    """Adjoint statements of ``statements`` (see the module docstring).

    ``inputs``: names of the scalar inputs to differentiate (states, inj, parameters);
    ``outputs``: names whose adjoints ``d_<name>`` are given; ``tables``: names of the tables whose
    adjoints are accumulated into ``d_<name>`` (never a pchip's points). Other names the statements
    read are constants of the step. Returns a list of statements."""
    tape = _Tape(statements, set(inputs), set(tables))
    missing = [name for name in outputs if name not in tape.env]
    if missing:
        raise ModelError(f"adjoint: the statements never assign output {missing[0]!r}")
    reserved = {f"d_{name}" for name in (*inputs, *outputs, *tables)} & tape.assigned
    if reserved:
        raise ModelError(f"adjoint: the statements assign {sorted(reserved)[0]!r}, a name the adjoint reserves")
    sweep = _Sweep(tape)
    for name in outputs:
        sweep.add(tape.env[name], f"d_{name}")
    lines = [_render_record(record) for record in tape.records]
    lines += sweep.run()
    lines += [f"d_{name} = {sweep.total(name)}" for name in inputs]
    return lines


def render(statements, functions):
    """``statements`` with every function call renamed through ``functions`` (neutral name → the
    backend's); a name missing from the table is an error, so nothing reaches a backend unmapped."""
    rendered = []
    for line in statements:
        tree = ast.parse(line)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                if node.func.id not in functions:
                    raise ModelError(f"render: the backend's function table has no {node.func.id!r}")
                node.func = ast.Name(functions[node.func.id], ast.Load())
        rendered.append(ast.unparse(tree))
    return rendered


class _Tape:
    """The statements in three-address form: ``records`` of (target, operation, argument atoms), where
    an atom is a name or a number's text and every target is a fresh name; ``env`` maps each
    statement name to the atom holding its last value; ``active`` the atoms that depend on inputs."""

    def __init__(self, statements, inputs, tables):
        used = set()
        parsed = []
        for line in statements:
            try:
                tree = ast.parse(line)
            except SyntaxError as err:
                raise ModelError(f"adjoint: cannot parse statement {line!r}: {err.msg}") from None
            if len(tree.body) != 1 or not isinstance(tree.body[0], ast.Assign) or len(tree.body[0].targets) != 1 \
                    or not isinstance(tree.body[0].targets[0], ast.Name):
                raise ModelError(f"adjoint: {line!r} is not a statement 'name = expression'")
            parsed.append(tree.body[0])
            used.update(node.id for node in ast.walk(tree) if isinstance(node, ast.Name))
        self.prefix = "_"
        while any(name.startswith(self.prefix) for name in used):
            self.prefix += "z"
        self.records = []
        self.active = set(inputs) | set(tables)
        self.tables = set(tables)
        self.env = {}
        self.assigned = set()
        for statement in parsed:
            name = statement.targets[0].id
            self.env[name] = self._flatten(statement.value)
            self.assigned.add(name)

    def fresh(self):
        self.count = getattr(self, "count", 0) + 1
        return f"{self.prefix}{self.count}"

    def _record(self, operation, args):
        target = self.fresh()
        self.records.append((target, operation, args))
        if any(arg in self.active for arg in args):
            self.active.add(target)
        return target

    def _flatten(self, node):
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            return repr(node.value)
        if isinstance(node, ast.Name):
            return self.env.get(node.id, node.id)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            left = self._flatten(node.left)
            return self._record(_OPERATORS[type(node.op)], [left, self._flatten(node.right)])
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            operand = self._flatten(node.operand)
            return self._record("neg", [operand]) if isinstance(node.op, ast.USub) else operand
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FORWARD_FUNCTIONS \
                and not node.keywords:
            if len(node.args) != FORWARD_FUNCTIONS[node.func.id]:
                raise ModelError(f"adjoint: {node.func.id} takes {FORWARD_FUNCTIONS[node.func.id]} arguments, "
                                 f"got {len(node.args)} in {ast.unparse(node)!r}")
            return self._record(node.func.id, [self._flatten(arg) for arg in node.args])
        raise ModelError(f"adjoint: cannot differentiate {ast.unparse(node)!r}; statements may use + - * / **, "
                         f"unary minus and {', '.join(sorted(FORWARD_FUNCTIONS))}")


def _render_record(record):
    target, operation, args = record
    if operation == "neg":
        return f"{target} = -{args[0]}"
    if operation in _OPERATORS.values():
        return f"{target} = {args[0]} {operation} {args[1]}"
    return f"{target} = {operation}({', '.join(args)})"


class _Sweep:
    """The reverse sweep over a tape: ``terms`` holds, per atom, the contributions to its adjoint
    found so far, each (sign, expression whose top-level operator binds at least as tightly as *)."""

    def __init__(self, tape):
        self.tape = tape
        self.terms = {}
        self.lines = []

    def add(self, atom, expression, sign=1):
        if atom in self.tape.active:
            self.terms.setdefault(atom, []).append((sign, expression))

    def total(self, atom):
        terms = self.terms.get(atom)
        if not terms:
            return "0.0"
        text = ("-" if terms[0][0] < 0 else "") + terms[0][1]
        return text + "".join(f" {'-' if sign < 0 else '+'} {expression}" for sign, expression in terms[1:])

    def temporary(self, expression):
        name = self.tape.fresh()
        self.lines.append(f"{name} = {expression}")
        return name

    def run(self):
        for target, operation, args in reversed(self.tape.records):
            if target not in self.terms:
                continue
            d = self.temporary(self.total(target))
            getattr(self, f"_rule_{_RULE_NAMES.get(operation, operation)}")(d, target, *args)
        return self.lines

    # One rule per operation: d is the adjoint of the result z, then the arguments.
    def _rule_neg(self, d, z, a):
        self.add(a, d, -1)

    def _rule_plus(self, d, z, a, b):
        self.add(a, d)
        self.add(b, d)

    def _rule_minus(self, d, z, a, b):
        self.add(a, d)
        self.add(b, d, -1)

    def _rule_times(self, d, z, a, b):
        self.add(a, f"{d} * {b}")
        self.add(b, f"{d} * {a}")

    def _rule_divide(self, d, z, a, b):
        self.add(a, f"{d} / {b}")
        self.add(b, f"{d} * {z} / {b}", -1)

    def _rule_power(self, d, z, a, b):
        if b not in self.tape.active and _is_number(b):
            exponent = float(b)
            if exponent != 0.0:
                self.add(a, f"{d} * {b} * {a} ** {exponent - 1.0!r}")
            return
        if a in self.tape.active:
            self.add(a, f"{d} * {b} * {a} ** ({b} - 1.0)")
        # z·log(a), taken as 0 at a = 0 (as torch does for a non-negative exponent) where log(a) is −inf.
        self.add(b, f"{d} * where({a} == 0.0, 0.0, {z} * log({a}))")

    def _rule_exp(self, d, z, a):
        self.add(a, f"{d} * {z}")

    def _rule_expm1(self, d, z, a):
        self.add(a, f"{d} * ({z} + 1.0)")

    def _rule_log(self, d, z, a):
        self.add(a, f"{d} / {a}")

    def _rule_sqrt(self, d, z, a):
        self.add(a, f"{d} / (2.0 * {z})")

    def _rule_abs(self, d, z, a):
        self.add(a, f"{d} * sign({a})")

    def _rule_tanh(self, d, z, a):
        self.add(a, f"{d} * (1.0 - {z} * {z})")

    def _rule_cosh(self, d, z, a):
        self.add(a, f"{d} * sinh({a})")

    def _rule_heaviside(self, d, z, a):
        # A step's derivative is zero almost everywhere: a reset passes no gradient through its
        # condition (spikes get theirs from a surrogate on the voltage, outside the step).
        pass

    def _rule_sigmoid(self, d, z, a):
        self.add(a, f"{d} * ({z} * (1.0 - {z}))")

    def _rule_explinear(self, d, z, a):
        # z = a / q with q = −expm1(−a): dz/da = (1 − z·exp(−a)) / q; the forward's branch near 0 has slope 1/2.
        e = self.temporary(f"expm1(-{a})")
        slope = self.temporary(f"where(abs({a}) < {EXPLINEAR_SMALL!r}, 0.5, (1.0 - {z} * ({e} + 1.0)) / -{e})")
        self.add(a, f"{d} * {slope}")

    def _rule_pchip(self, d, z, x, points, values, slopes):
        # The forward clamps x into the table and takes the cubic on interval lo at t ∈ [0, 1].
        lo = self.temporary(f"pchip_interval({x}, {points})")
        x0 = self.temporary(f"at({points}, {lo})")
        h = self.temporary(f"at({points}, {lo} + 1) - {x0}")
        clamped = self.temporary(f"pchip_clamp({x}, {points})")
        t = self.temporary(f"({clamped} - {x0}) / {h}")
        t2 = self.temporary(f"{t} * {t}")
        t3 = self.temporary(f"{t2} * {t}")
        if values in self.tape.tables:
            self.lines.append(f"accumulate(d_{values}, {lo}, {d} * (2.0 * {t3} - 3.0 * {t2} + 1.0))")
            self.lines.append(f"accumulate(d_{values}, {lo} + 1, {d} * (-2.0 * {t3} + 3.0 * {t2}))")
        if slopes in self.tape.tables:
            self.lines.append(f"accumulate(d_{slopes}, {lo}, {d} * (({t3} - 2.0 * {t2} + {t}) * {h}))")
            self.lines.append(f"accumulate(d_{slopes}, {lo} + 1, {d} * (({t3} - {t2}) * {h}))")
        if x in self.tape.active:
            derivative = self.temporary(
                f"(6.0 * {t2} - 6.0 * {t}) * at({values}, {lo}) + (3.0 * {t2} - 4.0 * {t} + 1.0) * {h} * at({slopes}, {lo})"
                f" + (6.0 * {t} - 6.0 * {t2}) * at({values}, {lo} + 1) + (3.0 * {t2} - 2.0 * {t}) * {h} * at({slopes}, {lo} + 1)")
            # Outside the table the curve is flat; on its ends x passes through the clamp (as torch.clamp).
            self.add(x, f"{d} * where({clamped} == {x}, {derivative} / {h}, 0.0)")


_RULE_NAMES = {"+": "plus", "-": "minus", "*": "times", "/": "divide", "**": "power"}


def _is_number(atom):
    try:
        float(atom)
    except ValueError:
        return False
    return True
