"""solvers/fastmath.py: accuracy in ulps against independent references (numpy in float64 for the
float32 functions, mpmath at 120 bits for the float64 ones), special values, and that loops calling
them compile to packed vector instructions."""

import math
import re

import llvmlite.binding as llvm
import mpmath
import numba
import numpy as np
import pytest
import torch

import brainfuse_core as bf
from brainfuse_core.solvers import compiled, fastmath, generated
from brainfuse_core.solvers.membrane import CompiledCell

NAMES = ("exp", "expm1", "sigmoid", "explinear")


def _loop(function, wide=False):
    @numba.njit(error_model="numpy")
    def loop(x, out):
        if wide:
            fastmath.wide_vectors()
        for i in range(x.shape[0]):
            out[i] = function(x[i])

    return loop


LOOPS = {name: _loop(getattr(fastmath, name)) for name in NAMES}


def evaluate(name, x):
    out = np.empty_like(x)
    LOOPS[name](x, out)
    return out


def float64_reference(name, x):
    x = x.astype(np.float64)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        return {"exp": np.exp, "expm1": np.expm1, "sigmoid": lambda v: 1.0 / (1.0 + np.exp(-v)),
                "explinear": lambda v: np.where(v == 0, 1.0, v / -np.expm1(-v))}[name](x)


def mpmath_reference(name, x):
    mpmath.mp.prec = 120
    functions = {"exp": mpmath.exp, "expm1": mpmath.expm1, "sigmoid": lambda v: 1 / (1 + mpmath.exp(-v)),
                 "explinear": lambda v: mpmath.mpf(1) if v == 0 else v / -mpmath.expm1(-v)}
    return [functions[name](mpmath.mpf(float(v))) for v in x]


def ulps32(got, exact):
    """|got − exact| in units of the float32 spacing at the exact value (exact in float64)."""
    spacing = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
    return np.abs(got.astype(np.float64) - exact) / spacing


def ulps64(got, exact):
    return np.array([float(abs(mpmath.mpf(float(g)) - e) / np.spacing(abs(float(e)))) for g, e in zip(got, exact)])


def grid(low, high, n, dtype):
    return np.concatenate([np.linspace(low, high, n), np.linspace(-1.0, 1.0, n // 4),
                           np.geomspace(1e-8, 1e-1, n // 8), -np.geomspace(1e-8, 1e-1, n // 8)]).astype(dtype)


# Measured maxima: exp 0.96 / 0.95 ulp, expm1 1.21 / 1.33 ulp (float32 / float64).
BOUNDS = {"exp": 1.1, "expm1": 1.5, "sigmoid": 3.0, "explinear": 3.0}


@pytest.mark.parametrize("name", NAMES)
def test_float32_within_a_few_ulps_of_float64_numpy(name):
    x = grid(-110.0, 100.0, 2_000_000, np.float32)
    exact = float64_reference(name, x)
    got = evaluate(name, x)
    # Where the exact value is a float32 subnormal or beyond the range, compare rounding to float32.
    # The rates are 0 where e^−x overflows (as on the tensor path), a few ulps above that.
    normal = (np.abs(exact) >= np.finfo(np.float32).tiny) & (np.abs(exact) <= np.finfo(np.float32).max)
    if name in ("sigmoid", "explinear"):
        normal &= x > -math.log(np.finfo(np.float32).max)
        assert (got[x < -89.0] == 0).all()
    assert ulps32(got[normal], exact[normal]).max() <= BOUNDS[name]
    if name == "exp":
        tiny = (exact < np.finfo(np.float32).tiny) & (exact > 0)
        assert np.abs(got[tiny].astype(np.float64) - exact[tiny]).max() <= 2.0 ** -149  # gradual underflow, ≤ 1 ulp
    with np.errstate(over="ignore"):
        rounded = exact.astype(np.float32)
    beyond = np.isinf(rounded)
    assert beyond.any() == (name in ("exp", "expm1")) and np.array_equal(got[beyond], rounded[beyond])


@pytest.mark.parametrize("name", NAMES)
def test_float64_within_a_few_ulps_of_mpmath(name):
    x = grid(-700.0, 700.0, 8_000, np.float64)
    exact = mpmath_reference(name, x)
    got = evaluate(name, x)
    normal = np.array([np.finfo(np.float64).tiny <= abs(e) <= np.finfo(np.float64).max for e in exact])
    if name in ("sigmoid", "explinear"):
        normal &= x > -math.log(np.finfo(np.float64).max)
    if name == "explinear":
        normal &= np.abs(x) >= 1e-6  # the tensor path's 1 + x/2 there, off by x²/12 < 1e-13: tested below
    assert ulps64(got[normal], [e for e, keep in zip(exact, normal) if keep]).max() <= BOUNDS[name]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tiny_gate_step_arguments_keep_full_relative_accuracy(dtype):
    """expm1(−dt·rate) of a gate step (|x| ~ 1e-7..1e-3) to 1 ulp; explinear near its removable
    singularity as the tensor path defines it: 1 + x/2 below |x| = 1e-6, x / −expm1(−x) above."""
    x = np.concatenate([np.geomspace(1e-7, 1e-3, 20_000), -np.geomspace(1e-7, 1e-3, 20_000)]).astype(dtype)
    eps = np.finfo(dtype).eps
    exact = np.array([float(e) for e in mpmath_reference("expm1", x)])
    assert np.max(np.abs(evaluate("expm1", x) - exact) / np.abs(exact)) <= eps  # ≤ 1 ulp (half the spacing is eps/2)
    above = np.abs(x) >= dtype(1e-6)
    exact = np.array([float(e) for e in mpmath_reference("explinear", x[above])])
    assert np.max(np.abs(evaluate("explinear", x[above]) - exact) / exact) <= 2 * eps
    below = x[~above]
    np.testing.assert_array_equal(evaluate("explinear", below), (dtype(1.0) + dtype(0.5) * below).astype(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_special_values(dtype):
    info = np.finfo(dtype)
    x = np.array([np.inf, -np.inf, np.nan, 0.0, -0.0, 1e4, -1e4, float(info.max), float(-info.max)], dtype=dtype)
    exp, expm1 = evaluate("exp", x), evaluate("expm1", x)
    sigmoid, explinear = evaluate("sigmoid", x), evaluate("explinear", x)
    np.testing.assert_array_equal(exp, [np.inf, 0.0, np.nan, 1.0, 1.0, np.inf, 0.0, np.inf, 0.0])
    np.testing.assert_array_equal(expm1, [np.inf, -1.0, np.nan, 0.0, -0.0, np.inf, -1.0, np.inf, -1.0])
    np.testing.assert_array_equal(sigmoid, [1.0, 0.0, np.nan, 0.5, 0.5, 1.0, 0.0, 1.0, 0.0])
    np.testing.assert_array_equal(explinear[2:], [np.nan, 1.0, 1.0, 1e4, 0.0, info.max, 0.0])
    assert all(value.dtype == dtype for value in (exp, expm1, sigmoid, explinear))
    # Overflow exactly where the float's range ends.
    edge = np.array([math.log(float(info.max))], dtype=np.float64)
    below, above = np.nextafter(edge.astype(dtype), -np.inf), np.nextafter(edge.astype(dtype), np.inf)
    for name in ("exp", "expm1"):
        assert np.isfinite(evaluate(name, below)).all() and np.isinf(evaluate(name, above * dtype(1.0001))).all()


def test_python_calls_follow_the_argument_precision():
    assert isinstance(fastmath.exp(np.float32(1.0)), float) and fastmath.exp(np.float32(1.0)) == np.float32(np.e)
    assert fastmath.exp(1.0) == pytest.approx(math.e, rel=2e-16)
    assert fastmath.expm1(1e-10) == pytest.approx(1.00000000005e-10, rel=2e-16)


def test_bit_reinterpretation():
    @numba.njit
    def roundtrip(x32, x64):
        return float_bits(x32), float_bits(x64), bits_float(float_bits(x32)), bits_float(float_bits(x64))

    float_bits, bits_float = fastmath.float_bits, fastmath.bits_float
    b32, b64, x32, x64 = roundtrip(np.float32(-1.5), -0.1)
    assert b32 == np.array(-1.5, np.float32).view(np.int32) and b64 == np.array(-0.1).view(np.int64)
    assert x32 == np.float32(-1.5) and x64 == -0.1


def test_polynomial_coefficients_are_the_chebyshev_fit():
    mpmath.mp.prec = 200
    q = lambda r: (mpmath.expm1(r) - r) / r ** 2 if r != 0 else mpmath.mpf(1) / 2
    for coefficients in (fastmath.Q_FLOAT32, fastmath.Q_FLOAT64):
        fit = mpmath.chebyfit(q, [-0.35, 0.35], len(coefficients))
        np.testing.assert_allclose(coefficients, [float(c) for c in reversed(fit)], rtol=1e-14, atol=0)


def _features():
    return {name for name, on in llvm.get_host_cpu_features().items() if on}


def _packed(asm, width):
    """Packed FMA and multiply instructions on ``width`` registers (ymm: 256 bits, zmm: 512)."""
    return re.findall(rf"\bv(?:fn?m(?:add|sub)\d{{3}}|mul|div)p[sd]\s[^\n]*%{width}", asm)


needs_avx2 = pytest.mark.skipif(not {"avx2", "fma"} <= _features(), reason="this CPU has no AVX2/FMA: nothing to vectorise to")


@needs_avx2
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_loops_calling_them_vectorise(dtype):
    """No call to libm remains in the loop and its arithmetic is on packed ymm/zmm registers; with
    ``wide_vectors`` on zmm where the CPU has AVX-512."""
    x = np.linspace(-5.0, 5.0, 64).astype(dtype)
    for name in NAMES:
        out = np.empty_like(x)
        for wide in (False, True):
            loop = _loop(getattr(fastmath, name), wide)
            loop(x, out)
            asm = loop.inspect_asm(loop.signatures[0])
            assert len(_packed(asm, "ymm") + _packed(asm, "zmm")) >= 10, name
            assert not re.search(r"call[^\n]*(exp|expm1)", asm), name
            if wide and "avx512f" in _features():
                assert len(_packed(asm, "zmm")) >= 10, name
            np.testing.assert_allclose(out, float64_reference(name, x), rtol=4 * np.finfo(dtype).eps)


@needs_avx2
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_generated_hh_step_vectorises(dtype, tmp_path, monkeypatch):
    """The compiled kernels' loop over cells (squid HH) runs on packed registers in the state's
    precision: float32 steps do not fall back to float64 or to scalar exp calls."""
    # numba cannot show the assembly of code it loaded from its disk cache (which another process
    # may have filled), so this kernel is compiled afresh in a cache of its own.
    monkeypatch.setenv("BRAINFUSE_KERNEL_CACHE", str(tmp_path))
    monkeypatch.setattr(generated, "_MODULES", {})
    cell = bf.Cell.point(area=1000.0, channels=[bf.channel("hh_na"), bf.channel("hh_k"), bf.channel("leak")])
    block = CompiledCell(cell, dtype, "cpu")
    kernel = compiled.point_kernel(block, 6.3, "backward_euler", 0.025)
    n = 64
    state = block.initial_state(torch.full((1, n, 1), -65.0, dtype=dtype), 6.3)
    kernel.run(state, 0.025, torch.full((1, 1, n), 0.1, dtype=dtype), torch.zeros(3, dtype=torch.int64), 0.0, True, threads=1)
    precision = numba.from_dtype(torch.empty(0, dtype=dtype).numpy().dtype)
    signature = [sig for sig in kernel.many_steps.signatures if sig[0].dtype == precision][-1]
    asm = kernel.many_steps.inspect_asm(signature)
    suffix = "ps" if dtype == torch.float32 else "pd"
    width = "zmm" if "avx512f" in _features() else "ymm"
    packed = [op for op in _packed(asm, width) if op.split()[0].endswith(suffix)]
    assert len(packed) >= 50
    assert not re.search(r"call[^\n]*(exp|expm1)", asm)
    if dtype == torch.float32:
        llvm_ir = kernel.many_steps.inspect_llvm(signature)
        assert "fpext" not in llvm_ir and not re.search(r"= f(add|sub|mul|div) double", llvm_ir)
