"""User expressions for rate and steady-state curves, parsed against a whitelist.

An expression such as ``0.1 * explinear((v + 40) / 10)`` is parsed with Python's ``ast``
module and only numbers, the allowed variable names, arithmetic operators and the
functions listed in ``FUNCTIONS`` are accepted; nothing is ever passed to ``eval``.
The parsed tree is evaluated with torch operations (so gradients flow) and can be
rendered back to source text for code generation.
"""

import ast
import math
import operator

import torch

from ..errors import ExpressionError


def _explinear(x):
    """x / (1 − exp(−x)), the exp-linear rate of NeuroML, with its Taylor expansion 1 + x/2 near 0
    so that the value and its derivative stay exact there (NEURON's vtrap does the same)."""
    small = x.abs() < 1e-6
    safe = torch.where(small, torch.ones_like(x), x)
    return torch.where(small, 1.0 + 0.5 * x, safe / -torch.expm1(-safe))


def _explinear_float(x):
    return 1.0 + 0.5 * x if abs(x) < 1e-6 else x / -math.expm1(-x)


def _sigmoid_float(x):
    return 1.0 / (1.0 + math.exp(-x))


def _ieee(function):
    """A math-module function that answers NaN/inf where it would raise, as tensors do."""

    def wrapped(x):
        try:
            return function(x)
        except ValueError:
            return math.nan
        except OverflowError:
            return math.inf

    return wrapped


# name → (tensor function, float function). Code generators map the same names to their own.
FUNCTIONS = {
    "exp": (torch.exp, _ieee(math.exp)),
    "log": (torch.log, _ieee(math.log)),
    "sqrt": (torch.sqrt, _ieee(math.sqrt)),
    "tanh": (torch.tanh, math.tanh),
    "abs": (torch.abs, abs),
    "sigmoid": (torch.sigmoid, _ieee(_sigmoid_float)),
    "explinear": (_explinear, _ieee(_explinear_float)),
    "cosh": (torch.cosh, _ieee(math.cosh)),
}
CONSTANTS = {"pi": math.pi, "e": math.e}

def _divide(a, b):
    if torch.is_tensor(a) or torch.is_tensor(b) or b != 0:
        return a / b
    return math.copysign(math.inf, a) if a else math.nan


def _power(a, b):
    if torch.is_tensor(a) or torch.is_tensor(b):
        return a**b
    try:
        return math.pow(a, b)
    except ValueError:
        return math.nan
    except (OverflowError, ZeroDivisionError):
        return math.inf


# IEEE semantics for constant sub-expressions too: 1/0 is inf and (-1)**0.5 is NaN, as in tensors.
_BINARY = {
    ast.Add: ("+", operator.add),
    ast.Sub: ("-", operator.sub),
    ast.Mult: ("*", operator.mul),
    ast.Div: ("/", _divide),
    ast.Pow: ("**", _power),
}


class Expression:
    """A parsed, whitelisted arithmetic expression.

    ``names`` are the free variables it reads; ``evaluate(env)`` maps each to a tensor
    or float and returns a tensor.
    """

    def __init__(self, text, allowed_names):
        if not isinstance(text, str) or not text.strip():
            raise ExpressionError("expression is empty; write e.g. '0.07 * exp(-(v + 65) / 20)'")
        self.text = text.strip()
        self.allowed_names = frozenset(allowed_names)
        if len(self.text) > 2000:
            raise ExpressionError(f"expression of {len(self.text)} characters is too long (at most 2000)")
        try:
            tree = ast.parse(self.text, mode="eval")
            self.names = set()
            self._check(tree.body)
        except SyntaxError as err:
            raise ExpressionError(f"cannot parse expression {self.text!r}: {err.msg}") from None
        except (RecursionError, MemoryError):
            raise ExpressionError(f"expression {self.text[:40]!r}... is nested too deeply; simplify it") from None
        self._tree = tree.body

    def _check(self, node):
        if isinstance(node, ast.Constant):
            if not isinstance(node.value, (int, float)) or isinstance(node.value, bool):
                raise ExpressionError(f"expression {self.text!r}: only numbers are allowed as constants")
            try:
                float(node.value)
            except OverflowError:
                raise ExpressionError(f"expression {self.text[:40]!r}...: a number is too large for a float") from None
        elif isinstance(node, ast.Name):
            if node.id in CONSTANTS:
                return
            if node.id not in self.allowed_names:
                allowed = ", ".join(sorted(self.allowed_names | set(CONSTANTS)))
                raise ExpressionError(
                    f"expression {self.text!r}: name {node.id!r} is not allowed; use one of: {allowed}"
                )
            self.names.add(node.id)
        elif isinstance(node, ast.BinOp):
            if type(node.op) not in _BINARY:
                raise ExpressionError(f"expression {self.text!r}: operator {type(node.op).__name__} is not allowed")
            self._check(node.left)
            self._check(node.right)
        elif isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, (ast.USub, ast.UAdd)):
                raise ExpressionError(f"expression {self.text!r}: operator {type(node.op).__name__} is not allowed")
            self._check(node.operand)
        elif isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
                name = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
                raise ExpressionError(
                    f"expression {self.text!r}: function {name!r} is not allowed; "
                    f"use one of: {', '.join(sorted(FUNCTIONS))}"
                )
            if node.keywords or len(node.args) != 1:
                raise ExpressionError(f"expression {self.text!r}: {node.func.id}() takes exactly one argument")
            self._check(node.args[0])
        else:
            raise ExpressionError(f"expression {self.text!r}: {type(node).__name__} is not allowed")

    def evaluate(self, env):
        """Evaluate with ``env`` mapping every name in ``self.names`` to a tensor or float."""
        missing = self.names - set(env)
        if missing:
            raise ExpressionError(f"expression {self.text!r}: no value for {', '.join(sorted(missing))}")
        return self._eval(self._tree, env)

    def _eval(self, node, env):
        if isinstance(node, ast.Constant):
            return float(node.value)
        if isinstance(node, ast.Name):
            return CONSTANTS[node.id] if node.id in CONSTANTS else env[node.id]
        if isinstance(node, ast.BinOp):
            return _BINARY[type(node.op)][1](self._eval(node.left, env), self._eval(node.right, env))
        if isinstance(node, ast.UnaryOp):
            value = self._eval(node.operand, env)
            return -value if isinstance(node.op, ast.USub) else value
        argument = self._eval(node.args[0], env)
        tensor_fn, float_fn = FUNCTIONS[node.func.id]
        return tensor_fn(argument) if torch.is_tensor(argument) else float_fn(argument)

    def source(self, names, functions):
        """The expression as source text for a code generator: ``names`` maps each free name to the
        text that stands for it (a variable or a literal) and ``functions`` each function name to
        the target's function. Only the parsed tree is rendered, never the user's text."""
        return self._source(self._tree, names, functions)

    def _source(self, node, names, functions):
        if isinstance(node, ast.Constant):
            return repr(float(node.value))
        if isinstance(node, ast.Name):
            return repr(CONSTANTS[node.id]) if node.id in CONSTANTS else names[node.id]
        if isinstance(node, ast.BinOp):
            symbol = _BINARY[type(node.op)][0]
            return f"({self._source(node.left, names, functions)} {symbol} {self._source(node.right, names, functions)})"
        if isinstance(node, ast.UnaryOp):
            sign = "-" if isinstance(node.op, ast.USub) else "+"
            return f"({sign}{self._source(node.operand, names, functions)})"
        return f"{functions[node.func.id]}({self._source(node.args[0], names, functions)})"

    def __repr__(self):
        return f"Expression({self.text!r})"
