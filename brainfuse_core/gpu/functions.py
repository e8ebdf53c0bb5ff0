"""Element-wise functions of the generated Triton kernels, written in triton.language.

They are plain (undecorated) functions: ``jitted(namespace)`` compiles them with ``triton.jit``
into a kernel's own namespace when the kernel is generated, so that they follow the interpreter
setting in force then (TRITON_INTERPRET=1 on the CPU) and call each other through that namespace.

Only tl.exp and tl.log are used, never libdevice: the interpreter has no libdevice, and the code
tested on the CPU must be the code run on the GPU. expm1 uses Kahan's ratio, accurate to a few
ulps even where exp(x) − 1 cancels (gate steps have |x| ~ 1e-3).
"""

import types

import triton
import triton.language as tl


def _expm1(x):
    u = tl.exp(x)
    um1 = u - 1.0
    log_u = tl.log(u)
    ratio = um1 * x / tl.where(log_u == 0.0, 1.0, log_u)
    # Beyond 40, exp(x) − 1 == exp(x) in float64; the ratio would be inf/inf there.
    return tl.where(u == 1.0, x, tl.where(um1 == -1.0, -1.0, tl.where(x > 40.0, u, ratio)))


def _explinear(x):
    safe = tl.where(tl.abs(x) < 1e-6, 1.0, x)
    return tl.where(tl.abs(x) < 1e-6, 1.0 + 0.5 * x, safe / -_expm1(-safe))


def _sigmoid(x):
    return 1.0 / (1.0 + tl.exp(-x))


def _tanh(x):
    # tanh(±20) is ±1 to double precision; clamping keeps expm1 finite.
    e = _expm1(2.0 * tl.minimum(tl.maximum(x, -20.0), 20.0))
    return e / (e + 2.0)


def _cosh(x):
    return 0.5 * (tl.exp(x) + tl.exp(-x))


def _square(x):
    return x * x


def _cube(x):
    return x * x * x


def _heaviside(x):
    return tl.where(x >= 0.0, 1.0, 0.0)


def _pow(a, b):
    """a ** b as torch: the sign of a negative base survives integral exponents, other exponents give NaN."""
    magnitude = tl.exp(b * tl.log(tl.abs(a)))
    integral = tl.floor(b) == b
    odd = integral & (tl.floor(0.5 * b) != 0.5 * b)
    signed = tl.where(odd, -magnitude, magnitude)
    return tl.where(a < 0.0, tl.where(integral, signed, magnitude * float("nan")), magnitude)


def _pchip_clamp(x, points, n_points):
    """x clamped into the table [points[0], points[n − 1]] (``points`` a pointer, ``n_points`` its length)."""
    return tl.minimum(tl.maximum(x, tl.load(points)), tl.load(points + n_points - 1))


def _pchip_interval(x, points, n_points):
    """The interval k (0 ≤ k ≤ n − 2) of [points[k], points[k+1]] holding x clamped into the table."""
    xc = _pchip_clamp(x, points, n_points)
    # tl.full, not tl.zeros: the interpreter leaves tl.zeros' patches in triton.language.core, breaking later CUDA lowering.
    index = tl.full(x.shape, 0, tl.int32)
    for k in range(1, n_points - 1):
        index += (tl.load(points + k) <= xc).to(tl.int32)
    return index


def _pchip(x, points, n_points, values, n_values, slopes, n_slopes):
    """The tabulated curve's monotone cubic at x, flat outside the points (as ``Tabulated.__call__``);
    each table is a pointer and its length (the lengths are equal)."""
    index = _pchip_interval(x, points, n_points)
    x0 = tl.load(points + index)
    h = tl.load(points + index + 1) - x0
    t = (_pchip_clamp(x, points, n_points) - x0) / h
    t2 = t * t
    t3 = t2 * t
    return ((2 * t3 - 3 * t2 + 1) * tl.load(values + index) + (t3 - 2 * t2 + t) * h * tl.load(slopes + index)
            + (-2 * t3 + 3 * t2) * tl.load(values + index + 1) + (t3 - t2) * h * tl.load(slopes + index + 1))


# The adjoint's functions (solvers/adjoint.py, ADJOINT_FUNCTIONS) beyond the forward's.

def _sinh(x):
    # As a difference of two expm1 of opposite signs: no cancellation near 0.
    return 0.5 * (_expm1(x) - _expm1(-x))


def _sign(x):
    return tl.where(x > 0.0, 1.0, tl.where(x < 0.0, -1.0, 0.0))


def _at(table, n_table, k):
    """table[k], ``table`` a pointer and its length (as every table argument here)."""
    return tl.load(table + k)


def _add(a, b):
    """The combine function of a sum over a block (tl.reduce): tl.sum's own, built when triton is imported
    under the interpreter, leaves the interpreter's patches behind and breaks later CUDA lowering."""
    return a + b


HELPERS = (_expm1, _explinear, _sigmoid, _tanh, _cosh, _square, _cube, _heaviside, _pow, _pchip_clamp, _pchip_interval, _pchip,
           _sinh, _sign, _at, _add)

# Curve and expression function names → these helpers (the curves' ``source`` takes this table).
FUNCTIONS = {"exp": "tl.exp", "log": "tl.log", "sqrt": "tl.sqrt", "abs": "tl.abs", "tanh": "_tanh", "cosh": "_cosh",
             "sigmoid": "_sigmoid", "explinear": "_explinear", "pchip": "_pchip", "expm1": "_expm1",
             "heaviside": "_heaviside"}
# The adjoint statements' functions too. ``accumulate`` (a table adjoint's update, a statement) keeps its
# name: the backward kernel's generator expands it (gpu/point_backward.py).
ADJOINT_FUNCTIONS = {**FUNCTIONS, "sinh": "_sinh", "sign": "_sign", "where": "tl.where", "at": "_at",
                     "pchip_interval": "_pchip_interval", "pchip_clamp": "_pchip_clamp", "accumulate": "accumulate"}


def jitted(namespace):
    """Adds every helper, compiled with ``triton.jit``, to ``namespace`` (whose globals they then use)."""
    # A module name, as Triton asks every jitted function for one.
    namespace.update({"__name__": "brainfuse_core.gpu.generated", "tl": tl, "triton": triton})
    for helper in HELPERS:
        rebound = types.FunctionType(helper.__code__, namespace, helper.__name__, helper.__defaults__)
        namespace[helper.__name__] = triton.jit(rebound)
    return namespace
