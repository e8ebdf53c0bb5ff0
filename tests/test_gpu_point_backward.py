"""The Triton gradient kernels of one-compartment cells (gpu/point_backward.py), run on the CPU by
Triton's interpreter, against torch autograd through the tensor path (CompiledCell.step, the
reference numerics): the voltage trace, the final state and the gradients of a loss on both with
respect to the initial voltages, the injected current of every step and every number of the model
(each gbar, reversal, Q10 and temperature, every curve parameter, a pool's decay, tabulated-curve
values). Every library channel on its own, squid HH, the Traub–Miles cell and a cell of expression
and tabulated gates; float64 and float32, both methods; a lowering to a CUDA binary.

Where torch sees a CUDA device the kernels run compiled on it (tensors there, the references too);
otherwise TRITON_INTERPRET=1 is set by a module fixture before the kernels are first generated, and
restored afterwards. Sizes are small (3 cells, 30 steps, checkpoints every 7 steps: five segments, the last
one short) since the interpreter runs every operation in numpy.
"""

import importlib.util

import pytest
import torch

import brainfuse_core as bf
from brainfuse_core.channels.curves import ExpressionCurve, Tabulated
from brainfuse_core.errors import ModelError
from brainfuse_core.solvers.membrane import CompiledCell
from conftest import ball_and_two_dendrites, traub_cell, triton_interpreter

pytestmark = pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="triton is not installed (test extras)")

AREA = 31416.0  # µm²: 1 µA/cm² is 0.31416 nA
CELLS, STEPS, EVERY, DT = 3, 30, 7, 0.1  # cells, steps, steps between checkpoints, ms
CELSIUS = 16.0  # °C: unlike every channel's reference temperature, so Q10s and temperatures have gradients
# Relative to each quantity's largest entry. Measured: float64 within 2e-14. float32 against the float32
# tensor path: the rounding of both, amplified on the upstroke of a spike: traces within 1e-6, gradients 1e-5.
TOLERANCE = {torch.float64: 1e-10, torch.float32: 1e-4}
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


@pytest.fixture(scope="module")
def backward():
    with triton_interpreter(DEVICE == "cpu"):
        # Triton's compiler imports gluon, which refuses an interpreted triton.language unless it is
        # itself imported under the interpreter: done here, so that the lowering tests pass in any order.
        import triton.compiler.code_generator  # noqa: F401
        from brainfuse_core.gpu import point_backward
        yield point_backward


def _leaf(value):
    return torch.tensor(value, dtype=torch.float64, requires_grad=True)


def _learnable(channel, leaves):
    """Makes every number of ``channel`` a float64 leaf, listed in ``leaves`` as ``<channel>.<name>``."""
    def leaf(name, value):
        leaves[f"{channel.name}.{name}"] = _leaf(value)
        return leaves[f"{channel.name}.{name}"]

    channel.gbar = leaf("gbar", channel.gbar)
    if channel.reversal is not None:
        channel.reversal = leaf("reversal", channel.reversal)
    if channel.gates:
        if channel.q10 != 1.0:  # with a Q10 of 1 the temperature has no effect
            channel.temperature = leaf("temperature", channel.temperature)
        channel.q10 = leaf("q10", channel.q10)
    for gate in channel.gates:
        for role, curve in gate.kinetics().items():
            if isinstance(curve, Tabulated):
                curve.values = leaf(f"{gate.name}.{role}.values", curve.values)
            elif isinstance(curve, ExpressionCurve):
                for name, value in curve.expression_parameters.items():
                    curve.expression_parameters[name] = leaf(f"{gate.name}.{role}.{name}", value)
            else:
                for name, value in curve.parameters().items():
                    setattr(curve, name, leaf(f"{gate.name}.{role}.{name}", value))
    return channel


def _alone(name):
    """The library channel ``name`` with every number learnable, in a point cell with a leak (and, for
    the calcium channels, the pool and the HVA current that fills it); peak current (nA)."""
    leaves = {}
    channels = [_learnable(bf.channel(name), leaves)]
    if name != "leak":
        channels.append(bf.channel("leak", gbar=1e-4, reversal=-65.0))
    if name == "k_ahp":
        channels.append(bf.channel("ca_hva", gbar=2e-3))
    cell = bf.Cell.point(area=AREA, channels=channels)
    if name in ("ca_hva", "k_ahp"):
        pool = bf.calcium_pool(decay=20.0)
        pool.decay = leaves["pool.decay"] = _leaf(20.0)
        cell.add_pool(pool)
    return cell, leaves


def _learnable_cell(cell):
    leaves = {}
    for channel in cell.channels.values():
        _learnable(channel, leaves)
    return cell, leaves


def _hh():
    return _learnable_cell(bf.Cell.point(area=AREA, channels=[bf.channel("hh_na"), bf.channel("hh_k"), bf.channel("leak")]))


def _custom():
    """The sodium current of expressions and the potassium current of tabulated curves of conftest's
    ball-and-dendrites cell, in a point cell."""
    soma = ball_and_two_dendrites().channels
    return _learnable_cell(bf.Cell.point(area=AREA, channels=[soma["expr_na"], soma["table_k"], bf.channel("leak")]))


CELLS_WITH_SPIKES = {"hh": (_hh, 10.0), "traub": (lambda: _learnable_cell(traub_cell()), 30.0), "custom": (_custom, 10.0)}


def _inputs(dtype, peak, steps=STEPS, shape=(1, CELLS)):
    """Initial voltages (B, C) mV, the injected current (steps, B, C) nA: per cell its own amplitude up
    to ``peak``, on after 5 steps, with a per-step ripple, and the loss's weights."""
    generator = torch.Generator().manual_seed(0)
    v0 = (-65.0 + 2.0 * torch.rand(shape, generator=generator, dtype=torch.float64)).requires_grad_()
    envelope = torch.ones(steps, 1, 1, dtype=torch.float64)
    envelope[:5] = 0.0
    amplitude = torch.linspace(0.3 * peak, peak, shape[0] * shape[1], dtype=torch.float64).reshape(shape)
    ripple = 1 + 0.05 * torch.rand(steps, *shape, generator=generator, dtype=torch.float64)
    weights = torch.randn(steps, *shape, generator=generator, dtype=torch.float64)
    return v0, (envelope * amplitude * ripple).to(dtype).requires_grad_(), weights


def _loss(trace, final, weights):
    """Weighted voltages (mV) plus the final state (gates and [Ca]i scaled to a few mV)."""
    extra = sum(value.sum() * (1e4 if name == "cai" else 10.0) for name, value in final.items() if name != "v")
    return (trace * weights.to(trace.dtype)).sum() / trace.shape[0] + final["v"].sum() + extra


def _run(build, peak, dtype, method="backward_euler", kernels=None, device=DEVICE, **options):
    """Trace, final state and the gradients of the loss w.r.t. every leaf, the initial voltages and the
    injected current, by the tensor path or (``kernels``, gpu.point_backward) the Triton kernels, on
    ``device`` (the leaves and the results on the CPU)."""
    cell, leaves = build()
    v0, injected, weights = _inputs(dtype, peak)
    block = CompiledCell(cell, dtype, device)
    state = block.initial_state(v0.to(device, dtype).unsqueeze(-1), CELSIUS)
    current = injected.to(device)
    if kernels is None:
        trace = []
        for k in range(STEPS):
            state = block.step(state, DT, CELSIUS, method, current[k].unsqueeze(-1), 0.0, 0.0)
            trace.append(state["v"][..., 0])
        trace, final = torch.stack(trace), state
    else:
        trace, final = kernels.run_with_gradients(block, state, DT, current, CELSIUS, method, **options)
    inputs = {**leaves, "v0": v0, "injected": injected}
    grads = torch.autograd.grad(_loss(trace.cpu(), {name: value.cpu() for name, value in final.items()}, weights),
                                list(inputs.values()))
    return trace.detach().cpu(), {name: value.detach().cpu() for name, value in final.items()}, dict(zip(inputs, grads))


def _assert_close(found, expected, tolerance, what):
    for name, value in expected.items():
        scale = value.abs().max().item()
        assert scale > 0, f"{what}: {name} vanishes, so the check is empty"
        assert found[name].shape == value.shape and found[name].dtype == value.dtype, name
        error = (found[name] - value).abs().max().item() / scale
        assert error <= tolerance, f"{what}: {name} relative error {error:.2e}"


def _compare(backward, build, peak, dtype, method="backward_euler"):
    expected_trace, expected_final, expected = _run(build, peak, dtype, method)
    trace, final, found = _run(build, peak, dtype, method, kernels=backward, checkpoint_every=EVERY)
    assert trace.dtype == dtype and trace.shape == (STEPS, 1, CELLS)
    _assert_close({"v": trace}, {"v": expected_trace}, TOLERANCE[dtype], "trace")
    _assert_close(final, expected_final, TOLERANCE[dtype], "final state")
    _assert_close(found, expected, TOLERANCE[dtype], f"gradient ({dtype}, {method})")
    return trace


@pytest.mark.parametrize("name", sorted(bf.channels.CHANNELS))
def test_every_library_channel(backward, name):
    """Each library channel alone (every point cell's channel is one of these), every number learnable."""
    block = CompiledCell(_alone(name)[0], torch.float64, "cpu")
    assert backward.supports(block, CELSIUS, "backward_euler", DT), "the forward Triton kernel runs every library channel"
    _compare(backward, lambda: _alone(name), 3.0, torch.float64)


@pytest.mark.parametrize("case, dtype, method", [
    ("hh", torch.float64, "backward_euler"), ("hh", torch.float64, "crank_nicolson"), ("hh", torch.float32, "backward_euler"),
    ("traub", torch.float64, "backward_euler"),
    ("custom", torch.float64, "backward_euler"), ("custom", torch.float32, "crank_nicolson"),
])
def test_spiking_cells(backward, case, dtype, method):
    """Through spikes, where the step is most nonlinear: HH, Traub–Miles, and expression and tabulated
    gates (the gradient reaches every tabulated value, through the PCHIP slopes too)."""
    build, peak = CELLS_WITH_SPIKES[case]
    trace = _compare(backward, build, peak, dtype, method)
    assert trace.max().item() > 0.0, "the run must reach a spike's upstroke"


def test_integrate_and_fire_reset(backward):
    """A LIF cell (a leak and a threshold reset in the step; the trace is v before the reset, the reset
    passes no gradient) against the CPU gradient kernels, the reference for the reset."""
    from brainfuse_core.solvers import gradient_kernel

    def lif():
        leaves = {}
        return bf.Cell.point(area=AREA, channels=[_learnable(bf.channel("leak", gbar=1e-3, reversal=-65.0), leaves)]), leaves

    reset = (-55.0, -70.0)  # mV
    assert backward.supports(CompiledCell(lif()[0], torch.float64, "cpu"), CELSIUS, "backward_euler", DT, reset)
    expected_trace, expected_final, expected = _run(lif, 12.0, torch.float64, kernels=gradient_kernel, device="cpu",
                                                    reset=reset)
    trace, final, found = _run(lif, 12.0, torch.float64, kernels=backward, reset=reset, checkpoint_every=EVERY)
    assert int(((trace[1:] >= reset[0]) & (trace[:-1] < reset[0])).sum()) >= 2 * CELLS, "every cell fires repeatedly"
    _assert_close({"trace": trace, **final, **found}, {"trace": expected_trace, **expected_final, **expected}, 1e-10, "LIF")


@pytest.mark.skipif(DEVICE != "cpu", reason="on a CUDA device Simulation does not call the CPU gradient kernels")
def test_in_place_of_the_cpu_kernels_in_a_simulation(backward, monkeypatch):
    """At Simulation's call of the CPU gradient kernels (as its dispatch on a CUDA device will call
    these), against the tensor path: a density clamp of learnable amplitude, a batch of two."""
    from brainfuse_core.solvers import gradient_kernel

    calls = []

    def triton_kernels(*args, threads=None, **options):
        calls.append(args[0])
        return backward.run_with_gradients(*args, **options)

    def run(compiled):
        gna, amplitude = _leaf(0.12), _leaf(10.0)  # S/cm², µA/cm²
        cell = bf.Cell.point(area=AREA, channels=[bf.channel("hh_na", gbar=gna), bf.channel("hh_k"), bf.channel("leak")])
        sim = bf.Simulation(cell, stimuli=[bf.IClamp(amp=amplitude, delay=0.5, dur=10.0, density=True)], dt=DT,
                            celsius=CELSIUS, batch=2, compiled=compiled)
        v = sim.run(3.0).traces["cell.v"]
        return v.detach(), torch.autograd.grad((v ** 2).mean(), [gna, amplitude])

    expected_v, expected = run(compiled=False)
    monkeypatch.setattr(gradient_kernel, "run_with_gradients", triton_kernels)
    v, found = run(compiled=True)
    assert calls and v.max().item() > 0.0
    _assert_close({"v": v, "gna": found[0], "amplitude": found[1]},
                  {"v": expected_v, "gna": expected[0], "amplitude": expected[1]}, 1e-10, "simulation")


def test_checkpoint_spacing_does_not_change_the_result(backward):
    """Replays are exact: any spacing gives the same trace, and the same gradients up to the order of
    the parameter adjoints' sums."""
    build = lambda: _alone("hh_k")
    runs = [_run(build, 3.0, torch.float64, kernels=backward, checkpoint_every=every) for every in (1, STEPS)]
    for trace, final, grads in runs[1:]:
        assert torch.equal(trace, runs[0][0]) and all(torch.equal(final[k], runs[0][1][k]) for k in final)
        _assert_close(grads, runs[0][2], 1e-14, "spacing")


def test_batches_and_partial_gradients(backward):
    """(B, C) cells; a loss on the final state only (no trace gradient), the current not learnable."""
    cell, leaves = _hh()
    v0, injected, _ = _inputs(torch.float64, 10.0, steps=12, shape=(2, 3))
    injected = injected.detach().to(DEVICE)
    grads = []
    for kernels in (None, backward):
        block = CompiledCell(cell, torch.float64, DEVICE)
        state = block.initial_state(v0.to(DEVICE).unsqueeze(-1), CELSIUS)
        if kernels is None:
            for k in range(12):
                state = block.step(state, DT, CELSIUS, "backward_euler", injected[k].unsqueeze(-1), 0.0, 0.0)
            final = state
        else:
            trace, final = kernels.run_with_gradients(block, state, DT, injected, CELSIUS, checkpoint_every=5)
            assert trace.shape == (12, 2, 3) and final["v"].shape == (2, 3, 1)
        inputs = {"v0": v0, "gna": leaves["hh_na.gbar"], "m_mid": leaves["hh_na.m.alpha.midpoint"]}
        grads.append(dict(zip(inputs, torch.autograd.grad(final["v"].sum() + final["hh_na.m"].sum(), list(inputs.values())))))
    _assert_close(grads[1], grads[0], 1e-10, "final state only")


def test_new_numbers_reuse_the_kernels(backward):
    from brainfuse_core.gpu import point

    _run(lambda: _alone("hh_k"), 3.0, torch.float64, kernels=backward)
    compiled = len(point._KERNELS)

    def changed():
        cell, leaves = _alone("hh_k")
        leaves["hh_k.gbar"].data.fill_(0.05)
        leaves["hh_k.n.alpha.midpoint"].data.fill_(-50.0)
        return cell, leaves

    _compare(backward, changed, 3.0, torch.float64)
    assert len(point._KERNELS) == compiled


def test_refuses_what_it_cannot_run(backward):
    cell, _ = _hh()
    block = CompiledCell(cell, torch.float64, DEVICE)
    state = block.initial_state(torch.full((1, 4, 1), -65.0, dtype=torch.float64, device=DEVICE), CELSIUS)
    with pytest.raises(ModelError, match=r"expected \(steps, 1, 4\)"):
        backward.run_with_gradients(block, state, DT, torch.zeros(10, 4, dtype=torch.float64), CELSIUS)
    with pytest.raises(ModelError, match="unknown method"):
        backward.run_with_gradients(block, state, DT, torch.zeros(10, 1, 4, dtype=torch.float64), CELSIUS, method="euler")
    batched = bf.Cell.point(area=AREA, channels=[bf.channel("hh_na", gbar=torch.full((2, 1, 1), 0.12, dtype=torch.float64))])
    assert not backward.supports(CompiledCell(batched, torch.float64, "cpu"), CELSIUS, "backward_euler", DT)
    cable = bf.Cell(bf.Morphology([bf.Section("axon", length=100.0, diameter=1.0, nseg=3)])).insert(bf.channel("leak"))
    block = CompiledCell(cable, torch.float64, "cpu")
    assert not backward.supports(block, CELSIUS, "backward_euler", DT)
    with pytest.raises(ModelError, match="one-compartment"):
        backward.run_with_gradients(block, block.initial_state(torch.full((1, 1, 3), -65.0, dtype=torch.float64), CELSIUS),
                                    DT, torch.zeros(5, 1, 1, dtype=torch.float64), CELSIUS)
    if DEVICE == "cpu":
        with triton_interpreter(False):
            with pytest.raises(ModelError, match="CUDA device"):
                backward.run_with_gradients(CompiledCell(cell, torch.float64, "cpu"), state, DT,
                                            torch.zeros(10, 1, 4, dtype=torch.float64), CELSIUS)


@pytest.mark.parametrize("case, dtype", [("custom", torch.float32), ("k_ahp", torch.float64)])
def test_kernels_lower_to_a_cuda_binary(backward, case, dtype):
    """What the interpreter cannot check: the same sources compile for an H100/H200 (no GPU needed)."""
    cell = CELLS_WITH_SPIKES[case][0]()[0] if case in CELLS_WITH_SPIKES else _alone(case)[0]
    with triton_interpreter(False):
        compiled = backward.compile_for_cuda(CompiledCell(cell, dtype, "cpu"), CELSIUS, "backward_euler", DT, dtype)
    for kernel, name in zip(compiled, ("forward", "reverse")):
        assert f".entry {name}" in kernel.asm["ptx"] and len(kernel.asm["cubin"]) > 10_000
