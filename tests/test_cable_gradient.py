"""Gradients through the compiled cable kernel (solvers/cable_gradient.py) against torch autograd
through the tensor path (CompiledCell.step, the reference numerics), and against central finite
differences of the kernel's own forward.

A loss on the voltage at every node after every step and on the final state is differentiated with
respect to each channel's gbar, a curve parameter, a tabulated curve's values, a pool's decay, the injected current
of every node and step and the initial voltage of every node: for the 100-compartment HH cable
(backward Euler, float64 and float32) and a branched cell with expression and tabulated channels in
its soma and a calcium pool on every node (Crank–Nicolson). Three kernels in all, as compiling them is most of this file's time.
"""

import pytest
import torch

import brainfuse_core as bf
from brainfuse_core.errors import ModelError
from brainfuse_core.solvers.cable_gradient import run_with_gradients, simulate, supports
from brainfuse_core.solvers.membrane import CompiledCell
from conftest import ball_and_two_dendrites

CELSIUS, DT = 6.3, 0.025  # °C, ms
# float64: the kernel and the tensor path differ by rounding only (measured: within 2e-14 of each
# gradient's largest entry). float32: the tensor path computes in float32 and the kernel in float64, so
# the difference is that path's rounding, amplified by spikes as the run grows (measured 2e-6 at 100 steps).
STEPS = {torch.float64: 240, torch.float32: 100}
TOLERANCE = {torch.float64: 1e-9, torch.float32: 1e-4}


def _leaf(value):
    return torch.tensor(value, dtype=torch.float64, requires_grad=True)


def _hh_cable():
    """The benchmark's cable: 1 mm × 1 µm, 100 compartments, squid HH everywhere."""
    leaves = {"gna": _leaf(0.12), "gk": _leaf(0.036), "gl": _leaf(3e-4), "m_mid": _leaf(-40.0)}
    na = bf.channel("hh_na", gbar=leaves["gna"])
    na.gates[0].alpha.midpoint = leaves["m_mid"]
    cell = bf.Cell(bf.Morphology.cylinder(1000.0, 1.0, nseg=100), name="cable", ra=100.0)
    for channel in (na, bf.channel("hh_k", gbar=leaves["gk"]), bf.channel("leak", gbar=leaves["gl"])):
        cell.insert(channel)
    return cell, leaves, 0.4


def _branched_cell(calcium=True):
    """Ball and two dendrites; expression and tabulated channels in the soma, leak everywhere; with
    ``calcium`` an HVA calcium channel and an AHP potassium channel in the soma and a calcium pool
    (whose decay is a leaf) on every node."""
    leaves = {"gna": _leaf(0.12), "gk": _leaf(0.036), "gl": _leaf(3e-4), "a": _leaf(0.07),
              "n_inf": _leaf([0.0, 0.25, 0.45, 0.75, 0.95, 1.0]), "gca": _leaf(2e-3), "decay": _leaf(20.0)}
    cell = ball_and_two_dendrites(leaves["gna"], leaves["gk"], leaves["gl"], leaves["a"], leaves["n_inf"])
    if calcium:
        cell.insert(bf.channel("ca_hva", gbar=leaves["gca"]), "soma").insert(bf.channel("k_ahp", gbar=2e-3), "soma")
        cell.add_pool(bf.calcium_pool(decay=leaves["decay"]), "all")
    else:
        del leaves["gca"], leaves["decay"]
    return cell, leaves, 1.5


def _inputs(block, dtype, steps, peak, seed=0):
    """Initial voltages (1, 2, N) mV near rest, the injected current (steps, 1, 2, N) nA: ``peak`` into
    node 1 of the first cell and 0.7 × ``peak`` in the second, with a small ripple at every node and
    step, and the loss's weights (1, 2, N, steps + 1)."""
    generator = torch.Generator().manual_seed(seed)
    nodes = block.size
    v0 = (-65.0 + 2.0 * torch.rand(1, 2, nodes, generator=generator, dtype=torch.float64)).requires_grad_()
    current = 0.002 * torch.rand(steps, 1, 2, nodes, generator=generator, dtype=torch.float64)
    current[:, :, 0, 1] += peak
    current[:, :, 1, 1] += 0.7 * peak
    weights = torch.randn(1, 2, nodes, steps + 1, generator=generator, dtype=torch.float64)
    return v0, current.to(dtype).requires_grad_(), weights


def _loss(trace, final, weights):
    """Weighted voltages (mV) at every node and sample, plus the final state (gates and [Ca]i scaled to a few mV)."""
    extra = sum(value.sum() * (1e4 if name == "cai" else 10.0) for name, value in final.items() if name != "v")
    return (trace * weights.to(trace.dtype)).sum() / trace.shape[-1] + final["v"].sum() + extra


def _reference(block, state, injected, method):
    trace = [state["v"]]
    for k in range(injected.shape[0]):
        state = block.step(state, DT, CELSIUS, method, injected[k], 0.0, 0.0)
        trace.append(state["v"])
    return torch.stack(trace, -1), state


def _gradients(build, dtype, method, reference, **options):
    """Trace, final state and the loss's gradients w.r.t. every leaf, v0 and the injected current, by
    the tensor path (``reference``) or the kernel."""
    cell, leaves, peak = build()
    block = CompiledCell(cell, dtype, "cpu")
    v0, injected, weights = _inputs(block, dtype, STEPS[dtype], peak)
    state = block.initial_state(v0.to(dtype), CELSIUS)
    if reference:
        trace, final = _reference(block, state, injected, method)
    else:
        trace, final = run_with_gradients(block, state, DT, injected, CELSIUS, method, **options)
    inputs = {**leaves, "v0": v0, "injected": injected}
    grads = torch.autograd.grad(_loss(trace, final, weights), list(inputs.values()))
    return trace.detach(), {name: value.detach() for name, value in final.items()}, dict(zip(inputs, grads))


@pytest.mark.parametrize("build, dtype, method", [
    (_hh_cable, torch.float64, "backward_euler"),
    (_hh_cable, torch.float32, "backward_euler"),
    (_branched_cell, torch.float64, "crank_nicolson"),
])
def test_gradients_match_autograd_through_the_tensor_path(build, dtype, method):
    expected_trace, expected_final, expected = _gradients(build, dtype, method, reference=True)
    trace, final, found = _gradients(build, dtype, method, reference=False, checkpoint_every=17)
    assert trace.dtype == dtype and trace.shape == expected_trace.shape
    assert float(expected_trace.max()) > 20.0, "the cells must fire for the check to mean anything"
    voltage_tolerance = 1e-9 if dtype == torch.float64 else 5e-3  # mV; float32: the tensor path's rounding
    assert (trace - expected_trace).abs().max().item() < voltage_tolerance
    for name, value in expected_final.items():
        assert final[name].dtype == dtype
        assert (final[name] - value).abs().max().item() <= voltage_tolerance * value.abs().max().item(), name
    for name, value in expected.items():
        scale = value.abs().max().item()
        assert scale > 0, f"d/d{name} vanishes, so the check is empty"
        error = (found[name].double() - value.double()).abs().max().item() / scale
        assert error <= TOLERANCE[dtype], f"d/d{name}: relative error {error:.2e}"


def test_gradients_match_central_finite_differences():
    """The kernel's gradient against central differences of its own forward (float64)."""
    cell, leaves, peak = _hh_cable()
    block = CompiledCell(cell, torch.float64, "cpu")
    v0, injected, weights = _inputs(block, torch.float64, STEPS[torch.float64], peak)
    scale = _leaf(1.0)

    def loss(gna, m_mid, scale):
        cell.channels["hh_na"].gbar = gna
        cell.channels["hh_na"].gates[0].alpha.midpoint = m_mid
        block = CompiledCell(cell, torch.float64, "cpu")
        state = block.initial_state(v0.detach(), CELSIUS)
        trace, final = run_with_gradients(block, state, DT, injected.detach() * scale, CELSIUS)
        return _loss(trace, final, weights)

    point = {"gna": leaves["gna"], "m_mid": leaves["m_mid"], "scale": scale}
    grads = torch.autograd.grad(loss(**point), list(point.values()))
    for (name, value), grad in zip(point.items(), grads):
        h = 1e-6 * max(1.0, abs(value.item()))
        with torch.no_grad():
            difference = ((loss(**{**point, name: value + h}) - loss(**{**point, name: value - h})) / (2 * h)).item()
        assert difference != 0.0
        assert grad.item() == pytest.approx(difference, rel=1e-5), name


def test_checkpoint_spacing_threads_and_rows_do_not_change_the_result():
    """Replays are exact and cells independent: every spacing and split gives the same bits, and a
    current given as rows taken per step gives those of the same current written out per step."""
    runs = [_gradients(_hh_cable, torch.float64, "backward_euler", reference=False, checkpoint_every=every, threads=threads)
            for every, threads in ((1, 1), (STEPS[torch.float64], 2), (None, 1))]
    for trace, final, grads in runs[1:]:
        assert torch.equal(trace, runs[0][0])
        assert all(torch.equal(grads[name], runs[0][2][name]) for name in grads)
    cell, leaves, _ = _hh_cable()
    block = CompiledCell(cell, torch.float64, "cpu")
    state = block.initial_state(torch.full((1, 1, block.size), -65.0, dtype=torch.float64), CELSIUS)
    held = torch.zeros(2, 1, 1, block.size, dtype=torch.float64)
    held[0, ..., 1], held[1, ..., 1] = 0.3, 0.1
    rows = torch.tensor([0] * 30 + [1] * 20)
    traces, gradients = [], []
    for current, taken in ((held.clone().requires_grad_(), rows), (held[rows].clone().requires_grad_(), None)):
        trace, _ = run_with_gradients(block, state, DT, current, CELSIUS, rows=taken)
        gradients.append(torch.autograd.grad((trace ** 2).mean(), [current, leaves["gna"]], retain_graph=True))
        traces.append(trace)
    assert torch.equal(traces[0], traces[1])
    dense = gradients[1][0]
    assert torch.allclose(gradients[0][0], torch.stack([dense[:30].sum(0), dense[30:].sum(0)]), rtol=1e-12, atol=0)
    assert torch.equal(gradients[0][1], gradients[1][1])


def test_simulate_gives_the_simulation_traces():
    """``simulate`` (set-up by Simulation) against Simulation.run on the tensor path, trace and gradient."""
    cell, leaves, _ = _hh_cable()
    stimuli = [bf.IClamp(0.1, 0.0, 1e9, section="soma", x=0.005)]
    probes = [bf.Probe("cell", "v", nodes="all"), bf.Probe("cell", "v", section="soma", x=0.9)]
    expected = bf.Simulation(cell, stimuli=stimuli, probes=probes, dt=DT, celsius=CELSIUS, compiled=False).run(60 * DT).traces
    found = simulate(cell, stimuli, probes, DT, 60, torch.float64, CELSIUS)
    for name, value in expected.items():
        assert found[name].shape == value.shape
        assert (found[name] - value).abs().max().item() < 1e-9
    losses = [(traces["cell.v@all"] ** 2).mean() for traces in (expected, found)]
    grads = [torch.autograd.grad(loss, [leaves["gk"]])[0] for loss in losses]
    assert grads[1].item() == pytest.approx(grads[0].item(), rel=1e-9)


def test_supports_and_refuses_point_cells_partial_pools_and_bad_shapes():
    assert supports(CompiledCell(_branched_cell()[0], torch.float64, "cpu"), CELSIUS, "crank_nicolson", DT)
    partial = _branched_cell(calcium=False)[0]
    partial.insert(bf.channel("ca_hva", gbar=1e-3), "soma").add_pool(bf.calcium_pool(), "soma")
    assert not supports(CompiledCell(partial, torch.float64, "cpu"), CELSIUS, "backward_euler", DT)
    point = bf.Cell.point(area=1000.0, channels=[bf.channel("leak")])
    block = CompiledCell(point, torch.float64, "cpu")
    assert not supports(block, CELSIUS, "backward_euler", DT)
    state = block.initial_state(torch.full((1, 1, 1), -65.0, dtype=torch.float64), CELSIUS)
    with pytest.raises(ModelError, match="several compartments"):
        run_with_gradients(block, state, DT, torch.zeros(5, 1, 1, 1, dtype=torch.float64), CELSIUS)
    cell, _, _ = _hh_cable()
    block = CompiledCell(cell, torch.float64, "cpu")
    state = block.initial_state(torch.full((1, 2, block.size), -65.0, dtype=torch.float64), CELSIUS)
    with pytest.raises(ModelError, match=r"expected \(rows, 1, 2, 102\)"):
        run_with_gradients(block, state, DT, torch.zeros(5, 2, block.size, dtype=torch.float64), CELSIUS)
    with pytest.raises(ModelError, match="rows must be"):
        run_with_gradients(block, state, DT, torch.zeros(1, 1, 2, block.size, dtype=torch.float64), CELSIUS, rows=[0, 1])
    with pytest.raises(ModelError, match="unknown method"):
        run_with_gradients(block, state, DT, torch.zeros(1, 1, 2, block.size, dtype=torch.float64), CELSIUS, "euler")
