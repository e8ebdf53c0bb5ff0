"""NIR export (the Neuromorphic Intermediate Representation, the ``nir`` package) of a network of HH populations.

NIR has no conductance-based neuron, so the graph carries what NIR can express and the rest rides in
metadata: each population is a ``Threshold`` node (its spike threshold, mV, one per cell) whose
``metadata["brainfuse"]`` holds the cell (``Cell.to_dict``), its channels (``Channel.to_dict``: gates and
curves), size and initial voltage; each population also has an ``Input`` node (its injected current, nA) and an ``Output``
node (its spikes), NIR's entry and exit points; each projection is a ``Linear`` node of its weights as a (post, pre)
matrix of conductances (µS), with the synapse kinetics, delay and initial conductance in its metadata;
edges run pre population → projection → post population. ``from_nir`` rebuilds the BrainFuse network from
such a graph (connections where weights are non-zero), so an export can be read back and simulated.

``nir`` is optional: ``write_nir`` and ``read_nir`` raise a ModelError naming the install when it is absent.
Spike sources (Poisson, spike trains) have no NIR counterpart here and are refused.
"""

import json

import numpy as np
import torch

from ..cells import Cell
from ..channels import Channel
from ..errors import ModelError
from ..networks import Explicit, Network, Population, Projection
from ..networks.synapses import synapse_from_dict

FORMAT, VERSION = "brainfuse-nir", 1


def _nir():
    try:
        import nir
    except ModuleNotFoundError:
        raise ModelError("NIR export needs the 'nir' package: pip install 'nir>=1.0.8'") from None
    return nir


def to_nir(model):
    """A ``nir.NIRGraph`` of ``model`` (a Network or a Cell; see the module docstring)."""
    nir = _nir()
    net = Network.of(model).build()
    nodes, edges = {}, []
    for name, pop in net.populations.items():
        if pop.is_source:
            raise ModelError(f"population {name!r}: spike sources have no NIR counterpart here; export the network without them")
        cell = pop.cell
        v_init = pop.v_init
        if torch.is_tensor(v_init):
            v_init = v_init.detach().double().reshape(-1).tolist()
        elif isinstance(v_init, np.ndarray):
            v_init = v_init.astype(float).tolist()
        meta = {"kind": "hh_population", "n": pop.n, "cell_name": cell.name, "cell": cell.to_dict(),
                "channels": {channel.name: channel.to_dict() for channel in cell.channels.values()},
                "threshold_mv": float(pop.threshold), "spike_site": list(pop.spike_site), "v_init_mv": v_init}
        nodes[name] = nir.Threshold(threshold=np.full(pop.n, float(pop.threshold)), metadata={"brainfuse": json.dumps(meta)})
        nodes[f"{name}.input"] = nir.Input(input_type={"input": np.array([pop.n])},
                                           metadata={"brainfuse": json.dumps({"kind": "injected_current", "unit": "nA"})})
        nodes[f"{name}.spikes"] = nir.Output(output_type={"output": np.array([pop.n])},
                                             metadata={"brainfuse": json.dumps({"kind": "spikes"})})
        edges += [(f"{name}.input", name), (name, f"{name}.spikes")]
    for k, proj in enumerate(net.projections):
        n_pre, n_post = net.populations[proj.pre].n, net.populations[proj.post].n
        weight = np.zeros((n_post, n_pre))
        np.add.at(weight, (proj.post_index.numpy(), proj.pre_index.numpy()), proj.weights.detach().double().numpy())
        initial = proj.initial_conductance
        if torch.is_tensor(initial):
            initial = initial.detach().double().reshape(-1).tolist()
        elif isinstance(initial, np.ndarray):
            initial = initial.astype(float).tolist()
        if proj.target is not None:
            raise ModelError(f"projection {proj.name}: synapses placed on dendrites are not exported to NIR (point cells only)")
        delay = proj.delay
        if torch.is_tensor(delay) or isinstance(delay, np.ndarray):
            raise ModelError(f"projection {proj.name}: per-connection delays are not exported to NIR")
        meta = {"kind": "conductance_projection", "name": proj.name, "pre": proj.pre, "post": proj.post,
                "synapse": proj.synapse.to_dict(), "delay_ms": delay, "initial_conductance_us": initial, "weight_unit": "µS"}
        key = f"projection{k}"
        nodes[key] = nir.Linear(weight=weight, metadata={"brainfuse": json.dumps(meta)})
        edges += [(proj.pre, key), (key, proj.post)]
    graph_meta = {"format": FORMAT, "version": VERSION,
                  "note": "HH populations are Threshold nodes with their cells and channels in metadata; projections are "
                          "Linear nodes of conductance weights (µS) with their synapse kinetics in metadata"}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"brainfuse": json.dumps(graph_meta)})


def from_nir(graph):
    """The BrainFuse Network of a graph written by ``to_nir``."""
    meta = _meta(graph.metadata, "the graph")
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise ModelError(f"this NIR graph was not written by BrainFuse's to_nir (format {FORMAT} version {VERSION})")
    net = Network()
    for name, node in graph.nodes.items():
        data = _meta(node.metadata, f"node {name}")
        if data.get("kind") != "hh_population":
            continue
        channels = {cname: Channel.from_dict(cname, cdata) for cname, cdata in data["channels"].items()}
        cell = Cell.from_dict(data["cell_name"], data["cell"], channels)
        v_init = data["v_init_mv"]
        net.add(Population(name, cell, data["n"], threshold=data["threshold_mv"], spike_site=tuple(data["spike_site"]),
                           v_init=torch.tensor(v_init, dtype=torch.float64) if isinstance(v_init, list) else v_init))
    for name, node in graph.nodes.items():
        data = _meta(node.metadata, f"node {name}")
        if data.get("kind") != "conductance_projection":
            continue
        weight = np.asarray(node.weight, dtype=np.float64)
        post, pre = np.nonzero(weight)
        initial = data["initial_conductance_us"]
        net.connect(Projection(data["pre"], data["post"], synapse_from_dict(data["synapse"], f"node {name}.synapse"),
                               torch.tensor(weight[post, pre]), rule=Explicit(np.stack([pre, post], axis=1)),
                               delay=data["delay_ms"], name=data["name"],
                               initial_conductance=torch.tensor(initial, dtype=torch.float64) if isinstance(initial, list) else initial))
    return net


def _meta(metadata, what):
    try:
        return json.loads(metadata["brainfuse"])
    except (KeyError, TypeError, ValueError):
        raise ModelError(f"{what} carries no BrainFuse metadata; only graphs written by to_nir can be read back") from None


def write_nir(model, path):
    """Write ``model`` as a NIR file (HDF5) at ``path``; returns the path."""
    _nir().write(path, to_nir(model))
    return path


def read_nir(path):
    """The Network of a NIR file written by ``write_nir``."""
    return from_nir(_nir().read(path))
