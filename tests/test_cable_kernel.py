"""The compiled cable kernel (solvers/cable_kernel.py) against the tensor path (CompiledCell.step):
the same scheme, so traces agree to float rounding, for branched cells, every channel form,
both integration methods and synaptic input at nodes."""

import warnings

import pytest
import torch

import brainfuse_core as bf
from brainfuse_core.solvers.cable_kernel import cable_kernel
from brainfuse_core.solvers.membrane import CompiledCell
from conftest import ball_and_two_dendrites


CELSIUS = 6.3


def _hh_cable(nseg=100):
    cable = bf.Cell(bf.Morphology.cylinder(1000.0, 1.0, nseg=nseg), name="cable")
    for channel in (bf.channel("hh_na"), bf.channel("hh_k"), bf.channel("leak")):
        cable.insert(channel)
    return cable


def _run_both(cell, dtype, method, steps=300, dt=0.025, amplitude=0.3, synaptic=False):
    """Per-step tensor path and the kernel's chunk from the same rest state, current into node 0
    (1.5x larger in the second batch), optionally a conductance at the last node."""
    block = CompiledCell(cell, dtype, "cpu")
    batch, cells, nodes = 2, 2, block.size
    state = block.initial_state(torch.full((batch, cells, nodes), -65.0, dtype=dtype), CELSIUS)
    injected = torch.zeros(batch, cells, nodes, dtype=dtype)
    injected[..., 0] = amplitude
    injected[1] *= 1.5
    linear_g = linear_ge = 0.0
    if synaptic:
        linear_g = torch.zeros_like(injected)
        linear_g[..., -1] = 0.01
        linear_ge = linear_g * 0.0
    reference, trace = dict(state), []
    for _ in range(steps):
        reference = block.step(reference, dt, CELSIUS, method, injected, linear_g, linear_ge)
        trace.append(reference["v"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kernel = cable_kernel(block, CELSIUS, method, dt)
        assert kernel is not None
        if synaptic:
            compiled = dict(state)
            for _ in range(steps):
                compiled = kernel(compiled, dt, injected, linear_g, linear_ge)
            return torch.stack(trace), reference, None, compiled
        compiled, spikes, _, compiled_trace = kernel.run(state, dt, injected.reshape(1, batch, -1), torch.zeros(steps, dtype=torch.int64),
                                                        0, 0.0, True)
    return torch.stack(trace), reference, compiled_trace, compiled


@pytest.mark.parametrize("dtype, tolerance, method", [(torch.float64, 1e-9, "backward_euler"),
                                                      (torch.float32, 2e-3, "backward_euler"),
                                                      (torch.float64, 1e-9, "crank_nicolson")])
def test_hh_cable_matches_tensor_path(dtype, tolerance, method):
    trace, reference, compiled_trace, compiled = _run_both(_hh_cable(), dtype, method, amplitude=0.05)
    assert float(trace.max()) > 20.0, "the cable must fire for the test to mean anything"
    assert torch.allclose(compiled_trace, trace, atol=tolerance, rtol=0)
    for name in reference:
        assert torch.allclose(compiled[name], reference[name], atol=tolerance, rtol=0), name


def test_branched_cell_with_expression_and_tabulated_channels_matches_tensor_path():
    trace, reference, compiled_trace, compiled = _run_both(ball_and_two_dendrites(), torch.float64, "backward_euler",
                                                           amplitude=1.0)
    assert float(trace[..., 0].max()) > 0.0
    assert torch.allclose(compiled_trace, trace, atol=1e-9, rtol=0)


def test_synaptic_input_at_nodes_matches_tensor_path():
    trace, reference, _, compiled = _run_both(ball_and_two_dendrites(), torch.float64, "backward_euler", steps=100, synaptic=True)
    for name in reference:
        assert torch.allclose(compiled[name], reference[name], atol=1e-9, rtol=0), name


def test_spikes_at_the_spike_node_with_crossing_fractions():
    block = CompiledCell(_hh_cable(20), torch.float64, "cpu")
    state = block.initial_state(torch.full((1, 1, block.size), -65.0, dtype=torch.float64), CELSIUS)
    injected = torch.zeros(2, 1, block.size, dtype=torch.float64)
    injected[1, :, 0] = 0.1
    rows = torch.ones(400, dtype=torch.int64)
    rows[:50] = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kernel = cable_kernel(block, CELSIUS, "backward_euler", 0.025)
        far = block.size - 2
        _, spikes, fraction, trace = kernel.run(state, 0.025, injected, rows, far, 0.0, True)
    v = trace[:, 0, 0, far]
    crossings = ((v[:-1] < 0.0) & (v[1:] >= 0.0)).nonzero().flatten() + 1
    assert len(crossings) >= 1
    assert torch.equal(spikes[:, 0, 0].nonzero().flatten(), crossings)
    for step in crossings:
        expected = (0.0 - v[step - 1]) / (v[step] - v[step - 1])
        assert float(fraction[step, 0, 0]) == pytest.approx(float(expected), rel=1e-12)


def test_partial_calcium_pools_fall_back_to_the_tensor_path():
    cell = ball_and_two_dendrites()
    cell.insert(bf.channel("ca_hva", gbar=1e-3), "soma").add_pool(bf.calcium_pool(), "soma")
    assert cable_kernel(CompiledCell(cell, torch.float64, "cpu"), CELSIUS, "backward_euler", 0.025) is None
