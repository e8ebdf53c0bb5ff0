"""Unit checks of the core against independent references: dense linear algebra, scipy, analytic solutions."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.interpolate import PchipInterpolator

import brainfuse_core as bf
from brainfuse_core.channels import Expression, Tabulated
from brainfuse_core.errors import ExpressionError, ModelError, SimulationUnstableError
from brainfuse_core.solvers.hines import tree_solve


def hh_cell(**kwargs):
    return bf.Cell.point(diameter=100.0, channels=[bf.channel("hh_na"), bf.channel("hh_k"), bf.channel("leak")], **kwargs)


def passive_cell(area=1000.0, g=1e-4, e=-70.0):
    return bf.Cell.point(area=area, channels=[bf.channel("leak", gbar=g, reversal=e)], v_init=e)


def test_tree_solve_matches_dense_solve_and_its_adjoint_is_exact():
    parent = np.array([-1, 0, 1, 1, 3, 0, 5])
    n = len(parent)
    generator = torch.Generator().manual_seed(1)
    g = torch.rand(n, dtype=torch.float64, generator=generator).requires_grad_()
    d = (torch.rand(3, n, dtype=torch.float64, generator=generator) + 3).requires_grad_()
    b = torch.rand(3, n, dtype=torch.float64, generator=generator).requires_grad_()
    dense = torch.diag_embed(d.detach())
    for i in range(1, n):
        dense[:, i, parent[i]] = dense[:, parent[i], i] = -g.detach()[i]
    expected = torch.linalg.solve(dense, b.detach().unsqueeze(-1)).squeeze(-1)
    assert torch.allclose(tree_solve(d, g, b, parent), expected, atol=1e-13)
    assert torch.autograd.gradcheck(lambda d, g, b: tree_solve(d, g, b, parent), (d, g, b))


@pytest.mark.parametrize("text", ["__import__('os')", "os.system", "v.real", "open(1)", "lambda: 1", "[v]", "x + 1", "v if v else 1"])
def test_expressions_outside_the_whitelist_are_rejected(text):
    with pytest.raises(ExpressionError):
        Expression(text, {"v"})


def test_expression_evaluates_like_the_formula_it_spells():
    v = torch.linspace(-100, 50, 31, dtype=torch.float64)
    e = Expression("0.1 * explinear((v + 40) / 10) + 4 * exp(-(v + 65) / 18)", {"v"})
    u = (v + 40) / 10
    expected = 0.1 * torch.where(u.abs() < 1e-9, torch.ones_like(u), u / (1 - torch.exp(-u))) + 4 * torch.exp(-(v + 65) / 18)
    assert torch.allclose(e.evaluate({"v": v}), expected, rtol=1e-12)


def test_tabulated_curve_is_scipys_pchip_and_flat_outside():
    points, values = [-100.0, -60.0, -40.0, -20.0, 0.0, 40.0], [0.0, 0.02, 0.3, 0.7, 0.95, 1.0]
    v = torch.linspace(-100, 40, 281, dtype=torch.float64)
    ours = Tabulated(points=points, values=values)({"v": v})
    assert np.allclose(ours.numpy(), PchipInterpolator(points, values)(v.numpy()), atol=1e-12)
    outside = Tabulated(points=points, values=values)({"v": torch.tensor([-150.0, 80.0], dtype=torch.float64)})
    assert outside.tolist() == [0.0, 1.0]


def test_resting_potential_of_hh_cell_is_a_fixed_point():
    result = bf.Simulation(hh_cell(v_init=-65.0), dt=0.025).run(20.0)
    v = result.traces["cell.v"][0, 0]
    assert abs(float(v[-1]) - float(v[0])) < 0.05


def test_passive_cell_charges_with_the_membrane_time_constant():
    area, g, e, amp = 1000.0, 1e-4, -70.0, 0.01  # µm², S/cm², mV, nA
    result = bf.Simulation(passive_cell(area, g, e), stimuli=[bf.IClamp(amp)], dt=0.001, method="crank_nicolson").run(20.0)
    t = result.t.numpy()
    tau = 1.0 / g * 1e-3  # cm 1 µF/cm² over g S/cm² → ms
    r_input = 1.0 / (g * area * 1e-2)  # MΩ
    analytic = e + amp * r_input * (1 - np.exp(-t / tau))
    assert np.abs(result.traces["cell.v"][0, 0].numpy() - analytic).max() < 1e-4


def test_batched_stimuli_equal_separate_runs():
    amps = torch.tensor([0.0, 5.0, 10.0, 15.0], dtype=torch.float64)
    batched = bf.Simulation(hh_cell(), stimuli=[bf.IClamp(amps, density=True)], batch=4).run(30.0)
    for k, amp in enumerate(amps.tolist()):
        single = bf.Simulation(hh_cell(), stimuli=[bf.IClamp(amp, density=True)]).run(30.0)
        assert torch.allclose(batched.traces["cell.v"][k], single.traces["cell.v"][0], atol=1e-10)


def test_spike_train_through_exp_synapse_gives_analytic_conductance():
    # A spike at 1.0 ms, delay 0.5 ms: g(t) = w·exp(−(t − 1.5)/τ) from 1.5 ms onward. A clamp holds v
    # at -70 mV so the synaptic current is g·(e_rev − v) and the recorded clamp current reveals g.
    w, tau, e_rev, dt = 0.002, 3.0, 0.0, 0.01
    net = bf.Network([bf.Population("post", passive_cell(g=1e-9), 1), bf.SpikeTrainSource("src", [[1.0]])])
    net.connect(bf.Projection("src", "post", bf.ExpSynapse(tau, e_rev), w, rule=bf.AllToAll(), delay=0.5))
    clamp = bf.VClamp([(20.0, -70.0)], rs=1e-4, population="post")
    result = bf.Simulation(net, stimuli=[clamp], dt=dt).run(20.0)
    current = -result.clamp_currents["VClamp"][0, 0].numpy()  # the clamp supplies the synaptic current
    t = (np.arange(len(current)) + 1) * dt
    analytic = np.where(t > 1.5 + 1e-9, w * np.exp(-(t - 1.5 - dt) / tau) * (e_rev + 70.0), 0.0)
    assert np.abs(current - analytic).max() < 0.02 * analytic.max()


def test_exp2_synapse_peaks_at_its_weight():
    syn = bf.Exp2Synapse(0.5, 5.0)
    states = syn.receive([torch.zeros(1), torch.zeros(1)], torch.ones(1) * 0.01)
    peak = 0.0
    for _ in range(4000):
        states = syn.decay(states, 0.001)
        peak = max(peak, float(syn.conductance(states)))
    assert abs(peak - 0.01) < 1e-6


def test_fixed_indegree_and_probability_rules():
    rng = np.random.default_rng(0)
    pre, post = bf.FixedInDegree(7).connect(50, 40, True, rng)
    assert np.all(np.bincount(post, minlength=40) == 7) and not np.any(pre == post)
    pre, post = bf.FixedProbability(0.1).connect(400, 400, True, rng)
    assert abs(len(pre) - 0.1 * 400 * 399) < 5 * math.sqrt(0.1 * 0.9 * 400 * 399) and not np.any(pre == post)


def test_voltage_clamp_current_matches_ohms_law_on_passive_cell():
    area, g, e = 1000.0, 1e-4, -70.0
    clamp = bf.VClamp([(5.0, -70.0), (10.0, -20.0)], rs=1e-4)
    result = bf.Simulation(passive_cell(area, g, e), stimuli=[clamp], dt=0.01).run(15.0)
    steady = float(result.clamp_currents["VClamp"][0, 0, -1])
    assert abs(steady - g * area * 1e-2 * (-20.0 - e)) < 1e-3 * abs(steady)


def test_nan_in_the_dynamics_raises_an_error_naming_time_and_fix():
    # sqrt of a negative voltage: the gate, and with it v, turns NaN once the cell is depolarised past 0 mV... and below.
    gate = bf.Gate("x", 1, inf=bf.channels.ExpressionCurve("sqrt(v + 60)"), tau=bf.channels.Constant(value=1.0))
    cell = bf.Cell.point(diameter=10.0, channels=[bf.Channel("odd", [gate], gbar=0.01, reversal=0.0), bf.channel("leak")])
    with pytest.raises(SimulationUnstableError, match=r"NaN.*between t = .* smaller dt"):
        bf.Simulation(cell, stimuli=[bf.IClamp(-1.0, delay=5.0)], dt=0.1).run(50.0)
    with pytest.raises(ModelError, match="gbar"):
        bf.channel("leak", gbar=-1.0)


def test_negative_diameter_and_unknown_channel_are_refused():
    with pytest.raises(ModelError, match="diameter"):
        bf.Section("dend", 100.0, -1.0)
    with pytest.raises(ModelError, match="unknown channel 'hh_nax'"):
        bf.channel("hh_nax")


def test_a_learnable_cm_or_ra_is_refused_rather_than_silently_ignored():
    for field in ("cm", "ra"):
        with pytest.raises(ModelError, match=f"{field} is a tensor that requires grad.*finite_differences"):
            bf.Cell.point(area=100.0, **{field: torch.tensor(1.0, requires_grad=True)})


def test_calcium_pool_fills_during_spikes_and_drives_k_ahp():
    cell = hh_cell()
    cell.insert(bf.channel("ca_hva", gbar=1e-3))
    cell.insert(bf.channel("k_ahp", gbar=1e-3))
    cell.add_pool(bf.calcium_pool())
    probes = [bf.Probe("cell", "cai"), bf.Probe("cell", "k_ahp.w")]
    result = bf.Simulation(cell, stimuli=[bf.IClamp(10.0, density=True)], probes=probes).run(50.0)
    cai = result.traces["cell.cai"][0, 0]
    assert float(cai.max()) > 10 * 5e-5 and float(result.traces["cell.k_ahp.w"][0, 0].max()) > 1e-3


def test_recomputed_gradients_equal_plain_autograd_in_a_network():
    def loss(checkpoint):
        weight = torch.full((1,), 0.05, dtype=torch.float64, requires_grad=True)
        gk = torch.tensor(0.036, dtype=torch.float64, requires_grad=True)
        net = bf.Network([bf.Population("a", hh_cell(), 1), bf.Population("b", bf.Cell.point(diameter=100.0, channels=[bf.channel("hh_na"), bf.channel("hh_k", gbar=gk), bf.channel("leak")]), 1)])
        net.connect(bf.Projection("a", "b", bf.ExpSynapse(2.0, 0.0), weight, rule=bf.AllToAll(), delay=1.0))
        sim = bf.Simulation(net, stimuli=[bf.IClamp(10.0, density=True, population="a")], probes=[bf.Probe("b", "v")],
                            dt=0.05, checkpoint=checkpoint, checkpoint_every=37)
        value = (sim.run(15.0).traces["b.v"] ** 2).mean()
        value.backward()
        return weight.grad.item(), gk.grad.item()

    recomputed, plain = loss(True), loss(False)
    assert recomputed[0] != 0.0 and np.allclose(recomputed, plain, rtol=1e-10)


def test_float32_runs_and_tracks_float64():
    single = bf.Simulation(hh_cell(), stimuli=[bf.IClamp(10.0, density=True)], dtype=torch.float32).run(50.0)
    double = bf.Simulation(hh_cell(), stimuli=[bf.IClamp(10.0, density=True)]).run(50.0)
    assert single.traces["cell.v"].dtype == torch.float32
    assert np.abs(single.spikes["cell"].times() - double.spikes["cell"].times()).max() < 0.2


def test_swc_morphology_becomes_sections_with_the_right_area(tmp_path):
    # soma sphere r = 5 µm; a dendrite (r 1 µm) to x = 20 µm that then forks in two (r 0.5 µm).
    swc = tmp_path / "cell.swc"
    swc.write_text(
        "# id type x y z r parent\n"
        "1 1 0 0 0 5 -1\n"
        "2 3 10 0 0 1 1\n"
        "3 3 20 0 0 1 2\n"
        "4 3 30 10 0 0.5 3\n"
        "5 3 30 -10 0 0.5 3\n"
    )
    morphology = bf.load_swc(swc, max_segment_length=5.0)
    sections = morphology.sections
    assert set(sections) == {"soma", "basal[0]", "basal[1]", "basal[2]"}
    assert sections["soma"].length == sections["soma"].diameter == 10.0
    trunk = sections["basal[0]"]
    # As NEURON's Import3d: the trunk starts at its own first point (x = 10 µm) and is wired to the soma's centre.
    assert trunk.parent == "soma" and trunk.parent_x == 0.5 and math.isclose(trunk.length, 10.0)
    assert math.isclose(trunk.area, 2 * math.pi * 1.0 * 10.0)
    assert trunk.nseg == 2
    fork = sections["basal[1]"]
    assert math.isclose(fork.area, math.pi * (1.0 + 0.5) * math.sqrt(200 + 0.25)) and fork.parent == "basal[0]"
    assert sorted(morphology.graph.successors("basal[0]")) == ["basal[1]", "basal[2]"]
    cell = bf.Cell(morphology)
    cell.insert(bf.channel("leak", gbar=1e-4, reversal=-70.0))
    assert abs(cell.layout.area.sum() - sum(s.area for s in sections.values())) < 1e-9


def test_three_point_soma_is_a_cylinder_of_the_sphere_area(tmp_path):
    swc = tmp_path / "soma3.swc"
    swc.write_text("1 1 0 0 0 10 -1\n2 1 0 -10 0 10 1\n3 1 0 10 0 10 1\n4 3 0 0 60 1 1\n")
    morphology = bf.load_swc(swc)
    assert math.isclose(morphology.sections["soma"].area, 4 * math.pi * 10.0**2)
    assert math.isclose(morphology.sections["basal[0]"].length, 60.0)  # a one-point neurite is drawn from the soma centre


def test_malformed_swc_names_the_line(tmp_path):
    swc = tmp_path / "bad.swc"
    swc.write_text("1 1 0 0 0 5 -1\n2 3 10 0 0 1 7\n")
    with pytest.raises(ModelError, match="bad.swc:2"):
        bf.load_swc(swc)


def test_pulse_train_gives_one_spike_per_pulse():
    train = bf.PulseTrain(amp=40.0, delay=5.0, width=1.0, interval=20.0, number=4, density=True)
    result = bf.Simulation(hh_cell(), stimuli=[train]).run(100.0)
    times = result.spikes["cell"].times()
    assert len(times) == 4 and np.all(np.abs(times - (5.0 + 20.0 * np.arange(4)) - 1.0) < 2.0)


def test_noisy_clamp_has_the_requested_mean_and_spread():
    clamp = bf.NoisyClamp(mean=0.002, std=0.01, seed=3)
    current = clamp.currents(torch.arange(20000, dtype=torch.float64) * 0.025, 1, 1)
    assert abs(float(current.mean()) - 0.002) < 4 * 0.01 / math.sqrt(20000)
    assert abs(float(current.std()) - 0.01) < 0.0005
    result = bf.Simulation(passive_cell(), stimuli=[clamp]).run(50.0)
    assert float(result.traces["cell.v"].std()) > 0.0


def test_poisson_source_fires_at_its_rate():
    raster = bf.PoissonSource("p", 200, rate=20.0, seed=1).spike_counts(0, 40000, 0.025, 1, torch.float64, "cpu")
    rate = float(raster.sum()) / (200 * 1.0)
    assert abs(rate - 20.0) < 4 * math.sqrt(20.0 / 200)


def test_poisson_counts_hold_many_superposed_inputs_and_do_not_depend_on_chunking():
    source = bf.PoissonSource("p", 50, rate=16000.0, seed=4)  # 2,000 afferents at 8 Hz: rate·dt = 1.6 per step
    whole = source.spike_counts(0, 3000, 0.1, 1, torch.float64, "cpu")
    assert abs(float(whole.mean()) - 1.6) < 4 * math.sqrt(1.6 / whole.numel())
    assert abs(float(whole.var()) - 1.6) < 0.05  # Poisson: variance = mean; a 0/1 raster could not exceed 0.25
    pieces = torch.cat([source.spike_counts(a, min(3000, a + 700), 0.1, 1, torch.float64, "cpu") for a in range(0, 3000, 700)])
    assert torch.equal(whole, pieces)


def test_recording_every_k_steps_decimates_the_same_trace():
    probes = [bf.Probe("cell", "v", name="all"), bf.Probe("cell", "v", every=4, name="every4")]
    result = bf.Simulation(hh_cell(), stimuli=[bf.IClamp(10.0, density=True)], probes=probes).run(20.0)
    assert torch.equal(result.traces["every4"], result.traces["all"][..., ::4])
    assert torch.allclose(result.times["every4"], result.times["all"][::4])


@pytest.mark.parametrize("method", ["backward_euler", "crank_nicolson"])
def test_generated_cpu_kernel_equals_the_tensor_path(method):
    def rich_cell():
        cell = hh_cell()
        for name, gbar in (("ca_hva", 1e-3), ("k_ahp", 1e-3), ("m_current", 1e-4), ("ih", 1e-4)):
            cell.insert(bf.channel(name, gbar=gbar))
        return cell.add_pool(bf.calcium_pool())

    amps = torch.tensor([6.0, 10.0, 20.0], dtype=torch.float64)
    for probes in ([bf.Probe("cell", "v", every=3)], [bf.Probe("cell", "v"), bf.Probe("cell", "cai"), bf.Probe("cell", "k_ahp.w")]):
        runs = [bf.Simulation(rich_cell(), stimuli=[bf.IClamp(amps, delay=2.0, density=True)], probes=probes, batch=3,
                              method=method, compiled=compiled).run(60.0) for compiled in (True, False)]
        for name in runs[0].traces:
            assert torch.allclose(runs[0].traces[name], runs[1].traces[name], rtol=1e-9, atol=1e-9), name
        assert np.allclose(runs[0].spikes["cell"].time, runs[1].spikes["cell"].time, atol=1e-9)
        assert len(runs[0].spikes["cell"]) >= 3


def test_tabulated_curves_compile_and_new_values_reuse_the_kernel():
    from brainfuse_core.channels.curves import Tabulated
    from brainfuse_core.solvers import generated

    def tabulated_cell(shift):
        na = bf.channel("hh_na")
        v = torch.linspace(-100.0, 50.0, 16, dtype=torch.float64)
        curves = na.curves(v)["m"]
        points = v.tolist()
        na.gates[0] = bf.Gate("m", 3, inf=Tabulated(points=points, values=curves["inf"].tolist()),
                              tau=Tabulated(points=[p + shift for p in points], values=(curves["tau"] * 3.0).tolist()))
        return bf.Cell.point(area=31416.0, channels=[na, bf.channel("hh_k"), bf.channel("leak")])

    kernels = []
    for shift in (0.0, 2.0):
        runs = [bf.Simulation(tabulated_cell(shift), stimuli=[bf.IClamp(10.0, density=True)], compiled=compiled_path).run(40.0)
                for compiled_path in (True, False)]
        assert torch.allclose(runs[0].traces["cell.v"], runs[1].traces["cell.v"], rtol=1e-9, atol=1e-9)
        assert len(runs[0].spikes["cell"]) >= 1
        kernels.append(set(generated._MODULES))
    sources = [Path(generated._MODULES[digest].__file__).read_text() for digest in kernels[0]]
    assert any("_pchip(" in source for source in sources)  # the tabulated gate went through the compiled kernel
    assert kernels[1] == kernels[0]  # other values, same structure: the kernel is reused, nothing new compiled


def _two_cell_net(weight, delay, synapse=None):
    net = bf.Network([bf.Population("a", hh_cell(), 2), bf.Population("b", hh_cell(), 2)])
    net.connect(bf.Projection("a", "b", synapse or bf.ExpSynapse(2.0, 0.0), weight, rule=bf.Explicit([(0, 1), (1, 0)]), delay=delay))
    return net


@pytest.mark.parametrize("delay", [1.0, [0.5, 1.0]])
def test_learnable_weights_with_mixed_delays_get_plain_autograd_gradients(delay):
    def grad(checkpoint):
        weight = torch.tensor([0.05, 0.08], dtype=torch.float64, requires_grad=True)
        sim = bf.Simulation(_two_cell_net(weight, delay), stimuli=[bf.IClamp(10.0, density=True, population="a")],
                            probes=[bf.Probe("b", "v")], dt=0.05, checkpoint=checkpoint, checkpoint_every=29)
        (sim.run(12.0).traces["b.v"] ** 2).mean().backward()
        return weight.grad

    assert torch.allclose(grad(True), grad(False), rtol=1e-10) and grad(True).abs().min() > 0


def test_graphs_of_two_runs_of_one_simulation_backpropagate_independently():
    gk = torch.tensor(0.036, dtype=torch.float64, requires_grad=True)
    cell = bf.Cell.point(diameter=100.0, channels=[bf.channel("hh_na"), bf.channel("hh_k", gbar=gk), bf.channel("leak")])
    sim = bf.Simulation(cell, stimuli=[bf.IClamp(10.0, density=True)], dt=0.05)
    first = (sim.run(6.0).traces["cell.v"] ** 2).mean()
    first.backward()
    once = gk.grad.clone()
    gk.grad = None
    first, second = (sim.run(6.0).traces["cell.v"] ** 2).mean(), (sim.run(3.0).traces["cell.v"] ** 2).mean()
    first.backward()
    assert torch.allclose(gk.grad, once, rtol=1e-12)


def test_explicit_connections_keep_their_own_weights():
    # Only cell a[1] fires; its connection (1 → 0) has weight 0, so b[0] must stay like the unreached b[1].
    net = _two_cell_net(torch.tensor([0.05, 0.0], dtype=torch.float64), 1.0)
    stim = bf.IClamp(20.0, density=True, population="a", cells=[1])
    result = bf.Simulation(net, stimuli=[stim], probes=[bf.Probe("b", "v")], dt=0.05).run(10.0)
    v = result.traces["b.v"][0]
    assert len(result.spikes["a"].times(cell=1)) >= 1 and torch.equal(v[0], v[1])


@pytest.mark.parametrize("synapse", [bf.ExpSynapse(5.0, 0.0), bf.Exp2Synapse(0.5, 5.0, 0.0)])
def test_initial_conductance_is_the_conductance_at_time_zero(synapse):
    net = _two_cell_net(0.0, 1.0, synapse)
    net.projections[0].initial_conductance = 0.01
    clamp = bf.VClamp([(1.0, -65.0)], rs=1e-4, population="b", cells=[0])
    current = bf.Simulation(net, stimuli=[clamp], dt=0.01).run(0.02).clamp_currents["VClamp"][0, 0, 0]
    hh_at_rest = bf.Simulation(hh_cell(), stimuli=[bf.VClamp([(1.0, -65.0)], rs=1e-4)], dt=0.01).run(0.02).clamp_currents["VClamp"][0, 0, 0]
    # The clamp holds v at −65 mV by taking out the synaptic current g·(0 − v) = 0.65 nA.
    assert abs(float(current - hh_at_rest) + 0.01 * 65.0) < 0.01 * 65.0 * 0.02


@pytest.mark.parametrize("text", ["1" + "0" * 400 + " * v", " + ".join(["v"] * 3000), "-" * 50000 + "v"])
def test_pathological_expressions_give_an_expression_error(text):
    with pytest.raises(ExpressionError):
        Expression(text, {"v"})


def test_spike_trains_carry_surrogate_gradients_identically_with_recomputation():
    def run(checkpoint):
        weight = torch.tensor([0.05, 0.08], dtype=torch.float64, requires_grad=True)
        sim = bf.Simulation(_two_cell_net(weight, 1.0), stimuli=[bf.IClamp(10.0, density=True, population="a")],
                            probes=[], dt=0.05, checkpoint=checkpoint, checkpoint_every=23, record_spike_trains=True)
        result = sim.run(30.0)
        train = result.spike_trains["b"]
        train.sum().backward()
        return result, train.detach(), weight.grad

    recomputed, plain = run(True), run(False)
    result, train, grad = recomputed
    step, _, cell = torch.nonzero(train, as_tuple=True)
    assert len(step) == len(result.spikes["b"]) > 0
    assert np.array_equal(np.sort(cell.numpy()), np.sort(result.spikes["b"].cell))
    assert torch.allclose(grad, plain[2], rtol=1e-10) and grad.abs().max() > 0


def test_one_to_one_connects_each_cell_to_its_namesake_and_refuses_unequal_sizes():
    pre, post = bf.OneToOne().connect(5, 5, False, np.random.default_rng(0))
    assert pre.tolist() == post.tolist() == list(range(5))
    with pytest.raises(ModelError, match="equal size"):
        bf.OneToOne().connect(5, 4, False, np.random.default_rng(0))
