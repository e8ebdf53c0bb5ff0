"""exp and expm1 (and the sigmoid and exp-linear rates built on them) for the generated numba
kernels: branch-free, in the precision of their argument, so that a loop over cells calling
them vectorises.

libm's exp is an opaque scalar call: a loop calling it runs one cell at a time. These are
plain arithmetic that LLVM inlines and vectorises (16 float32 lanes with AVX-512): Cody-Waite
reduction x = n·ln2 + r with |r| ≤ ln2/2, a polynomial for expm1(r), and 2^n built from
exponent bits. Out-of-range arguments are clamped to where the result has already overflowed
(inf) or underflowed (0, or −1 for expm1) instead of being branched around; NaN passes the
clamps and stays NaN. Errors measured in tests/test_fastmath.py (float32 / float64): exp ≤ 0.96 /
0.95 ulp, expm1 ≤ 1.21 / 1.33 ulp (≤ 1 ulp for the tiny arguments of gate steps), the rates ≤ 3 ulps.

Call ``exp(x)`` etc. from numba code with a float32 or float64 argument; each resolves to the
implementation of that precision (from Python too, for numpy scalars and floats). Kernels that
call these must not be compiled with fastmath's ``reassoc`` (it would fold the rounding of
``x/ln2 + MAGIC - MAGIC`` away) nor ``nnan``/``ninf`` (NaN and inf must stay detectable).
"""

import math
from decimal import Decimal, localcontext

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, overload

_IR_FLOAT = {32: ir.FloatType(), 64: ir.DoubleType()}


@intrinsic
def float_bits(typingctx, x):
    """The IEEE bits of a float32 (as int32) or float64 (as int64), reinterpreted, not converted."""
    if isinstance(x, types.Float):
        width = x.bitwidth

        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], ir.IntType(width))

        return getattr(types, f"int{width}")(x), codegen
    return None


@intrinsic
def bits_float(typingctx, bits):
    """The float32 (from int32) or float64 (from int64) whose IEEE bits are ``bits``."""
    if isinstance(bits, types.Integer) and bits.bitwidth in _IR_FLOAT:
        width = bits.bitwidth

        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], _IR_FLOAT[width])

        return getattr(types, f"float{width}")(bits), codegen
    return None


@intrinsic
def _fmuladd(typingctx, a, b, c):
    """a·b + c, fused into one rounding where the CPU has FMA (LLVM's fmuladd: the backend decides,
    the same way in scalar and vector code)."""
    if isinstance(a, types.Float) and a == b == c:
        def codegen(context, builder, signature, args):
            kind = _IR_FLOAT[a.bitwidth]
            function = cgutils.get_or_insert_function(builder.module, ir.FunctionType(kind, [kind] * 3),
                                                      f"llvm.fmuladd.f{a.bitwidth}")
            return builder.call(function, args)

        return a(a, a, a), codegen
    return None


@intrinsic
def wide_vectors(typingctx):
    """Call first in a numba function: LLVM then vectorises its loops with 512-bit registers where the
    CPU has AVX-512 (by default it prefers 256 bits on Intel's server cores; the HH step measured
    1.3-1.5x faster with 512 here). No effect elsewhere. numba has no per-function option for this,
    and llvmlite's attribute set accepts only keyword attributes, so the string attribute is added
    to the set directly."""
    def codegen(context, builder, signature, args):
        set.add(builder.function.attributes, '"prefer-vector-width"="512"')
        return context.get_dummy_value()

    return types.none(), codegen


class _Format:
    """The numbers of one precision. Rounding x/ln2 to an integer n is done by adding ``magic``
    (1.5·2^mantissa): the sum's last bits are then n, read back with ``float_bits``."""

    def __init__(self, dtype, q, exp_range, expm1_range):
        f = dtype.type
        self.int = {np.float32: np.int32, np.float64: np.int64}[dtype.type]
        mantissa = np.finfo(dtype).nmant
        self.magic = f(1.5 * 2.0 ** mantissa)
        self.magic_bits = self.int(np.array(self.magic).view(self.int))
        self.mantissa = self.int(mantissa)
        self.bias = self.int(np.finfo(dtype).maxexp - 1)
        self.log2e = f(1 / math.log(2))
        # ln2 split so that n·ln2_hi is exact for every n reached (|n| < 2^11): x − n·ln2_hi loses
        # nothing; ln2_lo carries the rest of ln2 to beyond double precision.
        with localcontext() as context:
            context.prec = 50
            ln2 = Decimal(2).ln()
            self.ln2_hi = f(math.ldexp(round(math.ldexp(float(ln2), mantissa - 11)), 11 - mantissa))
            self.ln2_lo = f(float(ln2 - Decimal(float(self.ln2_hi))))
        self.q = tuple(f(c) for c in q)
        # Beyond these exp has over/underflowed (with room for the split scaling of subnormals).
        self.exp_low, self.exp_high = f(exp_range[0]), f(exp_range[1])
        # Below expm1_low, expm1 is −1 to this precision; above expm1_high it overflows, and 2^(n−1) is
        # still a normal number.
        self.expm1_low, self.expm1_high = f(expm1_range[0]), f(expm1_range[1])
        self.one, self.half, self.two = f(1.0), f(0.5), f(2.0)
        self.small = f(1e-6)


# Coefficients (constant term first) of q with expm1(r) ≈ r + r²·q(r) for |r| ≤ 0.35 (just over
# ln2/2, for rounding): Chebyshev interpolation of q (mpmath.chebyfit at 200 bits, degree 5 for
# float32 and 10 for float64), within a small factor of the best polynomial of that degree; the
# fit's own error is below 1e-8 (float32) and 5e-18 (float64) relative. tests/test_fastmath.py
# derives them again.
Q_FLOAT32 = (0.500000001427659, 0.16666666682523656, 0.04166645690406264, 0.008333310034706868,
             0.001393453165508802, 0.00019891969905683137)
Q_FLOAT64 = (0.5, 0.1666666666666667, 0.04166666666666667, 0.008333333333325551, 0.0013888888888883332,
             0.00019841269876840357, 2.480158732699005e-05, 2.755725286336732e-06, 2.755727183153613e-07,
             2.5106262550879078e-08, 2.0915433598076003e-09)


def _kernels(fmt):
    """exp, expm1, sigmoid and explinear for one precision, as numba functions (small and branch-free:
    LLVM inlines them into the calling loop and vectorises it)."""
    q_top, q_rest = fmt.q[-1], fmt.q[-2::-1]
    magic, magic_bits, mantissa, bias = fmt.magic, fmt.magic_bits, fmt.mantissa, fmt.bias
    as_int = fmt.int
    log2e, ln2_hi, ln2_lo = fmt.log2e, fmt.ln2_hi, fmt.ln2_lo
    exp_low, exp_high, expm1_low, expm1_high = fmt.exp_low, fmt.exp_high, fmt.expm1_low, fmt.expm1_high
    one, half, two, small = fmt.one, fmt.half, fmt.two, fmt.small

    jit = numba.njit(error_model="numpy", nogil=True)

    @jit
    def reduce(x):
        """(k, r): k = magic + n with n = round(x/ln2), r = x − n·ln2 (|r| ≲ ln2/2)."""
        k = _fmuladd(x, log2e, magic)
        n = k - magic
        r = _fmuladd(n, -ln2_hi, x)
        return k, _fmuladd(n, -ln2_lo, r)

    @jit
    def q_of(r):
        """q(r) of expm1(r) ≈ r + r²·q(r), by Horner's rule."""
        p = q_top
        for c in q_rest:
            p = _fmuladd(p, r, c)
        return p

    @jit
    def power_of_two(k, offset):
        """2^(n + offset) for k = magic + n; integer arithmetic in the float's width."""
        n = as_int(float_bits(k) - magic_bits)
        return bits_float(as_int((n + as_int(offset + bias)) << mantissa))

    @jit
    def exp(x):
        x = exp_low if x < exp_low else x  # NaN compares false both times and passes
        x = exp_high if x > exp_high else x
        k, r = reduce(x)
        n = as_int(float_bits(k) - magic_bits)
        # 2^n in two factors, each a normal number: the first product is exact, the second rounds
        # once, to a subnormal or to 0 below the range and to inf above it.
        low = as_int(n >> as_int(1))
        first = bits_float(as_int((low + bias) << mantissa))
        second = bits_float(as_int((n - low + bias) << mantissa))
        return (_fmuladd(r, r * q_of(r), r) + one) * first * second

    @jit
    def expm1(x):
        x = expm1_low if x < expm1_low else x
        x = expm1_high if x > expm1_high else x
        k, r = reduce(x)
        # 2^n·(1 + r + r²q) − 1 = 2·((h·r + (h − ½)) + h·r·r·q) with h = 2^(n−1) (a normal number up to
        # the overflow): for n = 0 this is r + r·(r·q) rounded once, so tiny x keep their relative
        # accuracy; for n = ±1 the sum h·r + (h − ½), which cancels, is rounded before the small
        # term is added instead of after an expm1(r) already rounded.
        h = power_of_two(k, -1)
        hr = h * r
        return two * _fmuladd(hr, r * q_of(r), _fmuladd(h, r, h - half))

    @jit
    def sigmoid(x):
        return one / (one + exp(-x))

    @jit
    def explinear(x):
        """x / (1 − e^−x), continued by its Taylor expansion 1 + x/2 at |x| < 1e-6 (where it is exact
        to the precision and the quotient would be 0/0 at x = 0), as the tensor path does."""
        tiny = abs(x) < small
        safe = one if tiny else x
        ratio = safe / -expm1(-safe)
        return _fmuladd(half, x, one) if tiny else ratio

    return {"exp": exp, "expm1": expm1, "sigmoid": sigmoid, "explinear": explinear}


_FORMATS = {np.float32: _Format(np.dtype(np.float32), Q_FLOAT32, (-110.0, 100.0), (-40.0, 89.0)),
            np.float64: _Format(np.dtype(np.float64), Q_FLOAT64, (-760.0, 720.0), (-50.0, 710.0))}
_BY_PRECISION = {types.float32: _kernels(_FORMATS[np.float32]), types.float64: _kernels(_FORMATS[np.float64])}


def _generic(name):
    """A function that numba code calls with a float32 or float64 (an integer counts as float64)
    and gets that precision's implementation; from Python, with a numpy scalar or float."""
    kernels32, kernels64 = _BY_PRECISION[types.float32][name], _BY_PRECISION[types.float64][name]

    def function(x):
        return kernels32(x) if isinstance(x, np.float32) else kernels64(float(x))

    def resolve(x):
        if x == types.float32:
            return lambda x: kernels32(x)
        if isinstance(x, (types.Float, types.Integer)):
            return lambda x: kernels64(np.float64(x))
        return None

    function.__name__ = function.__qualname__ = name
    overload(function)(resolve)
    return function


exp = _generic("exp")
expm1 = _generic("expm1")
sigmoid = _generic("sigmoid")
explinear = _generic("explinear")
exp.__doc__ = "e^x in the precision of x; inf above the float's range, 0 below it, NaN for NaN."
expm1.__doc__ = "e^x − 1 in the precision of x, to full relative accuracy near 0; −1 far below 0."
sigmoid.__doc__ = "1 / (1 + e^−x) in the precision of x; 0 where e^−x overflows."
explinear.__doc__ = "x / (1 − e^−x) in the precision of x (the exp-linear rate's shape, 1 at x = 0); 0 where e^−x overflows."
