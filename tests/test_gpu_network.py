"""The Triton network path (gpu/network.py, gpu/synapses.py, the one-step kernel of gpu/point.py),
run on the CPU by Triton's interpreter, against the step-by-step tensor path (Simulation with
compiled=False, the reference): a small COBAHH-like network of Traub-Miles cells with exp and
exp2 synapses, Poisson input, several delays and a driver population without synaptic input;
atomic accumulation where spikes of one step reach the same target; lowering to a CUDA binary.

TRITON_INTERPRET=1 is set by a module fixture before any kernel is generated and restored after.
The interpreter costs ~10-30 ms per launch and a network step takes ~10 launches, hence the
small network and the 10 ms run.
"""

import importlib.util
import math

import numpy as np
import pytest
import torch

import brainfuse_core as bf
import brainfuse_core.simulation as simulation
from brainfuse_core.networks.propagation import Connections
from brainfuse_core.solvers.membrane import CompiledCell
from conftest import traub_cell, triton_interpreter

pytestmark = pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="triton is not installed (test extras)")

# mV and ms. Measured over 20 ms: float64 |Δv| < 1e-11 and spike times within 1e-13;
# float32 |Δv| < 2e-3 (rounding amplified on upstrokes) and spike times within 3e-5.
V_TOLERANCE = {torch.float64: 1e-8, torch.float32: 2e-2}
TIME_TOLERANCE = {torch.float64: 1e-9, torch.float32: 1e-3}


@pytest.fixture(scope="module")
def gpu():
    with triton_interpreter(True):
        from brainfuse_core.gpu import network, synapses
        yield network, synapses


def network():
    """40 E, 10 I and 5 driver cells, 20 Poisson trains. E receives Poisson (1 step) and recurrent (2 steps)
    input merged into one exp state, and inhibition (exp, reversal −80 mV) with per-connection delays of
    1 or 4 steps; I receives exp2 input from E and from the drivers, which have no synaptic input themselves."""
    rng = np.random.default_rng(0)
    net = bf.Network([bf.Population("E", traub_cell(), 40, v_init=torch.as_tensor(rng.normal(-65, 5, 40))),
                      bf.Population("I", traub_cell(), 10, v_init=-60.0),
                      bf.Population("D", traub_cell(), 5),
                      bf.PoissonSource("P", 20, rate=400.0, seed=3)])
    p = bf.FixedProbability(0.2, allow_self=False)
    net.connect(bf.Projection("P", "E", bf.ExpSynapse(5.0, 0.0), 0.01, rule=bf.FixedProbability(0.3), seed=2,
                              delay=0.1))
    net.connect(bf.Projection("E", "E", bf.ExpSynapse(5.0, 0.0), 0.006, rule=p, seed=1, delay=0.2,
                              initial_conductance=0.01))
    net.connect(bf.Projection("E", "I", bf.Exp2Synapse(0.5, 3.0, 0.0), 0.01, rule=p, seed=3, delay=0.3))
    net.connect(bf.Projection("D", "I", bf.Exp2Synapse(0.5, 3.0, 0.0), 0.02, rule=bf.AllToAll(), seed=7, delay=0.1))
    i_to_e = bf.Projection("I", "E", bf.ExpSynapse(10.0, -80.0), 0.05, rule=p, seed=4)
    i_to_e.build(net.populations)
    i_to_e.delay = np.random.default_rng(5).choice([0.1, 0.4], i_to_e.pre_index.numel())
    net.connect(i_to_e)
    return net


def run(dtype, gpu_network=None, monkeypatch=None, device="cpu", duration=10.0):
    """``duration`` ms of the network (batch 2, chunks of 40 steps) on the Triton path if ``gpu_network``
    is given (dispatched as simulation.py would on a CUDA device), else on the tensor path."""
    calls = []
    if gpu_network is not None:
        dispatch = lambda *args: calls.append(1) or gpu_network.run_network_chunk(*args)
        monkeypatch.setattr(simulation, "run_network_chunk", dispatch)
        monkeypatch.setattr(simulation.Simulation, "_can_run_whole_chunks", lambda self, grad: gpu_network.supports(self))
    stimuli = [bf.IClamp(torch.tensor([0.3, 0.6]), delay=2.0, dur=15.0, population="E", cells=[0, 1, 2, 7], name="drive E"),
               bf.IClamp(torch.tensor([1.0, 1.5]), population="D", name="drive D")]
    probes = [bf.Probe("E", "v", cells=[0, 5, 7], every=3), bf.Probe("I", "v"), bf.Probe("D", "v", cells=[1])]
    sim = bf.Simulation(network(), stimuli, probes, dt=0.1, dtype=dtype, batch=2, compiled=False, device=device)
    result = sim.run(duration, chunk_steps=40)
    if gpu_network is not None:
        monkeypatch.undo()
        assert len(calls) == math.ceil(round(duration / 0.1) / 40)
    return result, sim.final_state


def assert_same_run(fast, slow, dtype):
    """Equal spike cells and batches, spike times and traces within tolerance."""
    for name in ("E", "I", "D"):
        a, b = fast.spikes[name], slow.spikes[name]
        assert len(b) >= 10 and set(b.batch) == {0, 1}, "the comparison needs spikes in both batch elements"
        np.testing.assert_array_equal(a.cell, b.cell)
        np.testing.assert_array_equal(a.batch, b.batch)
        np.testing.assert_allclose(a.time, b.time, rtol=0, atol=TIME_TOLERANCE[dtype])
    for name in slow.traces:
        torch.testing.assert_close(fast.traces[name].cpu(), slow.traces[name], rtol=0, atol=V_TOLERANCE[dtype])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
def test_network_chunk_matches_the_tensor_path(gpu, monkeypatch, dtype):
    fast, fast_state = run(dtype, gpu[0], monkeypatch)
    slow, slow_state = run(dtype)
    assert_same_run(fast, slow, dtype)
    assert fast_state.keys() == slow_state.keys()
    for key in slow_state:
        scale = max(1.0, slow_state[key].abs().max().item())
        torch.testing.assert_close(fast_state[key], slow_state[key], rtol=0, atol=V_TOLERANCE[dtype] * scale, msg=key)


def test_colliding_spikes_accumulate(gpu):
    """Every pre cell's first connection (and several later ones) hits target 0, so the lanes of one
    program add to the same address in the same instruction; dyadic weights make every sum exact."""
    _, synapses = gpu
    n_pre, n_post, batch = 24, 5, 2
    rng = np.random.default_rng(1)
    pre, post = [], []
    for c in range(n_pre):
        targets = [0, *rng.choice(np.arange(1, n_post), rng.integers(0, n_post), replace=False)]
        pre += [c] * len(targets)
        post += targets
    weights = torch.as_tensor(2.0 ** -rng.integers(0, 6, len(pre)), dtype=torch.float64)
    connections = Connections(torch.as_tensor(pre), torch.as_tensor(post), weights, n_pre)
    counts = torch.as_tensor(rng.integers(0, 3, (3, batch, n_pre)), dtype=torch.float64)
    ring = torch.as_tensor(rng.integers(0, 4, (4, batch, n_post)), dtype=torch.float64)
    states = torch.zeros(1, batch, n_post, dtype=torch.float64)
    groups = [("P", 3, torch.as_tensor(connections.row_pointer), torch.as_tensor(connections.post_np).to(torch.int32),
               weights, int(np.diff(connections.row_pointer).max()), n_pre)]
    entry = synapses.SynapticEntry(states, ring.clone(), torch.ones(5, dtype=torch.float64), False, groups)
    entry.enqueue(2, {"P": counts})
    expected = ring.clone()
    expected[(2 + 3) % 4] += connections.propagate(counts[2], n_post)
    assert torch.equal(entry.ring, expected)
    dense = torch.zeros(batch, n_post, dtype=torch.float64).index_add(1, torch.as_tensor(post),
                                                                    counts[2][:, pre] * weights)
    assert torch.equal(entry.ring[1] - ring[1], dense) and bool((dense[:, 0] >= 4).all())


def test_network_kernels_lower_to_a_cuda_binary():
    """What the interpreter cannot check: the one-step kernel and the synaptic kernels compile for an
    H100/H200 (no GPU needed)."""
    from brainfuse_core.gpu import point, synapses

    with triton_interpreter(False):
        step = point.compile_for_cuda(CompiledCell(traub_cell(), torch.float32, "cpu"), 36.0, "backward_euler", 0.1,
                                      torch.float32, step=True)
        synaptic = synapses.compile_for_cuda(torch.float64)
    assert ".entry step" in step.asm["ptx"] and len(step.asm["cubin"]) > 10_000
    for name, compiled in synaptic.items():
        assert f".entry _{name}" in compiled.asm["ptx"] and len(compiled.asm["cubin"]) > 1_000, name
    assert "atom.global" in synaptic["enqueue"].asm["ptx"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_network_on_a_cuda_device_matches_the_tensor_path(monkeypatch):
    """The compiled kernels (not the interpreter) on a GPU, 20 ms in float64, against the CPU tensor path."""
    from brainfuse_core.gpu import network

    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    fast, _ = run(torch.float64, network, monkeypatch, device="cuda", duration=20.0)
    slow, _ = run(torch.float64, duration=20.0)
    assert_same_run(fast, slow, torch.float64)


def test_supports_only_what_the_kernels_run(gpu):
    """The dispatch test: the Traub network runs; a voltage clamp, a gate probe, a cell of several
    compartments or synaptic time constants that are tensors (learnable) keep the tensor path."""
    network_path, _ = gpu

    def supported(model=None, stimuli=(), probes=None):
        sim = bf.Simulation(model or network(), list(stimuli), probes, dt=0.1, compiled=False)
        sim._prepare(10)
        return network_path.supports(sim)

    cable = bf.Cell(bf.Morphology([bf.Section("dend", length=100.0, diameter=1.0, nseg=3)]))
    cable.insert(bf.channel("leak"))
    learnable = bf.Network([bf.Population("a", traub_cell(), 2), bf.Population("b", traub_cell(), 2)])
    learnable.connect(bf.Projection("a", "b", bf.ExpSynapse(torch.tensor(3.0), 0.0), 0.01, rule=bf.AllToAll()))
    assert supported()
    assert not supported(stimuli=[bf.VClamp([(5.0, -50.0)], population="I")])
    assert not supported(probes=[bf.Probe("E", "traub_kd.n")])
    assert not supported(bf.Network([bf.Population("cable", cable, 2)]))
    assert not supported(learnable)
