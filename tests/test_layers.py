"""HH and LIF layers: forward against independent step-by-step references (the tensor path's
CompiledCell.step for HH, the closed-form backward-Euler LIF update written out here), gradients
against torch autograd through those references and central finite differences, and the layer
contract (shapes, state, device/dtype, errors)."""

import pytest
import torch
from torch import nn

from brainfuse_core.errors import ModelError
from brainfuse_core.solvers.membrane import CompiledCell
from brainfuse_core.spikes import threshold_crossing
from brainfuse_core.training.layers import HHLayer, LIFLayer
from brainfuse_core.training.surrogate import _tensor_counts, spike_counts
from conftest import triton_interpreter

AREA = 1000.0  # µm²
TO_NA = AREA * 1e-5  # µA/cm² → nA on this area


def _hh_reference(layer, density):
    """Spike counts per bin and v at each bin's end from the tensor path, one step at a time."""
    cell = layer._cell()
    block = CompiledCell(cell, torch.float64, "cpu")
    batch, bins, n = density.shape
    state = block.initial_state(torch.full((batch, n, 1), layer.v_rest, dtype=torch.float64), layer.celsius)
    counts, ends = [], []
    for b in range(bins):
        total = 0.0
        for _ in range(layer.substeps):
            before = state["v"][..., 0]
            state = block.step(state, layer.dt, layer.celsius, "backward_euler",
                               (density[:, b] * TO_NA).to(torch.float64).unsqueeze(-1), 0.0, 0.0)
            total = total + threshold_crossing(before.detach(), state["v"][..., 0], layer.threshold, layer.surrogate_beta)
        counts.append(total)
        ends.append(state["v"][..., 0])
    return torch.stack(counts, 1), torch.stack(ends, 1)


def _lif_reference(density, tau_m, threshold, v_reset, v_rest, dt, substeps, beta):
    """Backward Euler of C dv/dt = −(C/τ)(v − v_rest) + I, reset where v reaches the threshold."""
    batch, bins, n = density.shape
    v = torch.full((batch, n), v_rest, dtype=torch.float64)
    counts = []
    for b in range(bins):
        total = 0.0
        for _ in range(substeps):
            # density µA/cm² over cm = 1 µF/cm² is dv/dt in mV/ms
            free = (v + dt * (v_rest / tau_m + density[:, b].to(torch.float64))) / (1.0 + dt / tau_m)
            total = total + threshold_crossing(v.detach(), free, threshold, beta)
            v = torch.where(free.detach() >= threshold, torch.full_like(free, v_reset), free)
        counts.append(total)
    return torch.stack(counts, 1)


def _input(batch, bins, n, scale, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, bins, n, generator=generator, dtype=torch.float64) * scale).requires_grad_()


def test_lif_layer_matches_the_closed_form_update_and_its_gradients():
    layer = LIFLayer(5, tau_m=8.0, threshold=-52.0, v_reset=-70.0, v_rest=-65.0, bin_ms=1.0, dt=0.25,
                     area=AREA, learn_tau=True, checkpoint_every=7)
    density = _input(3, 25, 5, 6.0)
    spikes = layer(density)
    tau = layer.log_tau_m.exp()
    expected = _lif_reference(density, tau, -52.0, -70.0, -65.0, 0.25, 4, layer.surrogate_beta)
    assert spikes.shape == (3, 25, 5) and spikes.sum() > 20
    assert torch.equal(spikes, expected.detach())
    weights = torch.linspace(-1.0, 2.0, 25, dtype=torch.float64)[None, :, None]
    found = torch.autograd.grad((spikes * weights).sum(), [density, layer.log_tau_m])
    reference = torch.autograd.grad((expected * weights).sum(), [density, layer.log_tau_m])
    for a, b in zip(found, reference):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


def test_hh_layer_matches_the_tensor_path_forward_and_backward():
    layer = HHLayer(4, bin_ms=0.5, dt=0.05, area=AREA, checkpoint_every=9)
    density = _input(2, 24, 4, 25.0, seed=1)
    spikes = layer(density)
    counts, _ = _hh_reference(layer, density)
    assert spikes.sum() >= 4
    assert torch.equal(spikes, counts.detach())
    weights = torch.linspace(0.5, -1.0, 24, dtype=torch.float64)[None, :, None]
    found = torch.autograd.grad((spikes * weights).sum(), [density, layer.log_gbar])
    reference = torch.autograd.grad((counts * weights).sum(), [density, layer.log_gbar])
    assert reference[1].abs().max() > 0
    for a, b in zip(found, reference):
        torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-10)


def test_hh_voltage_readout_gradient_matches_finite_differences():
    layer = HHLayer(3, bin_ms=1.0, dt=0.1, area=AREA, output="voltage", checkpoint_every=4)
    density = _input(1, 12, 3, 15.0, seed=2).detach()
    weights = torch.linspace(1.0, 2.0, 12, dtype=torch.float64)[None, :, None]
    loss = lambda: (layer(density) * weights).sum()
    (gradient,) = torch.autograd.grad(loss(), [layer.log_gbar])
    v_end = layer(density)
    _, ends = _hh_reference(layer, density)
    torch.testing.assert_close(v_end, ends.detach(), rtol=1e-10, atol=1e-9)
    h = 1e-6
    for k in range(3):
        with torch.no_grad():
            layer.log_gbar[k] += h
            up = loss()
            layer.log_gbar[k] -= 2 * h
            down = loss()
            layer.log_gbar[k] += h
        assert float(gradient[k]) == pytest.approx(float((up - down) / (2 * h)), rel=1e-5, abs=1e-6)


def test_layers_train_after_linear_and_follow_the_input_dtype():
    torch.manual_seed(0)
    for neurons in (HHLayer(8, bin_ms=1.0, dt=0.1), LIFLayer(8, bin_ms=1.0, dt=0.5)):
        model = nn.Sequential(nn.Linear(6, 8), neurons)
        with torch.no_grad():
            model[0].weight.mul_(10.0)
            model[0].bias.fill_(5.0)
        x = torch.rand(2, 10, 6)
        out = model(x)
        assert out.dtype == torch.float32 and out.shape == (2, 10, 8)
        out.sum().backward()
        assert model[0].weight.grad is not None and torch.isfinite(model[0].weight.grad).all()
        assert model[0].weight.grad.abs().sum() > 0


def test_stateful_layers_continue_where_they_stopped():
    density = _input(2, 20, 3, 20.0, seed=3).detach()
    whole = HHLayer(3, bin_ms=1.0, dt=0.1)(density)
    layer = HHLayer(3, bin_ms=1.0, dt=0.1, stateful=True)
    halves = torch.cat([layer(density[:, :10]), layer(density[:, 10:])], 1)
    assert torch.equal(whole, halves)
    layer.reset_state()
    assert torch.equal(layer(density[:, :10]), whole[:, :10])


def test_bad_layer_input_gets_clear_errors():
    with pytest.raises(ModelError, match="whole number of steps"):
        HHLayer(3, bin_ms=1.0, dt=0.3)
    with pytest.raises(ModelError, match="output must be"):
        LIFLayer(3, output="rates")
    with pytest.raises(ModelError, match="v_reset < threshold"):
        LIFLayer(3, threshold=-60.0, v_reset=-50.0)
    with pytest.raises(ModelError, match="unknown channel"):
        HHLayer(3, channels=("hh_na", "no_such_channel"))
    layer = LIFLayer(3)
    with pytest.raises(ModelError, match=r"takes input \(batch, bins, 3\)"):
        layer(torch.zeros(2, 5, 4))
    with pytest.raises(ModelError, match="NaN"):
        layer(torch.full((1, 2, 3), float("nan")))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("reset", [None, (-50.0, -70.0)])
def test_fused_spike_counts_equal_summed_threshold_crossings(dtype, reset):
    generator = torch.Generator().manual_seed(4)
    trace = (torch.rand(60, 3, 7, generator=generator, dtype=torch.float64) * 60.0 - 80.0).to(dtype).requires_grad_()
    v_start = torch.full((3, 7), -65.0, dtype=dtype)
    counts = spike_counts(trace, v_start, 5, -50.0, 0.7, reset)
    before = torch.cat([v_start.unsqueeze(0), trace[:-1]]).detach()
    if reset is not None:
        before = torch.where(before >= reset[0], torch.full_like(before, reset[1]), before)
    expected = threshold_crossing(before, trace, -50.0, 0.7).reshape(12, 5, 3, 7).sum(1)
    assert counts.dtype == dtype and counts.sum() > 10
    assert torch.equal(counts, expected.detach())
    assert torch.equal(_tensor_counts(trace, v_start, 5, -50.0, 0.7, reset), counts), "the GPU form"
    weights = torch.rand(12, 3, 7, generator=generator, dtype=torch.float64).to(dtype)
    (found,) = torch.autograd.grad((counts * weights).sum(), [trace])
    (reference,) = torch.autograd.grad((expected * weights).sum(), [trace])
    torch.testing.assert_close(found, reference)


def test_layers_on_the_triton_gradient_kernels_match_the_cpu_kernels():
    """engine="triton" (what a CUDA input gets) under Triton's interpreter: the same spikes and
    gradients as the compiled CPU kernels, HH and LIF."""
    for make in (lambda engine: HHLayer(3, bin_ms=0.5, dt=0.05, engine=engine, checkpoint_every=5),
                 lambda engine: LIFLayer(3, bin_ms=0.5, dt=0.25, engine=engine, learn_tau=True, checkpoint_every=5)):
        results = []
        for engine in ("auto", "triton"):
            layer = make(engine)
            density = _input(2, 12, 3, 25.0, seed=5)
            with triton_interpreter(engine == "triton"):
                spikes = layer(density)
                weights = torch.linspace(1.0, -0.5, 12, dtype=torch.float64)[None, :, None]
                grads = torch.autograd.grad((spikes * weights).sum(), [density, *layer.parameters()])
            results.append((spikes, grads))
        (cpu_spikes, cpu_grads), (triton_spikes, triton_grads) = results
        assert cpu_spikes.sum() > 0 and torch.equal(cpu_spikes, triton_spikes)
        for a, b in zip(cpu_grads, triton_grads):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
