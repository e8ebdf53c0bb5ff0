"""The generated Triton point-neuron kernel, run on the CPU by Triton's interpreter, against the
tensor path (CompiledCell.step, the reference): every library channel, a tabulated channel, an
expression channel and every curve form, in float64 and float32, both integration methods.

TRITON_INTERPRET=1 is set by a module fixture before triton is first imported here and restored
afterwards (triton reads it when a kernel is generated; the engine caches kernels per setting).
"""

import importlib.util

import pytest
import torch

import brainfuse_core as bf
from brainfuse_core.channels.channel import Channel, Gate
from brainfuse_core.channels.curves import Constant, ExpressionCurve, Hill, Tabulated
from brainfuse_core.errors import ModelError
from brainfuse_core.solvers.membrane import CompiledCell
from brainfuse_core.spikes import threshold_crossing
from conftest import triton_interpreter

pytestmark = pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="triton is not installed (test extras)")

AREA = 31416.0  # µm²: 1 µA/cm² is 0.31416 nA
THRESHOLD = -20.0  # mV
STEPS = 160
# mV. Measured: float64 within 3e-12, float32 within 5e-4 (rounding, amplified on spike upstrokes).
TOLERANCE = {torch.float64: 1e-9, torch.float32: 5e-3}


@pytest.fixture(scope="module")
def run_point_population():
    with triton_interpreter(True):
        from brainfuse_core.gpu.point import run_point_population
        yield run_point_population


def _injected(cells, dtype, peak):
    """(STEPS, 1, cells) nA: per cell a different amplitude up to ``peak``, off for the first 20 steps
    and halved for the last 40, so the kernel must read its input step by step."""
    amplitude = torch.linspace(0.0, peak, cells, dtype=dtype)
    envelope = torch.ones(STEPS, dtype=dtype)
    envelope[:20] = 0.0
    envelope[-40:] = 0.5
    return (envelope[:, None] * amplitude[None, :]).unsqueeze(1).contiguous()


def _reference(block, state, dt, injected, celsius, method):
    trace, spikes = [], []
    for k in range(injected.shape[0]):
        old = state["v"]
        state = block.step(state, dt, celsius, method, injected[k].unsqueeze(-1), 0.0, 0.0)
        trace.append(state["v"][..., 0])
        spikes.append(threshold_crossing(old[..., 0], state["v"][..., 0], THRESHOLD).detach())
    return state, torch.stack(trace), torch.stack(spikes)


def _compare(run, cell, dtype, peak, celsius, method="backward_euler", dt=0.05, cells=16, v_init=-65.0):
    block = CompiledCell(cell, dtype, "cpu")
    start = block.initial_state(torch.full((1, cells, 1), v_init, dtype=dtype), celsius)
    injected = _injected(cells, dtype, peak)
    expected_state, expected_v, expected_spikes = _reference(block, dict(start), dt, injected, celsius, method)
    state, spikes, fraction, trace = run(block, start, dt, injected, THRESHOLD, celsius, method, record_v=True)
    error = (trace - expected_v).abs().max().item()
    assert error < TOLERANCE[dtype], f"max |Δv| {error} mV"
    assert torch.equal(spikes.sum(0), expected_spikes.sum(0))
    assert int(expected_spikes.sum()) >= 2 * cells // 3, "the comparison needs most cells to spike"
    for name, value in expected_state.items():
        assert value.shape == state[name].shape
        scale = value.abs().max().item()
        assert (state[name] - value).abs().max().item() <= TOLERANCE[dtype] * scale, name
    crossed = spikes.bool()
    assert bool(((fraction[crossed] > 0) & (fraction[crossed] <= 1)).all()) and bool((fraction[~crossed] == 0).all())
    return trace, spikes


def _hh():
    return bf.Cell.point(area=AREA, channels=[bf.channel("hh_na"), bf.channel("hh_k"), bf.channel("leak")])


def _traub_with(*extra):
    cell = bf.Cell.point(area=AREA, channels=[bf.channel("traub_na"), bf.channel("traub_kd"),
                                              bf.channel("leak", gbar=5e-5, reversal=-65.0), *extra])
    return cell


def _calcium_cell():
    """Traub spikes with Ca HVA filling a pool, the AHP current and a Hill-gated K⁺ current reading it."""
    hill_k = Channel("hill_k", [Gate("q", 1, inf=Hill(variable="cai", kd=2e-4, n=2.5), tau=Constant(value=5.0))],
                     gbar=2e-3, ion="k")
    cell = _traub_with(bf.channel("ca_hva", gbar=2e-3), bf.channel("k_ahp", gbar=2e-3), hill_k)
    return cell.add_pool(bf.calcium_pool(decay=20.0))


def _custom_cell():
    """A sodium current written as expressions and a potassium current of tabulated curves."""
    na = Channel("expr_na", [
        Gate("m", 3, alpha=ExpressionCurve("explinear((v + 40) / 10)"), beta=ExpressionCurve("4 * exp(-(v + 65) / 18)")),
        Gate("h", 1, alpha=ExpressionCurve("a * exp(-(v + 65) / 20)", {"a": 0.07}),
             beta=ExpressionCurve("1 / (1 + exp(-(v + 35) / 10))")),
        Gate("s", 1, inf=ExpressionCurve("(0.5 * (1 + tanh((v + 75) / 15))) ** 1.5"),
             tau=ExpressionCurve("1 + 4 / cosh((v + 50) / 30) + sqrt(abs(v)) / 100 + log(2 + abs(v + 65)) / 50")),
    ], gbar=0.12, ion="na", q10=3.0, temperature=6.3)
    points = [-100.0, -70.0, -50.0, -30.0, 0.0, 40.0]
    k = Channel("table_k", [Gate("n", 4, inf=Tabulated(points=points, values=[0.0, 0.25, 0.45, 0.75, 0.95, 1.0]),
                                 tau=Tabulated(points=points, values=[2.0, 5.0, 5.5, 3.0, 1.5, 1.0]))],
                gbar=0.036, ion="k")
    return bf.Cell.point(area=AREA, channels=[na, k, bf.channel("leak")])


CASES = {
    "hh": (_hh, 6.0, 10.0),                                                      # hh_na, hh_k, leak; Q10 at 10 °C
    "traub_slow": (lambda: _traub_with(bf.channel("m_current", gbar=5e-4), bf.channel("ih", gbar=2e-4)), 2.0, 36.0),
    "calcium": (_calcium_cell, 3.0, 36.0),                                        # ca_hva, k_ahp, pool, hill
    "tabulated_expression": (_custom_cell, 6.0, 6.3),
}


def test_cases_cover_every_library_channel():
    covered = {name for build, _, _ in CASES.values() for name in build().channels}
    assert set(bf.channels.CHANNELS) <= covered


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_kernel_matches_tensor_path(run_point_population, case, dtype):
    build, peak, celsius = CASES[case]
    _compare(run_point_population, build(), dtype, peak, celsius)


def test_crank_nicolson_matches_tensor_path(run_point_population):
    _compare(run_point_population, _hh(), torch.float64, 6.0, 6.3, method="crank_nicolson")


def test_new_numbers_reuse_the_kernel_and_are_used(run_point_population):
    from brainfuse_core.gpu import point

    _compare(run_point_population, _hh(), torch.float64, 6.0, 6.3, cells=8)
    compiled = len(point._KERNELS)
    cell = _hh()
    cell.channels["hh_na"].gates[0].alpha.midpoint = -45.0
    cell.channels["hh_k"].gbar = 0.05
    _compare(run_point_population, cell, torch.float64, 6.0, 6.3, cells=8)
    assert len(point._KERNELS) == compiled


def test_without_record_and_rest_stays_at_rest(run_point_population):
    cell = bf.Cell.point(area=AREA, channels=[bf.channel("leak")])
    block = CompiledCell(cell, torch.float64, "cpu")
    start = block.initial_state(torch.full((2, 3, 1), -54.3, dtype=torch.float64), 6.3)
    state, spikes, fraction, trace = run_point_population(block, start, 0.025, torch.zeros(10, 2, 3, dtype=torch.float64),
                                                          THRESHOLD, 6.3)
    assert trace is None and spikes.shape == (10, 2, 3) and not spikes.any()
    assert torch.allclose(state["v"], start["v"], atol=1e-12, rtol=0.0)


def test_refuses_multicompartment_cells(run_point_population):
    cable = bf.Cell(bf.Morphology([bf.Section("axon", length=100.0, diameter=1.0, nseg=3)]))
    cable.insert(bf.channel("leak"))
    block = CompiledCell(cable, torch.float64, "cpu")
    start = block.initial_state(torch.full((1, 1, 3), -65.0, dtype=torch.float64), 6.3)
    with pytest.raises(ModelError, match="several compartments.*compiled=False"):
        run_point_population(block, start, 0.025, torch.zeros(5, 1, 1, dtype=torch.float64), THRESHOLD, 6.3)


@pytest.mark.parametrize("case, dtype", [("calcium", torch.float64), ("tabulated_expression", torch.float32)])
def test_kernels_lower_to_a_cuda_binary(case, dtype):
    """What the interpreter cannot check: the same source compiles for an H100/H200 (no GPU needed)."""
    from brainfuse_core.gpu.point import compile_for_cuda

    with triton_interpreter(False):
        build, _, celsius = CASES[case]
        compiled = compile_for_cuda(CompiledCell(build(), dtype, "cpu"), celsius, "backward_euler", 0.05, dtype)
    assert ".entry advance" in compiled.asm["ptx"] and len(compiled.asm["cubin"]) > 10_000
