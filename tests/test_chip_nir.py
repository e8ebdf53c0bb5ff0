"""NIR export (brainfuse_core/chip/nir_export.py): a written graph reads back with NIR's own reader (type
checked), carries the weights and the HH cells, and the network rebuilt from it fires exactly as the original."""

from pathlib import Path

import numpy as np
import pytest
import torch

import brainfuse_core as bf
from brainfuse_core.chip.nir_export import from_nir, read_nir, to_nir, write_nir
from brainfuse_core.errors import ModelError
from brainfuse_core.project import load_project

nir = pytest.importorskip("nir")

DEMO = Path(__file__).resolve().parents[1] / "projects" / "chip_demo.json"


def test_round_trip_keeps_graph_weights_and_dynamics(tmp_path):
    project = load_project(DEMO)
    parts = project.build()
    net = parts.network
    net.projections[0].initial_conductance = torch.linspace(0.0, 0.003, 4, dtype=torch.float64)  # per post cell
    path = write_nir(net, tmp_path / "demo.nir")
    graph = nir.read(path)  # NIR's reader with its type inference
    assert isinstance(graph.nodes["exc"], nir.Threshold) and graph.nodes["exc"].threshold.tolist() == [-20.0] * 16
    assert isinstance(graph.nodes["projection0"], nir.Linear)
    assert ("exc", "projection0") in graph.edges and ("projection0", "inh") in graph.edges
    assert ("inh", "projection1") in graph.edges and ("projection1", "exc") in graph.edges
    dense = np.zeros((4, 16))
    proj = net.projections[0]
    dense[proj.post_index.numpy(), proj.pre_index.numpy()] = proj.weights.detach().numpy()
    assert np.array_equal(graph.nodes["projection0"].weight, dense)

    back = read_nir(path)
    assert list(back.populations) == ["exc", "inh"]
    cell = back.populations["exc"].cell
    assert sorted(cell.channels) == ["hh_k", "hh_na", "leak"]
    assert float(cell.channels["hh_na"].gbar) == 0.12 and cell.reversals["na"] == 50
    original = bf.Simulation(net, parts.stimuli, probes=[bf.Probe("inh", "v")], dt=0.025).run(60.0)
    rebuilt = bf.Simulation(back, project.build().stimuli, probes=[bf.Probe("inh", "v")], dt=0.025).run(60.0)
    for pop in ("exc", "inh"):
        assert len(original.spikes[pop]) > 5
        assert np.array_equal(original.spikes[pop].time, rebuilt.spikes[pop].time), pop
    assert torch.equal(original.traces["inh.v"], rebuilt.traces["inh.v"])


def test_what_nir_cannot_carry_is_refused():
    cell = bf.Cell.point(area=1000.0, channels=[bf.channel("hh_na"), bf.channel("hh_k"), bf.channel("leak")])
    net = bf.Network([bf.Population("cells", cell, 3), bf.PoissonSource("drive", 3, 10.0)])
    with pytest.raises(ModelError, match="spike sources"):
        to_nir(net)
    graph = nir.NIRGraph(nodes={"in": nir.Input({"input": np.array([2])}), "out": nir.Output({"output": np.array([2])})},
                         edges=[("in", "out")])
    with pytest.raises(ModelError, match="BrainFuse metadata"):
        from_nir(graph)
