"""The compiled whole-network chunk (solvers/network_kernel.py) against the step-by-step path.

Both run the same generated neuron step, so in float64 they must give identical spike trains,
traces and final states; the reference is the Python-driven loop of ``Simulation._step``."""

import numpy as np
import torch

import brainfuse_core as bf
import brainfuse_core.simulation as simulation
from conftest import traub_cell


def network():
    """A small COBAHH-like network: exp and exp2 synapses, Poisson drive merged with recurrent input
    into one synaptic state, per-connection delays of 1 to 25 steps, initial conductances."""
    rng = np.random.default_rng(0)
    net = bf.Network([bf.Population("E", traub_cell(), 40, v_init=torch.as_tensor(rng.normal(-65, 5, 40))),
                      bf.Population("I", traub_cell(), 10, v_init=-60.0),
                      bf.PoissonSource("P", 30, rate=40.0, seed=3)])
    p = bf.FixedProbability(0.2, allow_self=False)
    net.connect(bf.Projection("E", "E", bf.ExpSynapse(5.0, 0.0), 0.006, rule=p, seed=1, initial_conductance=0.02))
    net.connect(bf.Projection("P", "E", bf.ExpSynapse(5.0, 0.0), 0.004, rule=bf.FixedProbability(0.3), seed=2))
    net.connect(bf.Projection("E", "I", bf.Exp2Synapse(0.5, 3.0, 0.0), 0.01, rule=p, seed=3, delay=0.3))
    i_to_e = bf.Projection("I", "E", bf.ExpSynapse(10.0, -80.0), 0.05, rule=p, seed=4)
    i_to_e.build(net.populations)
    i_to_e.delay = np.random.default_rng(5).uniform(0.1, 2.5, i_to_e.pre_index.numel())
    net.connect(i_to_e)
    net.connect(bf.Projection("P", "I", bf.Exp2Synapse(1.0, 6.0, 0.0), 0.01, rule=bf.FixedProbability(0.3), seed=6,
                              delay=0.7))
    return net


def run(dtype, whole_chunks, monkeypatch, monitor=None):
    calls = []
    original = simulation.run_network_chunk
    monkeypatch.setattr(simulation, "run_network_chunk", lambda *args: calls.append(1) or original(*args))
    if not whole_chunks:
        monkeypatch.setattr(simulation.Simulation, "_can_run_whole_chunks", lambda self, grad: False)
    stimuli = [bf.IClamp(torch.tensor([0.3, 0.6]), delay=5.0, dur=40.0, population="E", cells=[0, 1, 2, 7], name="drive E"),
               bf.IClamp(0.2, delay=20.0, dur=10.0, population="I", cells=[4], name="drive I")]
    probes = [bf.Probe("E", "v", cells=[0, 5, 7], every=3), bf.Probe("I", "v")]
    sim = bf.Simulation(network(), stimuli, probes, dt=0.1, dtype=dtype, batch=2)
    result = sim.run(60.0, monitor=monitor, chunk_steps=70)
    monkeypatch.undo()
    assert bool(calls) == whole_chunks
    return result, sim.final_state


def test_network_kernel_equals_the_step_by_step_path_in_float64(monkeypatch):
    reports = []
    fast, fast_state = run(torch.float64, True, monkeypatch, monitor=reports.append)
    slow, slow_state = run(torch.float64, False, monkeypatch)
    assert [(r.start, r.stop) for r in reports] == [(0, 70), (70, 140), (140, 210), (210, 280), (280, 350), (350, 420),
                                                     (420, 490), (490, 560), (560, 600)]
    for name in ("E", "I"):
        a, b = fast.spikes[name], slow.spikes[name]
        assert len(a) > 20 and set(a.batch) == {0, 1}
        np.testing.assert_array_equal(a.time, b.time)
        np.testing.assert_array_equal(a.cell, b.cell)
        np.testing.assert_array_equal(a.batch, b.batch)
    for name in slow.traces:
        torch.testing.assert_close(fast.traces[name], slow.traces[name], rtol=0, atol=0)
    assert fast_state.keys() == slow_state.keys()
    for key in slow_state:
        torch.testing.assert_close(fast_state[key], slow_state[key], rtol=0, atol=0, msg=key)
    monitored = np.concatenate([r.spikes["I"][0] for r in reports])
    np.testing.assert_array_equal(np.sort(monitored), fast.spikes["I"].time)


def test_network_kernel_in_float32_matches_within_rounding(monkeypatch):
    fast, _ = run(torch.float32, True, monkeypatch)
    slow, _ = run(torch.float32, False, monkeypatch)
    for name in ("E", "I"):
        a, b = fast.spikes[name], slow.spikes[name]
        np.testing.assert_array_equal(a.cell, b.cell)
        np.testing.assert_allclose(a.time, b.time, atol=1e-6)
    for name in slow.traces:
        torch.testing.assert_close(fast.traces[name], slow.traces[name], rtol=0, atol=1e-4)


def test_tensor_synapse_kinetics_keep_the_step_by_step_path(monkeypatch):
    net = bf.Network([bf.Population("a", traub_cell(), 2), bf.Population("b", traub_cell(), 2)])
    net.connect(bf.Projection("a", "b", bf.ExpSynapse(torch.tensor(3.0), 0.0), 0.01, rule=bf.AllToAll()))
    calls = []
    monkeypatch.setattr(simulation, "run_network_chunk", lambda *args: calls.append(1))
    bf.Simulation(net, [bf.IClamp(1.0, population="a")], dt=0.1).run(5.0)
    assert not calls
