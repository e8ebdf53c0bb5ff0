"""Gradients through the generated CPU kernels (solvers/gradient_kernel.py) against torch autograd
through the tensor path (CompiledCell.step, the reference numerics), and against central finite
differences.

A loss on the voltage trace and the final state is differentiated with respect to every channel's
gbar, curve parameters (midpoints, rates, a Hill exponent, a Q10, a pool's decay), tabulated
values, the injected current of every step and the initial voltage of every cell, for squid HH
(both methods), Traub-Miles with slow K⁺ and Ih, Traub-Miles with calcium (HVA, AHP, a Hill-gated
K⁺, a pool) and a cell of tabulated and expression gates: together every library channel.
"""

import pytest
import torch

import brainfuse_core as bf
from brainfuse_core.channels.channel import Channel, Gate
from brainfuse_core.channels.curves import Constant, ExpressionCurve, Hill, Tabulated
from brainfuse_core.errors import ModelError
from brainfuse_core.solvers.gradient_kernel import run_with_gradients, supports
from brainfuse_core.solvers.membrane import CompiledCell

AREA = 31416.0  # µm²: 1 µA/cm² is 0.31416 nA
CELLS, DT = 6, 0.05  # cells, ms
# Steps (most cells spike once or twice) and the tolerance of each gradient relative to its largest
# entry. Measured: float64 within 2e-14. In float32 the tensor path's own rounding, amplified through
# spikes, grows with the run (against float64: ~1e-5 of the gradients after 100 steps, up to 2e-3
# after 200; its calcium pool, a small change on a small concentration, ~2e-4 after 100), so the
# float32 cases run 100 steps of cells without calcium: the kernel within 6e-6 of that path.
STEPS = {torch.float64: 200, torch.float32: 100}
TOLERANCE = {torch.float64: 1e-9, torch.float32: 1e-4}


def _leaf(value):
    return torch.tensor(value, dtype=torch.float64, requires_grad=True)


def _hh():
    leaves = {"gna": _leaf(0.12), "gk": _leaf(0.036), "gl": _leaf(3e-4), "m_mid": _leaf(-40.0), "h_rate": _leaf(0.07),
              "n_scale": _leaf(-80.0), "q10": _leaf(3.0)}
    na, k = bf.channel("hh_na", gbar=leaves["gna"]), bf.channel("hh_k", gbar=leaves["gk"])
    k.q10 = leaves["q10"]
    na.gates[0].alpha.midpoint = leaves["m_mid"]
    na.gates[1].alpha.rate = leaves["h_rate"]
    k.gates[0].beta.scale = leaves["n_scale"]
    return bf.Cell.point(area=AREA, channels=[na, k, bf.channel("leak", gbar=leaves["gl"])]), leaves


def _traub(*extra, leaves):
    leaves.update({"gna": _leaf(0.1), "gkd": _leaf(0.03), "m_mid": _leaf(-50.0)})
    na = bf.channel("traub_na", gbar=leaves["gna"])
    na.gates[0].alpha.midpoint = leaves["m_mid"]
    return [na, bf.channel("traub_kd", gbar=leaves["gkd"]), bf.channel("leak", gbar=5e-5, reversal=-65.0), *extra]


def _traub_slow():
    leaves = {"gm": _leaf(5e-4), "gh": _leaf(2e-4), "m_amplitude": _leaf(1000.0)}
    m_current = bf.channel("m_current", gbar=leaves["gm"])
    m_current.gates[0].tau.amplitude = leaves["m_amplitude"]
    return bf.Cell.point(area=AREA, channels=_traub(m_current, bf.channel("ih", gbar=leaves["gh"]), leaves=leaves)), leaves


def _calcium():
    leaves = {"gca": _leaf(2e-3), "gahp": _leaf(2e-3), "ghill": _leaf(2e-3), "hill_n": _leaf(2.5), "decay": _leaf(20.0)}
    hill_k = Channel("hill_k", [Gate("q", 1, inf=Hill(variable="cai", kd=2e-4, n=leaves["hill_n"]), tau=Constant(value=5.0))],
                     gbar=leaves["ghill"], ion="k")
    channels = _traub(bf.channel("ca_hva", gbar=leaves["gca"]), bf.channel("k_ahp", gbar=leaves["gahp"]), hill_k, leaves=leaves)
    return bf.Cell.point(area=AREA, channels=channels).add_pool(bf.calcium_pool(decay=leaves["decay"])), leaves


def _custom():
    points = [-100.0, -70.0, -50.0, -30.0, 0.0, 40.0]
    leaves = {"gna": _leaf(0.12), "gk": _leaf(0.036), "a": _leaf(0.07), "n_inf": _leaf([0.0, 0.25, 0.45, 0.75, 0.95, 1.0]),
              "n_tau": _leaf([2.0, 5.0, 5.5, 3.0, 1.5, 1.0])}
    na = Channel("expr_na", [
        Gate("m", 3, alpha=ExpressionCurve("explinear((v + 40) / 10)"), beta=ExpressionCurve("4 * exp(-(v + 65) / 18)")),
        Gate("h", 1, alpha=ExpressionCurve("a * exp(-(v + 65) / 20)", {"a": leaves["a"]}),
             beta=ExpressionCurve("1 / (1 + exp(-(v + 35) / 10))")),
        Gate("s", 1, inf=ExpressionCurve("(0.5 * (1 + tanh((v + 75) / 15))) ** 1.5"),
             tau=ExpressionCurve("1 + 4 / cosh((v + 50) / 30) + sqrt(abs(v)) / 100 + log(2 + abs(v + 65)) / 50")),
    ], gbar=leaves["gna"], ion="na", q10=3.0, temperature=6.3)
    k = Channel("table_k", [Gate("n", 4, inf=Tabulated(points=points, values=leaves["n_inf"]),
                                 tau=Tabulated(points=points, values=leaves["n_tau"]))], gbar=leaves["gk"], ion="k")
    return bf.Cell.point(area=AREA, channels=[na, k, bf.channel("leak")]), leaves


CASES = {"hh": (_hh, 10.0, 10.0), "traub_slow": (_traub_slow, 2.0, 36.0), "calcium": (_calcium, 3.0, 36.0),
         "tabulated_expression": (_custom, 10.0, 6.3)}


def test_cases_cover_every_library_channel():
    assert set(bf.channels.CHANNELS) <= {name for build, _, _ in CASES.values() for name in build()[0].channels}


def _inputs(dtype, peak, steps, seed=0):
    """Initial voltages (CELLS,) mV, the injected current (steps, 1, CELLS) nA: per cell its own
    amplitude up to ``peak``, switched on after 20 steps, with a small per-step ripple, and the loss's
    weights."""
    generator = torch.Generator().manual_seed(seed)
    v0 = (-65.0 + 2.0 * torch.rand(CELLS, generator=generator, dtype=torch.float64)).requires_grad_()
    envelope = torch.ones(steps, dtype=torch.float64)
    envelope[:20] = 0.0
    current = envelope[:, None] * torch.linspace(0.2 * peak, peak, CELLS, dtype=torch.float64)
    current = current * (1 + 0.05 * torch.rand(steps, CELLS, generator=generator, dtype=torch.float64))
    weights = torch.randn(steps, 1, CELLS, generator=generator, dtype=torch.float64)
    return v0, current.unsqueeze(1).to(dtype).requires_grad_(), weights


def _loss(trace, final, weights):
    """Weighted voltages (mV) plus the final state (gates and [Ca]i scaled to a few mV)."""
    extra = sum(value.sum() * (1e4 if name == "cai" else 10.0) for name, value in final.items() if name != "v")
    return (trace * weights.to(trace.dtype)).sum() / trace.shape[0] + final["v"].sum() + extra


def _reference(block, state, injected, celsius, method):
    trace = []
    for k in range(injected.shape[0]):
        state = block.step(state, DT, celsius, method, injected[k].unsqueeze(-1), 0.0, 0.0)
        trace.append(state["v"][..., 0])
    return torch.stack(trace), state


def _gradients(case, dtype, method, reference, **options):
    """Trace, final state and the gradients of the loss w.r.t. every leaf, by the tensor path
    (``reference``) or the kernel."""
    build, peak, celsius = CASES[case]
    cell, leaves = build()
    v0, injected, weights = _inputs(dtype, peak, STEPS[dtype])
    block = CompiledCell(cell, dtype, "cpu")
    state = block.initial_state(v0.to(dtype).reshape(1, CELLS, 1), celsius)
    if reference:
        trace, final = _reference(block, state, injected, celsius, method)
    else:
        trace, final = run_with_gradients(block, state, DT, injected, celsius, method, **options)
    inputs = {**leaves, "v0": v0, "injected": injected}
    grads = torch.autograd.grad(_loss(trace, final, weights), list(inputs.values()))
    return trace.detach(), {name: value.detach() for name, value in final.items()}, dict(zip(inputs, grads))


def _assert_gradients_agree(found, expected, tolerance, what):
    for name, value in expected.items():
        scale = value.abs().max().item()
        assert scale > 0, f"{what}: d/d{name} vanishes, so the check is empty"
        error = (found[name].double() - value.double()).abs().max().item() / scale
        assert error <= tolerance, f"{what}: d/d{name} relative error {error:.2e}: {found[name]} vs {value}"


# Five kernels (one per model and method, whatever the dtype), both methods, both dtypes.
@pytest.mark.parametrize("case, dtype, method", [
    ("hh", torch.float64, "backward_euler"), ("hh", torch.float32, "backward_euler"), ("hh", torch.float64, "crank_nicolson"),
    ("traub_slow", torch.float64, "backward_euler"), ("calcium", torch.float64, "backward_euler"),
    ("tabulated_expression", torch.float64, "crank_nicolson"),
    ("tabulated_expression", torch.float32, "crank_nicolson"),
])
def test_gradients_match_autograd_through_the_tensor_path(case, dtype, method):
    expected_trace, expected_final, expected = _gradients(case, dtype, method, reference=True)
    trace, final, found = _gradients(case, dtype, method, reference=False, checkpoint_every=17)
    assert trace.dtype == dtype and trace.shape == (STEPS[dtype], 1, CELLS)
    spikes = ((trace[1:] >= -20.0) & (trace[:-1] < -20.0)).sum().item()
    assert spikes >= 2 * CELLS // 3, f"only {spikes} spikes: the check needs most cells to spike"
    voltage_tolerance = 1e-9 if dtype == torch.float64 else 5e-3  # mV; float32: the tensor path's rounding
    assert (trace - expected_trace).abs().max().item() < voltage_tolerance
    for name, value in expected_final.items():
        assert final[name].shape == value.shape and final[name].dtype == dtype
        assert (final[name] - value).abs().max().item() <= voltage_tolerance * value.abs().max().item(), name
    _assert_gradients_agree(found, expected, TOLERANCE[dtype], f"{case} {dtype} {method}")


def test_gradients_match_central_finite_differences():
    """The kernel's own gradient against central differences of its forward (float64)."""
    cell, leaves = _hh()
    v0, injected, weights = _inputs(torch.float64, 10.0, STEPS[torch.float64])

    def loss(gna, m_mid, v0, scale):
        cell.channels["hh_na"].gbar = gna
        cell.channels["hh_na"].gates[0].alpha.midpoint = m_mid
        block = CompiledCell(cell, torch.float64, "cpu")
        trace, final = run_with_gradients(block, block.initial_state(v0.reshape(1, CELLS, 1), 6.3), DT, injected * scale, 6.3)
        return _loss(trace, final, weights)

    point = {"gna": leaves["gna"], "m_mid": leaves["m_mid"], "v0": v0, "scale": _leaf(1.0)}
    grads = torch.autograd.grad(loss(**point), list(point.values()))
    for (name, value), grad in zip(point.items(), grads):
        h = 1e-6 * max(1.0, abs(value.detach().flatten()[0].item()))
        step = torch.zeros_like(value)
        step.view(-1)[0] = h
        with torch.no_grad():
            plus = loss(**{**point, name: value + step})
            minus = loss(**{**point, name: value - step})
        difference = ((plus - minus) / (2 * h)).item()
        assert difference != 0.0
        assert grad.flatten()[0].item() == pytest.approx(difference, rel=1e-5), name


def test_checkpoint_spacing_and_threads_do_not_change_the_result():
    """Replays are exact, and cells are independent: every spacing and split gives the same bits."""
    runs = [_gradients("hh", torch.float64, "backward_euler", reference=False, checkpoint_every=every, threads=threads)
            for every, threads in ((1, 1), (17, 2), (STEPS[torch.float64], 3), (None, 1))]
    for trace, final, grads in runs[1:]:
        assert torch.equal(trace, runs[0][0])
        assert all(torch.equal(grads[name], runs[0][2][name]) for name in grads)


def test_batches_and_partial_gradients():
    """(B, C) cells; a loss on the final state only (no trace gradient) still reaches every input."""
    cell, leaves = _hh()
    block = CompiledCell(cell, torch.float64, "cpu")
    v0 = torch.full((2, 3, 1), -65.0, dtype=torch.float64, requires_grad=True)
    injected = torch.full((50, 2, 3), 3.0, dtype=torch.float64, requires_grad=True)
    trace, final = run_with_gradients(block, block.initial_state(v0, 6.3), 0.025, injected, 6.3)
    assert trace.shape == (50, 2, 3) and final["v"].shape == (2, 3, 1)
    final["v"].sum().backward()
    assert v0.grad.shape == (2, 3, 1) and injected.grad.shape == (50, 2, 3)
    assert bool((injected.grad > 0).all()) and leaves["gna"].grad != 0


def test_a_single_step():
    cell, _ = _hh()
    injected = torch.full((1, 1, 2), 3.0, dtype=torch.float64, requires_grad=True)
    grads = []
    for kernel in (True, False):
        block = CompiledCell(cell, torch.float64, "cpu")
        state = block.initial_state(torch.full((1, 2, 1), -60.0, dtype=torch.float64), 6.3)
        if kernel:
            trace = run_with_gradients(block, state, DT, injected, 6.3)[0]
        else:
            trace = _reference(block, state, injected, 6.3, "backward_euler")[0]
        grads.append(torch.autograd.grad(trace.sum(), injected)[0])
    assert torch.allclose(grads[0], grads[1], rtol=1e-12, atol=0.0) and bool((grads[0] > 0).all())


def test_refuses_bad_shapes_and_cables():
    cell, _ = _hh()
    block = CompiledCell(cell, torch.float64, "cpu")
    assert supports(block, 6.3, "backward_euler", DT)
    batched = bf.Cell.point(area=AREA, channels=[bf.channel("hh_na", gbar=torch.full((2, 1, 1), 0.12, dtype=torch.float64))])
    assert not supports(CompiledCell(batched, torch.float64, "cpu"), 6.3, "backward_euler", DT)
    state = block.initial_state(torch.full((1, 4, 1), -65.0, dtype=torch.float64), 6.3)
    with pytest.raises(ModelError, match=r"expected \(steps, 1, 4\)"):
        run_with_gradients(block, state, 0.025, torch.zeros(10, 4, dtype=torch.float64), 6.3)
    with pytest.raises(ModelError, match="unknown method"):
        run_with_gradients(block, state, 0.025, torch.zeros(10, 1, 4, dtype=torch.float64), 6.3, method="euler")
    cable = bf.Cell(bf.Morphology([bf.Section("axon", length=100.0, diameter=1.0, nseg=3)]))
    cable.insert(bf.channel("leak"))
    block = CompiledCell(cable, torch.float64, "cpu")
    assert not supports(block, 6.3, "backward_euler", DT)
    state = block.initial_state(torch.full((1, 1, 3), -65.0, dtype=torch.float64), 6.3)
    with pytest.raises(ModelError, match="one-compartment"):
        run_with_gradients(block, state, 0.025, torch.zeros(5, 1, 1, dtype=torch.float64), 6.3)
