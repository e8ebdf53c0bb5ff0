"""Core objects from structurally valid project data, with the cross-reference and physics checks.

Building is validating: every failure is a ProjectError whose path names the field at fault.
The core's own ``from_dict`` functions already start their messages with the path they are
given, so their errors are re-raised with that path rather than wrapped again.
"""

import inspect
from dataclasses import dataclass

import numpy as np
import torch

from ..channels import CHANNELS, Channel
from ..cells import Cell
from ..errors import ModelError, ProjectError
from ..networks import Explicit, FixedInDegree, Network, PoissonSource, Population, Projection, SpikeTrainSource
from ..networks.connectivity import OneToOne, rule_from_dict
from ..networks.synapses import synapse_from_dict
from ..recording import Probe
from ..solvers.membrane import CompiledCell
from ..stimuli import IClamp, NoisyClamp, PulseTrain, VClamp, Waveform

STIMULUS_TYPES = {"iclamp": IClamp, "pulse_train": PulseTrain, "noisy": NoisyClamp, "waveform": Waveform, "vclamp": VClamp}
DTYPES = {"float32": torch.float32, "float64": torch.float64}
POPULATION_KINDS = ("cell", "poisson", "spike_times")
CELL_POPULATION_FIELDS = ("n", "threshold", "v_init")


@dataclass
class RunSettings:
    """``duration`` and ``dt`` in ms, ``celsius`` in °C, the integration ``method``, a torch ``dtype``, the ``batch`` size."""

    duration: float
    dt: float
    celsius: float
    method: str
    dtype: torch.dtype
    batch: int


@dataclass
class Build:
    """Everything a Simulation needs, freshly made (connectivity is drawn when the network is built)."""

    network: Network
    stimuli: list
    probes: list
    run: RunSettings


def build(data):
    """Every core object of structurally valid project ``data``; a ProjectError names the first bad reference."""
    channels = build_channels(data.get("channels", {}))
    cells = {name: build_cell(name, entry, channels) for name, entry in data["cells"].items()}
    network = build_network(data["circuit"], cells)
    run = run_settings(data["run"])
    stimuli = build_stimuli(data.get("stimuli", []), network, run.batch)
    probes = build_probes(data.get("recordings", []), network)
    return Build(network, stimuli, probes, run)


def build_channels(entries):
    """Every library channel under its own name, then the project's channels (which may shadow them)."""
    channels = {name: factory() for name, factory in CHANNELS.items()}
    for name, entry in entries.items():
        if "library" in entry:
            channels[name] = library_channel(name, entry)
        else:
            channels[name] = _core(Channel.from_dict, name, entry, f"channels.{name}")
    return channels


def library_channel(name, entry):
    """A library channel with parameter overrides, renamed to its project name (so probes read ``name.gate``)."""
    factory = CHANNELS[entry["library"]]
    accepted = inspect.signature(factory).parameters
    overrides = {key: value for key, value in entry.items() if key != "library"}
    for key in overrides:
        if key not in accepted:
            raise ProjectError(f"channels.{name}.{key}", f"library channel {entry['library']!r} has no parameter {key!r}; "
                                                         f"its parameters are {', '.join(accepted)}")
    channel = factory(**overrides)
    channel.name = name
    return channel


def build_cell(name, entry, channels):
    where = f"cells.{name}"
    sections = entry["morphology"]
    for section_name, section in sections.items():
        if "parent" in section and section["parent"] not in sections:
            raise ProjectError(f"{where}.morphology.{section_name}.parent",
                               f"no section {section['parent']!r} in this cell; its sections are {_names(sections)}")
    places = {"all"} | set(sections) | {section.get("region", "soma") for section in sections.values()}
    for group in ("insert", "pools"):
        for k, item in enumerate(entry.get(group, [])):
            wanted = item.get("where", "all")
            for place in [wanted] if isinstance(wanted, str) else wanted:
                if place not in places:
                    raise ProjectError(f"{where}.{group}[{k}].where",
                                       f"{place!r} is neither a section nor a region of this cell; use one of {_names(places)}")
    return _core(Cell.from_dict, name, entry, channels, where)


def build_network(circuit, cells):
    network = Network()
    for name, entry in circuit["populations"].items():
        network.add(build_population(name, entry, cells))
    for k, entry in enumerate(circuit.get("projections", [])):
        network.connect(build_projection(f"circuit.projections[{k}]", entry, network.populations))
    return network


def build_population(name, entry, cells):
    where = f"circuit.populations.{name}"
    kinds = [kind for kind in POPULATION_KINDS if kind in entry]
    if len(kinds) != 1:
        raise ProjectError(where, f"give exactly one of cell (with n), poisson or spike_times; got {', '.join(kinds) or 'none'}")
    if kinds[0] != "cell":
        stray = [key for key in CELL_POPULATION_FIELDS if key in entry]
        if stray:
            raise ProjectError(f"{where}.{stray[0]}", f"only populations of cells have {stray[0]}; a spike source has not")
        if "poisson" in entry:
            source = entry["poisson"]
            return PoissonSource(name, source["n"], source["rate_hz"], source["seed"], source.get("start", 0.0), source.get("stop"))
        return SpikeTrainSource(name, entry["spike_times"])
    if entry["cell"] not in cells:
        raise ProjectError(f"{where}.cell", f"unknown cell {entry['cell']!r}; cells are {_names(cells)}")
    if "n" not in entry:
        raise ProjectError(f"{where}.n", "missing; the number of cells (an integer ≥ 1)")
    v_init = sample(entry.get("v_init"), entry["n"])
    return Population(name, cells[entry["cell"]], entry["n"], threshold=entry.get("threshold", -20.0), v_init=v_init)


def build_projection(where, entry, populations):
    for end in ("pre", "post"):
        if entry[end] not in populations:
            raise ProjectError(f"{where}.{end}", f"unknown population {entry[end]!r}; populations are {_names(populations)}")
    pre, post = populations[entry["pre"]], populations[entry["post"]]
    if post.is_source:
        raise ProjectError(f"{where}.post", f"{post.name!r} is a spike source and cannot receive connections")
    target = _target(f"{where}.target", entry, post.cell)
    synapse = _core(synapse_from_dict, entry["synapse"], f"{where}.synapse")
    rule = _core(rule_from_dict, entry["connect"], f"{where}.connect")
    _check_rule(f"{where}.connect", rule, pre.n, post.n, pre is post)
    projection = Projection(entry["pre"], entry["post"], synapse, entry["weight"], rule, entry.get("delay"), target,
                            entry.get("seed", 0))
    # Read by the simulation as the starting value of every synaptic state of each post cell (µS).
    projection.initial_conductance = sample(entry.get("initial_conductance"), post.n, floor=0.0)
    return projection


def _target(where, entry, cell):
    """A projection's target: (section, x) for one point, a region/section name to spread over, or None (the soma)."""
    target = entry.get("target")
    if target is None:
        return None
    if ("section" in target) == ("region" in target):
        raise ProjectError(where, "give either section (and x) for one point, or region to spread the synapses over a "
                                  "region or section")
    if "section" in target:
        _check_section(f"{where}.section", target["section"], cell)
        return target["section"], target.get("x", 0.5)
    if "x" in target:
        raise ProjectError(f"{where}.x", "x places a one-point target; with region the synapses are spread, so drop x")
    name = target["region"]
    regions = cell.morphology.regions()
    if name != "all" and name not in regions and name not in cell.morphology.sections:
        raise ProjectError(f"{where}.region", f"cell {cell.name!r} has no region or section {name!r}; "
                                              f"its regions are {_names(regions)}")
    if entry.get("initial_conductance") is not None:
        raise ProjectError(f"{where}.region", "an initial conductance needs a one-point target (section and x)")
    return name


def _check_rule(where, rule, n_pre, n_post, same_population):
    """Problems the rules would only find while the network is being connected."""
    if isinstance(rule, Explicit) and len(rule.pairs):
        outside = np.flatnonzero((rule.pairs[:, 0] >= n_pre) | (rule.pairs[:, 1] >= n_post))
        if len(outside):
            pair = rule.pairs[outside[0]].tolist()
            raise ProjectError(f"{where}.pairs[{outside[0]}]",
                               f"{pair} is outside the populations: pre indices are 0..{n_pre - 1}, post 0..{n_post - 1}")
    if isinstance(rule, OneToOne) and n_pre != n_post:
        raise ProjectError(f"{where}.rule", f"one-to-one connections need populations of equal size, got {n_pre} and "
                                            f"{n_post}; resize one or use another rule")
    if isinstance(rule, FixedInDegree):
        available = n_pre - (1 if same_population and not rule.allow_self else 0)
        if rule.k > available:
            raise ProjectError(f"{where}.k", f"in-degree {rule.k} exceeds the {available} possible pre cells")


def sample(spec, n, floor=None):
    """A fixed value as given, or an (n,) float64 tensor of seeded normal draws, clipped below at ``floor``."""
    if not isinstance(spec, dict):
        return spec
    values = np.random.default_rng(spec["seed"]).normal(spec["normal"]["mean"], spec["normal"]["std"], n)
    if floor is not None:
        values = np.maximum(values, floor)
    return torch.as_tensor(values)


def build_stimuli(entries, network, batch):
    stimuli, clamp_names = [], {}
    for k, entry in enumerate(entries):
        where = f"stimuli[{k}]"
        population = _simulated(f"{where}.population", entry["population"], network)
        _check_target(where, entry, population)
        fields = {key: value for key, value in entry.items() if key != "type"}
        if isinstance(fields.get("amp"), list):
            if len(fields["amp"]) != batch:
                raise ProjectError(f"{where}.amp", f"{len(fields['amp'])} amplitudes for a batch of {batch} (run.batch); "
                                                   "give one per batch element or a single number")
            fields["amp"] = torch.tensor(fields["amp"], dtype=torch.float64)
        if entry["type"] == "pulse_train" and entry["width"] > entry["interval"]:
            raise ProjectError(f"{where}.width", f"{entry['width']} ms exceeds the interval of {entry['interval']} ms")
        if entry["type"] == "waveform":
            fields["values"] = torch.tensor(fields["values"], dtype=torch.float64)
        if entry["type"] == "vclamp":
            fields["levels"] = [tuple(level) for level in fields["levels"]]
        try:
            stimulus = STIMULUS_TYPES[entry["type"]](**fields)
        except ModelError as err:
            raise ProjectError(where, str(err)) from None
        # Voltage-clamp currents are reported by name, so two clamps may not share one.
        if isinstance(stimulus, VClamp):
            if stimulus.name in clamp_names:
                raise ProjectError(f"{where}.name", f"stimuli[{clamp_names[stimulus.name]}] is already a voltage clamp named "
                                                    f"{stimulus.name!r}; give each clamp its own name")
            clamp_names[stimulus.name] = k
        stimuli.append(stimulus)
    return stimuli


def build_probes(entries, network):
    probes, names, states = [], {}, {}
    for k, entry in enumerate(entries):
        where = f"recordings[{k}]"
        population = _simulated(f"{where}.population", entry["population"], network)
        _check_target(where, entry, population)
        if population.name not in states:
            states[population.name] = CompiledCell(population.cell, torch.float64, "cpu").state_names()
        if entry["variable"] not in states[population.name]:
            raise ProjectError(f"{where}.variable", f"cell {population.cell.name!r} has no state {entry['variable']!r}; "
                                                    f"it has {', '.join(states[population.name])}")
        probe = Probe(**entry)
        # Traces are stored by name, so a second probe of the same name would overwrite the first.
        if probe.name in names:
            raise ProjectError(f"{where}.name" if "name" in entry else where,
                               f"recordings[{names[probe.name]}] is already named {probe.name!r}; give this one a distinct name")
        names[probe.name] = k
        probes.append(probe)
    return probes


def run_settings(entry):
    settings = RunSettings(float(entry["duration"]), float(entry["dt"]), float(entry.get("celsius", 6.3)),
                           entry.get("method", "backward_euler"), DTYPES[entry.get("dtype", "float64")], entry.get("batch", 1))
    if round(settings.duration / settings.dt) < 1:
        raise ProjectError("run.duration", f"{settings.duration} ms is shorter than one step of {settings.dt} ms")
    return settings


def _simulated(where, name, network):
    population = network.populations.get(name)
    if population is None:
        raise ProjectError(where, f"unknown population {name!r}; populations are {_names(network.populations)}")
    if population.is_source:
        raise ProjectError(where, f"{name!r} is a spike source; only populations of cells are stimulated or recorded")
    return population


def _check_target(where, entry, population):
    for i, cell in enumerate(entry.get("cells") or []):
        if cell >= population.n:
            raise ProjectError(f"{where}.cells[{i}]", f"population {population.name!r} has cells 0..{population.n - 1}, got {cell}")
    if "section" in entry:
        _check_section(f"{where}.section", entry["section"], population.cell)


def _check_section(where, section, cell):
    if section not in cell.morphology.sections:
        raise ProjectError(where, f"cell {cell.name!r} has no section {section!r}; its sections are {_names(cell.morphology.sections)}")


def _core(from_dict, *args):
    """Call a core ``from_dict`` whose ModelErrors start with the path they were given."""
    try:
        return from_dict(*args)
    except ModelError as err:
        path, _, message = str(err).partition(": ")
        raise ProjectError(path, message) from None


def _names(names, limit=12):
    names = sorted(names)
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown}, … ({len(names)} in all)"
